#!/usr/bin/env python3
"""Build small random Llama / Mistral / Qwen2 models, a byte-level BPE tokenizer, a held-out
text and transformers reference outputs, for checking our forward pass against transformers.

    python3 scripts/crosscheck/hf_make_models.py OUT_DIR [--seed N] [--archs llama,mistral,qwen2]

Writes:
  OUT_DIR/text.txt          held-out generated text (~3000 tokens), UTF-8, no trailing newline
  OUT_DIR/ids.json          token ids of text.txt's first 200 tokens (no BOS), JSON array
  OUT_DIR/ids_full.json     token ids of all of text.txt (no BOS), JSON array
  OUT_DIR/tokenizer/        the tokenizer alone (tokenizer.json + tokenizer_config.json)
  OUT_DIR/meta.json         versions, sizes, per-arch summaries
  OUT_DIR/<arch>/           config.json, model.safetensors, tokenizer files (save_pretrained)
  OUT_DIR/<arch>/ref_logits.safetensors
        logits        [T, V] float32: transformers (eager attention) in float64, cast to float32
        logits_f32    [T, V] float32: the same model run in float32 (its own error gives scale)
        logits_pure64 [T, V] float32: an independent plain-torch float64 forward written here
  OUT_DIR/<arch>/ref_ppl.json
        {"ppl", "nll_sum", "tokens", "n_ids", "seq_len": 128, "stride": 64, "ppl_f32", ...}

Needs python3 with torch, transformers (5.x), tokenizers, safetensors. No network.
"""
import argparse
import json
import math
import os
import random
import sys
import time

T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------
# Deterministic text generator
# ----------------------------------------------------------------------------------------------

NAMES = ["Alice", "Bob", "Carol", "Dmitri", "Eve", "Farah", "Greta", "Hugo", "Ines", "José",
         "Kenji", "Lena", "Marta", "Noah", "Olga", "Pablo", "Zoë"]
DETS = ["the", "a", "every", "one", "this", "that", "some", "no"]
ADJS = ["small", "large", "quiet", "bright", "old", "new", "green", "heavy", "quick", "slow",
        "careful", "strange", "warm", "cold", "empty", "broken", "famous", "naïve", "simple"]
NOUNS = ["river", "engine", "garden", "window", "letter", "market", "teacher", "machine",
         "bridge", "forest", "student", "report", "camera", "kitchen", "island", "signal",
         "library", "harbor", "model", "matrix", "café", "number", "question", "answer"]
PLURALS = ["rivers", "engines", "gardens", "windows", "letters", "markets", "teachers",
           "machines", "bridges", "students", "reports", "cameras", "islands", "signals",
           "numbers", "questions", "answers", "models"]
VERBS = ["sees", "builds", "finds", "moves", "opens", "measures", "writes", "carries",
         "repairs", "paints", "counts", "follows", "explains", "sells", "watches", "quantizes"]
VERBS_PAST = ["saw", "built", "found", "moved", "opened", "measured", "wrote", "carried",
              "repaired", "painted", "counted", "followed", "explained", "sold", "watched"]
ADVS = ["slowly", "quickly", "again", "twice", "today", "yesterday", "carefully", "almost",
        "never", "often", "together", "alone"]
PREPS = ["near", "under", "behind", "beside", "across", "inside", "beyond", "after", "before"]
PLACES = ["Paris", "Berlin", "Kyoto", "Lagos", "Quito", "Oslo", "Zürich", "Montréal", "Lima"]
CONTRACTIONS = ["don't", "can't", "it's", "we'll", "they're", "I've", "she'd", "isn't",
                "won't", "you're"]
UNITS = ["km", "kg", "ms", "MB", "GB", "cm", "%", "°C", "€", "$"]
INTERJ = ["Well", "Indeed", "Oh", "Still", "However", "Meanwhile", "Honestly", "Later"]


