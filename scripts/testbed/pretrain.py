"""Pretrains the testbed model on the GPU machine (PyTorch + transformers, no network).

    python3 scripts/testbed/pretrain.py OUT_DIR [--corpus testbed-corpus] [--train-seconds 240]

A Llama-architecture model (transformers' LlamaForCausalLM: GQA with 2 query heads per KV
head, RoPE, SwiGLU, RMSNorm; head_dim 64, hidden 256 and MLP 768, both multiples of 256 as
llama.cpp's K-quants want; 8 layers; tied embeddings; 8.4 M parameters, 16.8 MB in bf16)
trained on the testbed corpus (scripts/testbed/build_corpus.py) with the tokenizer of
assets/testbed-data:

1. Checks that Python's `tokenizers` gives the engine's ids on the committed sample
   (assets/testbed-data/tokenizer-check.json, written by the engine), then tokenizes the
   corpus (documents joined by <|endoftext|>) with all cores.
2. Trains with bf16 autocast (fp32 master weights), AdamW (β 0.9/0.95, weight decay 0.1 on
   matrices), linear warm-up then cosine decay to a tenth of the peak, rows of 512 tokens
   packed as the engine packs them (a row every 512 tokens, 513 long), each epoch in a
   seeded random order. The length of the run: the first steps' tokens/s sizes it to
   --train-seconds, and it never exceeds --max-epochs passes over the data (a model that saw
   its text many times would memorise it; the report gives val/train loss).
3. Measures, in the protocol of `loftq eval` (windows of 512 tokens every 256, every token
   but the first scored once, no BOS): perplexity on the held-out pretraining documents
   (val.jsonl.xz) and on the Austen evaluation split; plus the mean loss of 512-token rows of
   the training text and of the held-out text, whose ratio says whether it memorised.
4. Writes OUT_DIR: config.json, generation_config.json, the bf16 weights as safetensors shards
   under 14 MB each + their index, tokenizer.json, tokenizer_config.json, pretrain.json (the
   numbers and the log): 8 files.
"""
import argparse
import json
import lzma
import math
import os
import shutil
import sys
import time

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_common import sliding_perplexity  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "assets", "testbed-data")

SHAPE = dict(vocab_size=8192, hidden_size=256, intermediate_size=768, num_hidden_layers=8, num_attention_heads=4,
             num_key_value_heads=2, head_dim=64, max_position_embeddings=512, rms_norm_eps=1e-5,
             tie_word_embeddings=True, hidden_act="silu", attention_bias=False, mlp_bias=False,
             bos_token_id=1, eos_token_id=2, initializer_range=0.02)
SEQ = 512
LOG = []


def log(msg):
    line = f"[{time.time() - T0:6.1f} s] {msg}"
    LOG.append(line)
    print(line, flush=True)


def check_tokenizer(tok):
    """Python's tokenizers must give exactly the engine's ids (the sample's file records them)."""
    check = json.load(open(os.path.join(DATA, "tokenizer-check.json"), encoding="utf-8"))
    for case in check["cases"]:
        ids = tok.encode(case["text"], add_special_tokens=False).ids
        if ids != case["ids"]:
            first = next((i for i, (a, b) in enumerate(zip(ids, case["ids"])) if a != b), min(len(ids), len(case["ids"])))
            sys.exit(f"tokenizer mismatch on {case['name']!r}: python gives {len(ids)} ids, the engine {len(case['ids'])}; first difference at {first}")
        if tok.decode(ids, skip_special_tokens=False) != case["text"]:
            sys.exit(f"tokenizer does not round-trip {case['name']!r}")
    log(f"tokenizer: python ids equal the engine's on {len(check['cases'])} samples")


def read_docs(path):
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def token_stream(tok, docs, eos, chunk=512):
    """The documents' ids joined by EOS (encoded on all cores, a chunk of documents at a time)."""
    out = []
    for start in range(0, len(docs), chunk):
        for enc in tok.encode_batch(docs[start:start + chunk], add_special_tokens=False):
            if out:
                out.append(eos)
            out.extend(enc.ids)
    return torch.tensor(out, dtype=torch.int32)


def make_model():
    # RoPE θ is transformers' default, 10⁴ (version 5 records it under rope_parameters);
    # attention is PyTorch's scaled_dot_product_attention (the default where available).
    model = LlamaForCausalLM(LlamaConfig(**SHAPE))
    return model


