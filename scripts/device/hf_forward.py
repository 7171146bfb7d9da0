"""Hugging Face transformers as the baseline and the judge of our GPU forward.

  python3 scripts/device/hf_forward.py bench MODEL_DIR [--seq 2048] [--batch 4] [--repeat 3]
      bf16 perplexity forward (sdpa attention, labels given so the loss is computed as a user
      would), tokens/s (median of --repeat after a warm-up) and peak GPU memory
      (torch.cuda.max_memory_allocated, weights included).
  python3 scripts/device/hf_forward.py check MODEL_DIR --dump DIR --seq S --batch B
      DIR holds what `node dist/bench-forward-gpu.cjs --dump DIR --precision fp32,bf16` wrote:
      ids.bin, logits-{fp32,bf16}.bin (sequence 0), nll-{fp32,bf16}.bin. Computes the same in
      transformers: fp32 with eager attention (the truth) and bf16 with sdpa (the baseline).
      Prints one JSON object: relative logit errors (max |Δ| / max |ref|) and perplexities.
"""
import json
import sys
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM

# fp32 means IEEE float32 products (no TF32), as our fp32 mode computes them.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def arg(name, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def load(model_dir, dtype, attn):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation=attn, device_map="cuda")
    model.eval()
    return model


def bench(model_dir):
    seq, batch, repeat = arg("--seq", 2048), arg("--batch", 4), arg("--repeat", 3)
    torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    model = load(model_dir, torch.bfloat16, "sdpa")
    load_s = time.time() - t0
    vocab = model.config.vocab_size
    gen = torch.Generator(device="cuda").manual_seed(1)
    ids = torch.randint(0, vocab, (batch, seq), device="cuda", generator=gen)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    times = []
    with torch.inference_mode():
        model(input_ids=ids, labels=ids).loss.item()  # warm-up
        for _ in range(repeat):
            torch.cuda.synchronize()
            t = time.time()
            loss = model(input_ids=ids, labels=ids).loss.item()
            torch.cuda.synchronize()
            times.append(time.time() - t)
    seconds = sorted(times)[len(times) // 2]
    print(json.dumps({
        "model": model_dir, "baseline": "transformers bf16 sdpa", "batch": batch, "seq": seq,
        "tokens_per_s": batch * seq / seconds, "seconds": seconds, "times": times, "loss": loss,
        "peak_bytes": torch.cuda.max_memory_allocated(), "weight_bytes": weight_bytes, "load_s": load_s,
        "torch": torch.__version__,
    }))


def rel(ours, ref):
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


def nll_of(model, ids):
    """−log p of token t + 1 at every position t < S − 1, per sequence, in float32 from the model's logits."""
    out = []
    with torch.inference_mode():
        for row in ids:
            x = torch.from_numpy(row).long().cuda()[None]
            logits = model(input_ids=x).logits[0].float()
            lp = torch.log_softmax(logits, dim=-1)
            out.append((-lp[:-1].gather(1, x[0, 1:, None])[:, 0]).cpu().numpy())
    return np.stack(out)


def logits_of(model, row):
    with torch.inference_mode():
        return model(input_ids=torch.from_numpy(row).long().cuda()[None]).logits[0].float().cpu().numpy()


def check(model_dir):
    dump, seq, batch = arg("--dump", ""), arg("--seq", 0), arg("--batch", 1)
    ids = np.fromfile(f"{dump}/ids.bin", dtype=np.int32).reshape(batch, seq)
    result = {"model": model_dir, "seq": seq, "batch": batch}
    ref = {}
    for name, dtype, attn in [("fp32", torch.float32, "eager"), ("bf16", torch.bfloat16, "sdpa")]:
        model = load(model_dir, dtype, attn)
        ref[name] = {"logits": logits_of(model, ids[0]), "nll": nll_of(model, ids)}
        del model
        torch.cuda.empty_cache()
    vocab = ref["fp32"]["logits"].shape[1]
    ppl = lambda nll: float(np.exp(np.mean(np.asarray(nll, dtype=np.float64))))
    result["hf_fp32_ppl"] = ppl(ref["fp32"]["nll"])
    result["hf_bf16_ppl"] = ppl(ref["bf16"]["nll"])
    # The baseline's own bf16 error against its fp32: the scale a bf16 tolerance is judged by.
    result["hf_bf16_vs_hf_fp32"] = rel(ref["bf16"]["logits"], ref["fp32"]["logits"])
    for name in ["fp32", "bf16"]:
        logits = np.fromfile(f"{dump}/logits-{name}.bin", dtype=np.float32).reshape(seq, vocab)
        nll = np.fromfile(f"{dump}/nll-{name}.bin", dtype=np.float32).reshape(batch, seq)[:, :-1]
        result[f"ours_{name}_ppl"] = ppl(nll)
        result[f"ours_{name}_vs_hf_fp32"] = rel(logits, ref["fp32"]["logits"])
        result[f"ours_{name}_vs_hf_{name}"] = rel(logits, ref[name]["logits"])
        result[f"ours_{name}_ppl_vs_hf_{name}"] = result[f"ours_{name}_ppl"] / result[f"hf_{name}_ppl"] - 1
    # The checks, with their bounds (docs/CROSSCHECKS.md explains them).
    result["pass_fp32_logits"] = result["ours_fp32_vs_hf_fp32"] <= 1e-4
    result["pass_bf16_logits"] = result["ours_bf16_vs_hf_fp32"] <= 2 * result["hf_bf16_vs_hf_fp32"] + 1e-4
    result["pass_bf16_ppl"] = abs(result["ours_bf16_ppl_vs_hf_bf16"]) <= 5e-3
    print(json.dumps(result))


if __name__ == "__main__":
    {"bench": bench, "check": check}[sys.argv[1]](sys.argv[2])