def _number(r):
    k = r.randrange(7)
    if k == 0:
        return str(r.randrange(10))
    if k == 1:
        return str(r.randrange(10, 1000))
    if k == 2:
        return str(r.randrange(1900, 2030))
    if k == 3:
        return f"{r.randrange(100)}.{r.randrange(100):02d}"
    if k == 4:
        return f"{r.randrange(1, 100)}{r.choice(UNITS)}" if r.random() < 0.5 else \
            f"{r.randrange(1, 100)} {r.choice(UNITS)}"
    if k == 5:
        return f"{r.randrange(1, 13)}/{r.randrange(1, 29)}/{r.randrange(1990, 2030)}"
    return f"{r.randrange(1, 100):,}" if r.random() < 0.3 else f"{r.randrange(1000, 10 ** 6):,}"


def _np(r):
    k = r.randrange(5)
    if k == 0:
        return r.choice(NAMES)
    if k == 1:
        return f"{r.choice(DETS)} {r.choice(NOUNS)}"
    if k == 2:
        return f"{r.choice(DETS)} {r.choice(ADJS)} {r.choice(NOUNS)}"
    if k == 3:
        return f"{_number(r)} {r.choice(PLURALS)}"
    return f"the {r.choice(NOUNS)} of {r.choice(NAMES)}"


def _sentence(r):
    k = r.randrange(10)
    if k == 0:
        s = f"{_np(r)} {r.choice(VERBS)} {_np(r)} {r.choice(PREPS)} {r.choice(PLACES)}"
    elif k == 1:
        s = f"{_np(r)} {r.choice(VERBS_PAST)} {_np(r)} {r.choice(ADVS)}"
    elif k == 2:
        s = f"{r.choice(INTERJ)}, {_np(r)} {r.choice(VERBS)} {_np(r)}; {_np(r)} {r.choice(ADVS)} " \
            f"{r.choice(VERBS_PAST)} it"
    elif k == 3:
        s = f"{r.choice(CONTRACTIONS)} {r.choice(ADJS)}, {r.choice(CONTRACTIONS)} {r.choice(ADVS)} " \
            f"{r.choice(ADJS)}"
    elif k == 4:
        s = f"in {r.randrange(1900, 2030)}, {_np(r)} {r.choice(VERBS_PAST)} {_number(r)} " \
            f"{r.choice(PLURALS)} (about {_number(r)})"
    elif k == 5:
        s = f"\"{_np(r)} {r.choice(VERBS)} {_np(r)},\" said {r.choice(NAMES)}"
    elif k == 6:
        s = f"{_np(r)} {r.choice(VERBS)} {_np(r)} - and {_np(r)} {r.choice(VERBS)} {_np(r)}"
    elif k == 7:
        s = f"why {r.choice(VERBS)} {_np(r)} {r.choice(PREPS)} {_np(r)}"
    elif k == 8:
        s = f"{_np(r)}: {_number(r)}, {_number(r)} and {_number(r)}"
    else:
        s = f"{_np(r)} {r.choice(VERBS)} {r.choice(ADVS)} {r.choice(PREPS)} {_np(r)} " \
            f"{r.choice(['—', '--', '...'])} {r.choice(ADVS)}"
    s = s[0].upper() + s[1:]
    end = "?" if k == 7 else r.choice([".", ".", ".", "!", "..."])
    return s + end


def gen_text(seed, n_words):
    """Paragraphs of sentences, with single spaces, occasional double spaces, line and
    paragraph breaks; never a leading or trailing whitespace."""
    r = random.Random(seed)
    paras, words = [], 0
    while words < n_words:
        sents = []
        for _ in range(r.randrange(2, 7)):
            s = _sentence(r)
            words += len(s.split())
            sents.append(s)
        text = sents[0]
        for s in sents[1:]:
            sep = r.choice([" ", " ", " ", " ", "  ", "\n"])
            text += sep + s
        paras.append(text)
    out = paras[0]
    for p in paras[1:]:
        out += r.choice(["\n\n", "\n\n", "\n", "\n\n\n"]) + p
    return out


# ----------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------

def train_tokenizer(corpus_lines, vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines, trainer=trainer)
    return tok


def wrap_tokenizer(tok):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
    )


def hf_encode(hf_tok, text):
    enc = hf_tok(text, add_special_tokens=False)
    ids = enc["input_ids"]
    return [int(i) for i in ids]


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------