def rows_of(stream):
    """Rows of SEQ + 1 tokens, one every SEQ tokens (as train/packing.ts packs)."""
    n = (len(stream) - 1) // SEQ
    return stream[: n * SEQ + 1], n


def batch_rows(stream, idx):
    """Rows idx (any device) of the packed stream, as int64 on the stream's device."""
    starts = idx.to(stream.device) * SEQ
    offsets = torch.arange(SEQ + 1, device=stream.device)
    return stream[starts[:, None] + offsets[None, :]].long()


def loss_of(model, rows):
    with torch.autocast(rows.device.type, dtype=torch.bfloat16, enabled=rows.is_cuda):
        logits = model(input_ids=rows[:, :-1]).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1))


@torch.no_grad()
def mean_row_loss(model, stream, rows, count, gen, dev, batch=64):
    idx = torch.randperm(rows, generator=gen)[:count]
    total, n = 0.0, 0
    for i in range(0, len(idx), batch):
        b = batch_rows(stream, idx[i:i + batch]).to(dev)
        total += loss_of(model, b).item() * len(b)
        n += len(b)
    return total / n


def reload_checks(out, model, sample, dev):
    """The saved folder as others will load it: transformers' AutoTokenizer gives the engine's
    ids and the special tokens; AutoModelForCausalLM's logits equal the trained model's (both
    bf16). Failures are reported, not raised: the trained model is saved either way."""
    checks = {}
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(out)
        cases = json.load(open(os.path.join(DATA, "tokenizer-check.json"), encoding="utf-8"))["cases"]
        checks["autotokenizer_ids_equal_engine"] = all(tok(c["text"], add_special_tokens=False)["input_ids"] == c["ids"] for c in cases)
        checks["autotokenizer_special"] = [tok.bos_token, tok.eos_token, tok.bos_token_id, tok.eos_token_id]
        loaded = AutoModelForCausalLM.from_pretrained(out).to(dev).eval()
        with torch.no_grad():
            a = model(input_ids=sample[None]).logits.float()
            b = loaded(input_ids=sample[None]).logits.float()
        checks["reloaded_logits_max_abs_diff"] = (a - b).abs().max().item()
        checks["reloaded_dtype"] = str(next(loaded.parameters()).dtype)
    except Exception as e:  # noqa: BLE001 — reported in pretrain.json
        checks["error"] = f"{type(e).__name__}: {e}"
    log(f"reload checks: {checks}")
    return checks