INIT_STD = 0.06       # linear weights (config.initializer_range too)
EMBED_STD = 0.25      # token embeddings (also the tied lm_head of qwen2)
LM_HEAD_STD = 0.2     # untied lm_head: logits of a few units
BIAS_STD = 0.1        # every bias (qwen2's q/k/v)
NORM_JITTER = 0.2     # RMSNorm weights = 1 + N(0, 0.2^2), so a missing norm weight shows

ARCHS = ["llama", "mistral", "qwen2"]


def arch_spec(arch):
    if arch == "llama":
        return dict(cls="LlamaConfig", theta=10000.0, kw=dict(
            hidden_size=128, intermediate_size=344, num_hidden_layers=4,
            num_attention_heads=8, num_key_value_heads=4, rms_norm_eps=1e-6,
            tie_word_embeddings=False, max_position_embeddings=512))
    if arch == "mistral":
        return dict(cls="MistralConfig", theta=1e6, kw=dict(
            hidden_size=96, intermediate_size=256, num_hidden_layers=3,
            num_attention_heads=6, num_key_value_heads=2, rms_norm_eps=1e-5,
            sliding_window=None, tie_word_embeddings=False, max_position_embeddings=512))
    if arch == "qwen2":
        return dict(cls="Qwen2Config", theta=1e6, kw=dict(
            hidden_size=128, intermediate_size=320, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
            use_sliding_window=False, tie_word_embeddings=True, max_position_embeddings=512))
    raise ValueError(f"unknown arch {arch}")


def config_theta(cfg):
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict) and "rope_theta" in rp:
        return float(rp["rope_theta"])
    th = getattr(cfg, "rope_theta", None)
    return None if th is None else float(th)


def make_config(arch, vocab, bos_id, eos_id):
    import transformers

    spec = arch_spec(arch)
    cls = getattr(transformers, spec["cls"])
    kw = dict(spec["kw"])
    kw.update(vocab_size=vocab, bos_token_id=bos_id, eos_token_id=eos_id,
              initializer_range=INIT_STD, hidden_act="silu", attention_dropout=0.0)
    theta = spec["theta"]
    optional = ("use_sliding_window", "sliding_window", "attention_dropout", "hidden_act")
    errors = []
    # transformers 5 keeps rope_theta inside rope_parameters; 4.x took rope_theta directly.
    for variant in ("rope_parameters", "rope_theta"):
        for trim in (False, True):
            kw2 = {k: v for k, v in kw.items() if not (trim and k in optional)}
            try:
                if variant == "rope_parameters":
                    cfg = cls(rope_parameters={"rope_type": "default", "rope_theta": theta}, **kw2)
                else:
                    cfg = cls(rope_theta=theta, **kw2)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{variant}{' (trimmed)' if trim else ''}: {type(e).__name__}: {e}")
                continue
            got = config_theta(cfg)
            if got is not None and abs(got - theta) <= 1e-9 * theta:
                if errors:
                    log(f"{arch}: config built after fallbacks: {' | '.join(errors)}")
                return cfg
            errors.append(f"{variant}: effective rope theta {got}, wanted {theta}")
    raise RuntimeError(f"{arch}: could not build {spec['cls']}: " + " | ".join(errors))


def model_from_config(cfg, torch):
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    except TypeError:
        try:
            model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
        except TypeError:
            cfg._attn_implementation = "eager"
            model = AutoModelForCausalLM.from_config(cfg)
    return model.float().eval()


def load_pretrained(path, torch):
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=torch.float32)
    except TypeError:
        model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager",
                                                     torch_dtype=torch.float32)
    return model.float().eval()


def is_tied(model):
    try:
        a = model.get_input_embeddings().weight
        b = model.get_output_embeddings().weight
        return a.data_ptr() == b.data_ptr()
    except Exception:  # noqa: BLE001
        return False


def ensure_tied(model):
    if not getattr(model.config, "tie_word_embeddings", False) or is_tied(model):
        return
    try:
        model.tie_weights()
    except Exception:  # noqa: BLE001
        pass
    if not is_tied(model):
        model.get_output_embeddings().weight = model.get_input_embeddings().weight
    if not is_tied(model):
        raise RuntimeError("could not tie lm_head to embed_tokens")


def init_weights(model, seed, torch):
    """Deterministic init independent of transformers' _init_weights."""
    ensure_tied(model)
    g = torch.Generator(device="cpu").manual_seed(seed)
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings().weight
    tied = emb.data_ptr() == out.data_ptr()
    with torch.no_grad():
        for name, p in model.named_parameters():
            shape = tuple(p.shape)
            if p.data_ptr() == emb.data_ptr():
                val = torch.randn(shape, generator=g, dtype=torch.float32) * EMBED_STD
            elif p.data_ptr() == out.data_ptr():
                val = torch.randn(shape, generator=g, dtype=torch.float32) * LM_HEAD_STD
            elif name.endswith(".bias"):
                val = torch.randn(shape, generator=g, dtype=torch.float32) * BIAS_STD
            elif p.dim() == 1:  # RMSNorm weights
                val = 1.0 + torch.randn(shape, generator=g, dtype=torch.float32) * NORM_JITTER
            else:
                val = torch.randn(shape, generator=g, dtype=torch.float32) * INIT_STD
            p.copy_(val.to(p.device))
    if tied and not is_tied(model):
        raise RuntimeError("tied embeddings came apart during init")
    return tied


def save_model(model, path):
    try:
        model.save_pretrained(path, safe_serialization=True)
    except TypeError:
        model.save_pretrained(path)  # transformers versions that always write safetensors
    if not os.path.exists(os.path.join(path, "model.safetensors")):
        raise RuntimeError(f"{path}: save_pretrained wrote no model.safetensors "
                           f"({sorted(os.listdir(path))})")


# ----------------------------------------------------------------------------------------------
# Reference computations
# ----------------------------------------------------------------------------------------------

def hf_logits_fn(model, device, torch):
    def fn(ids):
        x = torch.tensor([ids], dtype=torch.long, device=device)
        with torch.no_grad():
            out = model(input_ids=x, use_cache=False)
        return out.logits[0]
    return fn