def lr_at(step, peak, warmup, total, floor_frac=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor_frac + (1 - floor_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--corpus", default=os.path.join(ROOT, "testbed-corpus"))
    ap.add_argument("--train-seconds", type=float, default=240.0)
    ap.add_argument("--max-epochs", type=float, default=2.0)
    ap.add_argument("--batch-rows", type=int, default=128, help="rows of 512 tokens per optimizer step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda", help="cuda; cpu only for a dry run of the script (selftest.py)")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.backends.cuda.matmul.allow_tf32 = True
    os.makedirs(args.out, exist_ok=True)

    tok = Tokenizer.from_file(os.path.join(DATA, "tokenizer.json"))
    check_tokenizer(tok)
    eos = tok.token_to_id("<|endoftext|>")
    train_docs = read_docs(os.path.join(args.corpus, "train.jsonl.xz"))
    val_docs = read_docs(os.path.join(args.corpus, "val.jsonl.xz"))
    train = token_stream(tok, train_docs, eos)
    val = token_stream(tok, val_docs, eos)
    eval_text = open(os.path.join(DATA, "eval.txt"), encoding="utf-8").read()
    austen = torch.tensor(tok.encode(eval_text, add_special_tokens=False).ids, dtype=torch.int32)
    train_bytes = sum(len(d.encode()) for d in train_docs)
    log(f"tokens: train {len(train):,} ({train_bytes / len(train):.2f} bytes/token), val {len(val):,}, Austen eval {len(austen):,}")
    train_gpu, n_rows = rows_of(train.to(dev))
    val_gpu, n_val_rows = rows_of(val.to(dev))

    model = make_model().to(dev)
    params = sum(p.numel() for p in model.parameters())
    log(f"model: {params:,} parameters ({2 * params / 1e6:.1f} MB in bf16)")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, **({"fused": True} if cuda else {}))
    gen = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = n_rows // args.batch_rows
    max_steps = int(args.max_epochs * steps_per_epoch)
    total = max_steps  # until measured
    order, pos, epoch = torch.randperm(n_rows, generator=gen), 0, 0
    losses, step, t_train = [], 0, time.time()
    measured_at, t_measure = 20, None
    while step < total:
        if pos + args.batch_rows > n_rows:
            epoch += 1
            order, pos = torch.randperm(n_rows, generator=gen), 0
        idx = order[pos:pos + args.batch_rows]
        pos += args.batch_rows
        rows = batch_rows(train_gpu, idx.to(dev))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.lr, args.warmup, total)
        loss = loss_of(model, rows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step == 5:
            sync()
            t_measure = time.time()
        if step == measured_at:
            sync()
            rate = (measured_at - 5) * args.batch_rows * SEQ / (time.time() - t_measure)
            by_time = int(args.train_seconds * rate / (args.batch_rows * SEQ))
            # Never below the steps already taken (the schedule just ends there).
            total = max(step, min(max_steps, max(args.warmup + 10, by_time)))
            log(f"throughput {rate:,.0f} tokens/s: {total} steps ({total * args.batch_rows * SEQ / len(train):.2f} epochs; "
                f"the time budget allows {by_time}, {args.max_epochs} epochs {max_steps})")
        if step % 25 == 0 or step >= total:
            losses.append((step, loss.item()))
            log(f"step {step}/{total} loss {loss.item():.4f} lr {opt.param_groups[0]['lr']:.2e} grad-norm {gnorm.item():.3f}")
    sync()
    train_seconds = time.time() - t_train

    model.eval()
    g2 = torch.Generator().manual_seed(1)
    train_loss = mean_row_loss(model, train_gpu, n_rows, min(512, n_rows), g2, dev)
    val_loss = mean_row_loss(model, val_gpu, n_val_rows, min(512, n_val_rows), g2, dev)
    val_ppl, val_tokens = sliding_perplexity(model, val_gpu, dev, seq=SEQ, stride=SEQ // 2)
    austen_ppl, austen_tokens = sliding_perplexity(model, austen.to(dev), dev, seq=SEQ, stride=SEQ // 2)
    log(f"train-row loss {train_loss:.4f}, held-out row loss {val_loss:.4f} (ratio {val_loss / train_loss:.3f}); "
        f"sliding-window perplexity: held-out pretraining text {val_ppl:.2f}, Austen eval {austen_ppl:.2f}")

    model.to(torch.bfloat16)  # save_pretrained records the weights' dtype in config.json
    model.save_pretrained(args.out, max_shard_size="14MB")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(DATA, f), os.path.join(args.out, f))
    result = {
        "parameters": params, "shape": SHAPE, "config": json.loads(model.config.to_json_string()), "seq_len": SEQ,
        "tokens": {"train": len(train), "val": len(val), "austen_eval": len(austen), "train_bytes_per_token": train_bytes / len(train)},
        "training": {"steps": total, "batch_rows": args.batch_rows, "tokens_seen": total * args.batch_rows * SEQ,
                     "epochs": total * args.batch_rows * SEQ / len(train), "lr": args.lr, "warmup": args.warmup,
                     "schedule": "linear warm-up, cosine to 0.1 x peak", "weight_decay": 0.1, "betas": [0.9, 0.95],
                     "seconds": train_seconds, "tokens_per_s": total * args.batch_rows * SEQ / train_seconds, "seed": args.seed,
                     "loss_curve": losses},
        "train_row_loss": train_loss, "val_row_loss": val_loss, "val_over_train_loss": val_loss / train_loss,
        "val_ppl": val_ppl, "val_ppl_tokens": val_tokens, "austen_eval_ppl": austen_ppl, "austen_eval_tokens": austen_tokens,
        "eval_protocol": "sliding window, seq 512, stride 256, no BOS (loftq eval's)",
        "device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
        "files": sorted(os.listdir(args.out)) + ["pretrain.json"],
        "log": LOG,
    }
    result["reload_checks"] = reload_checks(args.out, model, austen[:SEQ].long().to(dev), dev)
    with open(os.path.join(args.out, "pretrain.json"), "w") as f:
        json.dump(result, f, indent=1)
    sizes = {f: os.path.getsize(os.path.join(args.out, f)) for f in sorted(os.listdir(args.out))}
    log(f"wrote {len(sizes)} files: {sizes}")
    assert len(sizes) <= 8 and max(sizes.values()) < 15 * 2**20, "more than 8 files or a file of 15 MiB or more"


T0 = time.time()
if __name__ == "__main__":
    main()