def pure_logits_fn(sd, cfg, device, torch):
    """Plain float64 Llama-family forward from the state dict (an independent reference)."""
    f64 = torch.float64
    W = {k: v.detach().to(device=device, dtype=f64) for k, v in sd.items()}
    H = int(cfg.num_attention_heads)
    KVH = int(getattr(cfg, "num_key_value_heads", None) or H)
    hd = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // H)
    L = int(cfg.num_hidden_layers)
    eps = float(cfg.rms_norm_eps)
    theta = config_theta(cfg)
    emb = W["model.embed_tokens.weight"]
    lm = W.get("lm_head.weight", emb)

    def lin(x, name):
        y = x @ W[name + ".weight"].T
        b = W.get(name + ".bias")
        return y if b is None else y + b

    def rms(x, w):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w

    def fn(ids):
        T = len(ids)
        idx = torch.tensor(ids, dtype=torch.long, device=device)
        x = emb[idx]
        pos = torch.arange(T, dtype=f64, device=device)
        inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=f64, device=device) / hd))
        ang = pos[:, None] * inv[None, :]
        cos = torch.cat([ang.cos(), ang.cos()], -1)
        sin = torch.cat([ang.sin(), ang.sin()], -1)

        def rope(t):  # [h, T, hd]
            t1, t2 = t[..., : hd // 2], t[..., hd // 2:]
            return t * cos + torch.cat([-t2, t1], -1) * sin

        mask = torch.triu(torch.ones(T, T, dtype=torch.bool, device=device), 1)
        for i in range(L):
            p = f"model.layers.{i}."
            h = rms(x, W[p + "input_layernorm.weight"])
            q = lin(h, p + "self_attn.q_proj").view(T, H, hd).transpose(0, 1)
            k = lin(h, p + "self_attn.k_proj").view(T, KVH, hd).transpose(0, 1)
            v = lin(h, p + "self_attn.v_proj").view(T, KVH, hd).transpose(0, 1)
            q, k = rope(q), rope(k)
            k = k.repeat_interleave(H // KVH, dim=0)
            v = v.repeat_interleave(H // KVH, dim=0)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            s = s.masked_fill(mask, float("-inf"))
            a = torch.softmax(s, dim=-1) @ v
            x = x + lin(a.transpose(0, 1).reshape(T, H * hd), p + "self_attn.o_proj")
            h = rms(x, W[p + "post_attention_layernorm.weight"])
            g = lin(h, p + "mlp.gate_proj")
            u = lin(h, p + "mlp.up_proj")
            x = x + lin(torch.nn.functional.silu(g) * u, p + "mlp.down_proj")
        x = rms(x, W["model.norm.weight"])
        return x @ lm.T
    return fn


def sliding_ppl(logits_fn, ids, seq_len, stride, torch):
    """The standard strided protocol: each token scored once, the first never."""
    n = len(ids)
    nll_sum, count, prev_end, windows = 0.0, 0, 0, 0
    for begin in range(0, n, stride):
        end = min(begin + seq_len, n)
        lo = max(prev_end, begin + 1)
        if lo < end:
            logits = logits_fn(ids[begin:end]).to(torch.float64)
            logp = torch.log_softmax(logits, dim=-1)
            pos = torch.arange(lo - 1 - begin, end - 1 - begin, device=logp.device)
            tgt = torch.tensor(ids[lo:end], dtype=torch.long, device=logp.device)
            nll_sum += float(-logp[pos, tgt].sum().item())
            count += end - lo
        windows += 1
        prev_end = end
        if end == n:
            break
    return dict(ppl=math.exp(nll_sum / count), nll_sum=nll_sum, tokens=count, windows=windows)


def rel_max(a, b):
    return float((a - b).abs().max().item() / max(b.abs().max().item(), 1e-300))


# ----------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--vocab", type=int, default=460, help="BPE trainer vocab_size (default 460)")
    ap.add_argument("--train-words", type=int, default=6000)
    ap.add_argument("--text-tokens", type=int, default=3000)
    ap.add_argument("--ref-tokens", type=int, default=200)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--device", default=None, help="cuda|cpu (default: cuda when present)")
    args = ap.parse_args()
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    for a in archs:
        if a not in ARCHS:
            print(f"unknown arch {a!r} (known: {', '.join(ARCHS)})", file=sys.stderr)
            return 2

    import torch
    import transformers
    import tokenizers
    from safetensors import safe_open
    from safetensors.torch import save_file

    try:  # no "Writing model shards" / "Loading weights" bars in the log
        transformers.utils.logging.disable_progress_bar()
    except Exception:  # noqa: BLE001
        pass
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        torch.set_float32_matmul_precision("highest")
    except Exception:  # noqa: BLE001
        pass
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"tokenizers {tokenizers.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name(0)})" if device == "cuda" else ""))

    out = os.path.abspath(args.out_dir)
    os.makedirs(out, exist_ok=True)

    # -- tokenizer ------------------------------------------------------------------------------
    corpus = gen_text(args.seed, args.train_words)
    tok = train_tokenizer([p for p in corpus.split("\n\n") if p], args.vocab)
    hf_tok = wrap_tokenizer(tok)
    tok_dir = os.path.join(out, "tokenizer")
    hf_tok.save_pretrained(tok_dir)
    tv = tok.get_vocab_size()
    bos_id, eos_id, unk_id = tok.token_to_id("<s>"), tok.token_to_id("</s>"), tok.token_to_id("<unk>")
    log(f"tokenizer: vocab {tv} (asked {args.vocab}), <unk>={unk_id} <s>={bos_id} </s>={eos_id}, "
        f"trained on {len(corpus.split())} words / {len(corpus)} chars")

    # -- held-out text ---------------------------------------------------------------------------
    n_words = max(200, args.text_tokens // 2)
    while True:
        text = gen_text(args.seed + 1_000_003, n_words)
        ids_full = [int(i) for i in tok.encode(text, add_special_tokens=False).ids]
        if len(ids_full) >= args.text_tokens:
            break
        n_words = int(n_words * 1.3) + 10
    # trim to whole paragraphs near the target size, keeping the text well-formed
    paras = text.split("\n\n")
    while len(paras) > 1:
        cand = "\n\n".join(paras[:-1])
        if len(tok.encode(cand, add_special_tokens=False).ids) < args.text_tokens:
            break
        paras = paras[:-1]
    text = "\n\n".join(paras).strip()
    with open(os.path.join(out, "text.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(text)
    with open(os.path.join(out, "text.txt"), "rb") as f:
        text = f.read().decode("utf-8")  # exactly what the engine will read
    ids_full = [int(i) for i in tok.encode(text, add_special_tokens=False).ids]

    # the same ids three ways: raw tokenizer, transformers wrapper, the saved tokenizer.json
    from tokenizers import Tokenizer
    ids_hf = hf_encode(hf_tok, text)
    ids_file = [int(i) for i in Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
                .encode(text, add_special_tokens=False).ids]
    for label, other in (("transformers wrapper", ids_hf), ("saved tokenizer.json", ids_file)):
        if other != ids_full:
            bad = next((i for i, (a, b) in enumerate(zip(ids_full, other)) if a != b),
                       min(len(ids_full), len(other)))
            raise RuntimeError(f"{label} tokenizes text.txt differently from the trained tokenizer "
                               f"(first difference at {bad}; lengths {len(other)} vs {len(ids_full)})")
    decoded = tok.decode(ids_full, skip_special_tokens=False)
    if decoded != text:
        log("WARNING: decode(encode(text)) != text")
    if unk_id is not None and unk_id in ids_full:
        log("WARNING: <unk> occurs in the tokenized text")
    ids = ids_full[: args.ref_tokens]
    with open(os.path.join(out, "ids.json"), "w") as f:
        json.dump(ids, f)
    with open(os.path.join(out, "ids_full.json"), "w") as f:
        json.dump(ids_full, f)
    log(f"text.txt: {len(text)} chars, {len(text.encode('utf-8'))} bytes, {len(ids_full)} tokens "
        f"(no BOS); ids.json: first {len(ids)}; non-ASCII chars: {sum(ord(c) > 127 for c in text)}")

    vocab = ((tv + 7) // 8) * 8
    meta = dict(seed=args.seed, versions=dict(torch=torch.__version__, transformers=transformers.__version__,
                                              tokenizers=tokenizers.__version__),
                device=device, tokenizer_vocab=tv, model_vocab=vocab, bos_id=bos_id, eos_id=eos_id,
                unk_id=unk_id, text_chars=len(text), n_ids_full=len(ids_full), n_ids=len(ids),
                seq_len=args.seq_len, stride=args.stride,
                init=dict(linear_std=INIT_STD, embed_std=EMBED_STD, lm_head_std=LM_HEAD_STD,
                          bias_std=BIAS_STD, norm_jitter=NORM_JITTER),
                archs={})

    for ai, arch in enumerate(archs):
        t_arch = time.time()
        adir = os.path.join(out, arch)
        os.makedirs(adir, exist_ok=True)
        cfg = make_config(arch, vocab, bos_id, eos_id)
        model = model_from_config(cfg, torch)
        tied = init_weights(model, args.seed * 100 + ai, torch)
        n_par = sum(p.numel() for p in model.parameters())
        save_model(model, adir)
        hf_tok.save_pretrained(adir)
        with open(os.path.join(adir, "config.json")) as f:
            saved_cfg = json.load(f)
        with safe_open(os.path.join(adir, "model.safetensors"), framework="pt") as f:
            keys = sorted(f.keys())
        n_bias = sum(k.endswith(".bias") for k in keys)
        log(f"{arch}: {n_par} params, tied={tied}, {len(keys)} tensors in model.safetensors "
            f"(lm_head.weight {'present' if 'lm_head.weight' in keys else 'absent'}, {n_bias} biases), "
            f"rope theta {config_theta(cfg)}")
        log(f"{arch}: config.json = {json.dumps(saved_cfg, sort_keys=True)}")
        missing = [k for k in ("tie_word_embeddings", "rms_norm_eps", "num_key_value_heads")
                   if k not in saved_cfg]
        if "rope_theta" not in saved_cfg and not (isinstance(saved_cfg.get("rope_parameters"), dict)
                                                  and "rope_theta" in saved_cfg["rope_parameters"]):
            missing.append("rope_theta/rope_parameters.rope_theta")
        if missing:
            log(f"{arch}: NOTE config.json omits {missing} (readers must apply transformers' defaults)")

        # reload from disk: the reference must be computed from exactly the saved files
        ref = load_pretrained(adir, torch)
        mem_sd = model.state_dict()
        for k, v in ref.state_dict().items():
            if k not in mem_sd or not torch.equal(mem_sd[k].cpu(), v.cpu()):
                raise RuntimeError(f"{arch}: reloaded tensor {k} differs from the saved model")
        if tied and not is_tied(ref):
            raise RuntimeError(f"{arch}: tie_word_embeddings lost on reload")
        del model
        ref = ref.to(device)
        sd32 = {k: v.detach().clone() for k, v in ref.state_dict().items()}

        # float32 run (information: its own error against the float64 reference)
        f32_fn = hf_logits_fn(ref, device, torch)
        logits_f32 = f32_fn(ids).float().cpu()
        ppl_f32 = sliding_ppl(f32_fn, ids_full, args.seq_len, args.stride, torch)

        # float64 reference
        ref = ref.double()
        f64_fn = hf_logits_fn(ref, device, torch)
        logits64 = f64_fn(ids).double().cpu()
        ppl64 = sliding_ppl(f64_fn, ids_full, args.seq_len, args.stride, torch)

        # independent plain-torch float64 forward
        pure_fn = pure_logits_fn(sd32, ref.config, device, torch)
        with torch.no_grad():
            logits_pure = pure_fn(ids).double().cpu()
            ppl_pure = sliding_ppl(pure_fn, ids_full, args.seq_len, args.stride, torch)

        save_file({"logits": logits64.float().contiguous(),
                   "logits_f32": logits_f32.contiguous(),
                   "logits_pure64": logits_pure.float().contiguous()},
                  os.path.join(adir, "ref_logits.safetensors"))
        e_f32 = rel_max(logits_f32.double(), logits64)
        e_pure = rel_max(logits_pure, logits64)
        argmax_pure = float((logits_pure.argmax(-1) == logits64.argmax(-1)).double().mean().item())
        rec = dict(ppl=ppl64["ppl"], nll_sum=ppl64["nll_sum"], tokens=ppl64["tokens"],
                   n_ids=len(ids_full), windows=ppl64["windows"], seq_len=args.seq_len,
                   stride=args.stride, add_bos=False,
                   ppl_f32=ppl_f32["ppl"], ppl_pure64=ppl_pure["ppl"])
        with open(os.path.join(adir, "ref_ppl.json"), "w") as f:
            json.dump(rec, f, indent=1)
        scale = float(logits64.abs().max().item())
        log(f"{arch}: logits [{logits64.shape[0]}, {logits64.shape[1]}] max|ref| {scale:.4g}, "
            f"std {float(logits64.std().item()):.4g}; rel err f32 {e_f32:.3e}, pure-f64 {e_pure:.3e} "
            f"(argmax agree {argmax_pure:.4f})")
        log(f"{arch}: ppl f64 {ppl64['ppl']:.6f} over {ppl64['tokens']} tokens in {ppl64['windows']} "
            f"windows; f32 {ppl_f32['ppl']:.6f}; pure-f64 {ppl_pure['ppl']:.6f} "
            f"({time.time() - t_arch:.1f}s)")
        if e_pure > 1e-5:
            log(f"{arch}: WARNING transformers-f64 and the plain float64 forward differ by {e_pure:.3e}")
        meta["archs"][arch] = dict(config_class=type(cfg).__name__, params=n_par, tied=tied,
                                   tensors=len(keys), rope_theta=config_theta(cfg),
                                   ref_logit_scale=scale, f32_rel_err=e_f32, pure64_rel_err=e_pure,
                                   ppl=ppl64["ppl"], ppl_f32=ppl_f32["ppl"], ppl_pure64=ppl_pure["ppl"],
                                   tokens=ppl64["tokens"], config_json_missing=missing)
        del ref
        if device == "cuda":
            torch.cuda.empty_cache()

    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    log(f"done: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
