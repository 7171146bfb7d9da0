#!/usr/bin/env python3
"""Build tiny random Llama / Qwen2 models with random PEFT LoRA adapters, one token batch, and
PyTorch-autograd references of the LoRA gradients, for checking our loraGradients against them.

    python3 scripts/crosscheck/grad_make.py OUT_DIR [--seed N] [--cases llama,qwen2]
                                            [--seq-len 24] [--device cuda|cpu]

Writes per case (llama: GQA, untied lm_head; qwen2: q/k/v biases, tied embeddings):
  OUT_DIR/<case>/model/       config.json + model.safetensors (save_pretrained, float32)
  OUT_DIR/<case>/adapter/     adapter_config.json + adapter_model.safetensors (PEFT save_pretrained):
                              r 4, lora_alpha 8 (scaling 2), all seven projections, A and B random
  OUT_DIR/<case>/batch.json   {"ids": [T], "targets": [T], "mask": [T]}: targets[t] = ids[t+1],
                              the last position masked (target 0), a few other positions masked
  OUT_DIR/<case>/ref_grads.safetensors
        float64 (transformers eager attention + PEFT, model.double(), TF32 off): for every adapter
        key base_model.model.<module>.lora_A.weight / .lora_B.weight the gradient of the loss with
        respect to that tensor (same shape), plus `loss` [1] and `nll` [T]
  OUT_DIR/<case>/ref32_grads.safetensors      the same computed in float32 (its error gives scale)
  OUT_DIR/<case>/ref_pure64_grads.safetensors the same from an independent plain-torch float64
        forward written here (no transformers, no PEFT): a check of the reference itself
  OUT_DIR/<case>/meta.json    versions, sizes, losses, the references' mutual differences
loss = sum_t mask_t * nll_t / sum_t mask_t, nll_t = -log_softmax(logits_t)[targets_t].
The references are computed from the saved folders reloaded from disk (checked bit-identical to
what was saved). Needs python3 with torch, transformers (5.x), peft, safetensors. No network.
"""
import argparse
import json
import math
import os
import re
import sys
import time

T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------
# Sizes and initialisation
# ----------------------------------------------------------------------------------------------

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PARENT = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
          "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
RANK = 4
ALPHA = 8
VOCAB = 128

LINEAR_STD = 0.08    # backbone linear weights
EMBED_STD = 0.3      # token embeddings (also qwen2's tied lm_head): logits of a few units
LM_HEAD_STD = 0.25   # llama's untied lm_head
BIAS_STD = 0.1       # qwen2's q/k/v biases
NORM_JITTER = 0.2    # RMSNorm weights 1 + N(0, 0.2^2)
LORA_A_STD = 0.1     # LoRA A [r, in]
LORA_B_STD = 0.1     # LoRA B [out, r]: non-zero, else dA = 0 and the check means little

CASES = ["llama", "qwen2"]

KEY_RE = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+_proj)\.lora_([AB])\.weight$")


def case_spec(case):
    common = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=128, hidden_act="silu",
                  attention_dropout=0.0, initializer_range=LINEAR_STD, bos_token_id=1, eos_token_id=2)
    if case == "llama":
        return dict(cls="LlamaConfig", theta=10000.0, kw=dict(
            common, intermediate_size=160, rms_norm_eps=1e-6, tie_word_embeddings=False,
            attention_bias=False, mlp_bias=False))
    if case == "qwen2":
        return dict(cls="Qwen2Config", theta=1e6, kw=dict(
            common, intermediate_size=176, rms_norm_eps=1e-6, tie_word_embeddings=True,
            use_sliding_window=False))
    raise ValueError(f"unknown case {case}")


def config_theta(cfg):
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict) and "rope_theta" in rp:
        return float(rp["rope_theta"])
    th = getattr(cfg, "rope_theta", None)
    return None if th is None else float(th)


def make_config(case):
    import transformers

    spec = case_spec(case)
    cls = getattr(transformers, spec["cls"])
    theta = spec["theta"]
    errors = []
    # transformers 5 keeps rope_theta inside rope_parameters; 4.x took rope_theta directly.
    for variant in ("rope_parameters", "rope_theta"):
        try:
            if variant == "rope_parameters":
                cfg = cls(rope_parameters={"rope_type": "default", "rope_theta": theta}, **spec["kw"])
            else:
                cfg = cls(rope_theta=theta, **spec["kw"])
        except Exception as e:  # noqa: BLE001
            errors.append(f"{variant}: {type(e).__name__}: {e}")
            continue
        got = config_theta(cfg)
        if got is not None and abs(got - theta) <= 1e-9 * theta:
            return cfg
        errors.append(f"{variant}: effective rope theta {got}, wanted {theta}")
    raise RuntimeError(f"{case}: could not build {spec['cls']}: " + " | ".join(errors))


def new_model(cfg, torch):
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    except TypeError:
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    return model.float().eval()


def load_model(path, torch):
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=torch.float32)
    except TypeError:
        model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", torch_dtype=torch.float32)
    return model.float().eval()


def tied(model):
    try:
        return model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    except Exception:  # noqa: BLE001
        return False


def init_backbone(model, seed, torch):
    """Every backbone tensor drawn here from a seeded generator (not transformers' init)."""
    if getattr(model.config, "tie_word_embeddings", False) and not tied(model):
        model.tie_weights()
        if not tied(model):
            model.get_output_embeddings().weight = model.get_input_embeddings().weight
    g = torch.Generator(device="cpu").manual_seed(seed)
    emb = model.get_input_embeddings().weight.data_ptr()
    out = model.get_output_embeddings().weight.data_ptr()
    with torch.no_grad():
        for name, p in model.named_parameters():  # a tied tensor is listed once
            if p.data_ptr() == emb:
                std, base = EMBED_STD, 0.0
            elif p.data_ptr() == out:
                std, base = LM_HEAD_STD, 0.0
            elif name.endswith(".bias"):
                std, base = BIAS_STD, 0.0
            elif p.dim() == 1:
                std, base = NORM_JITTER, 1.0
            else:
                std, base = LINEAR_STD, 0.0
            p.copy_(base + std * torch.randn(tuple(p.shape), generator=g, dtype=torch.float32))


def init_lora(peft_model, seed, torch):
    g = torch.Generator(device="cpu").manual_seed(seed)
    n = 0
    with torch.no_grad():
        for name, p in sorted(peft_model.named_parameters()):
            if ".lora_A." in name or ".lora_B." in name:
                std = LORA_A_STD if ".lora_A." in name else LORA_B_STD
                p.copy_(std * torch.randn(tuple(p.shape), generator=g, dtype=torch.float32))
                n += 1
    return n


def file_key(param_name):
    """PEFT parameter name -> adapter file key (drop the adapter name `default`)."""
    return param_name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


# ----------------------------------------------------------------------------------------------
# References
# ----------------------------------------------------------------------------------------------

def masked_loss(logits, targets, mask, torch):
    logp = torch.log_softmax(logits, dim=-1)
    nll = -logp.gather(-1, targets[:, None])[:, 0]
    return (mask * nll).sum() / mask.sum(), nll


def peft_reference(case_dir, batch, dtype, device, torch, check_against=None):
    """Loss and LoRA gradients from the saved model + adapter, through transformers + PEFT."""
    from peft import PeftModel

    base = load_model(os.path.join(case_dir, "model"), torch)
    model = PeftModel.from_pretrained(base, os.path.join(case_dir, "adapter"), is_trainable=True)
    model = model.to(device=device, dtype=dtype).eval()
    lora = {}
    for name, p in model.named_parameters():
        is_lora = ".lora_A." in name or ".lora_B." in name
        p.requires_grad_(is_lora)
        if is_lora:
            lora[file_key(name)] = p
    scalings = set()
    for mod in model.modules():
        s = getattr(mod, "scaling", None)
        if isinstance(s, dict) and "default" in s:
            scalings.add(float(s["default"]))
    if scalings != {ALPHA / RANK}:
        raise RuntimeError(f"PEFT scalings {sorted(scalings)}, expected {{{ALPHA / RANK}}}")
    if check_against is not None:  # the loaded adapter must be exactly the saved one
        for k, v in check_against.items():
            if k not in lora or not torch.equal(lora[k].detach().float().cpu(), v.float().cpu()):
                raise RuntimeError(f"PEFT's loaded {k} differs from the adapter file")
        if set(lora) != set(check_against):
            raise RuntimeError(f"PEFT holds LoRA tensors not in the file: {sorted(set(lora) - set(check_against))[:4]}")
    ids = torch.tensor([batch["ids"]], dtype=torch.long, device=device)
    targets = torch.tensor(batch["targets"], dtype=torch.long, device=device)
    mask = torch.tensor(batch["mask"], dtype=dtype, device=device)
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids, use_cache=False).logits[0]
    logits_dtype = str(logits.dtype)
    loss, nll = masked_loss(logits.to(dtype), targets, mask, torch)
    loss.backward()
    grads = {}
    for k, p in lora.items():
        if p.grad is None:
            raise RuntimeError(f"no gradient reached {k}")
        grads[k] = p.grad.detach().to(torch.float64).cpu().contiguous()
    out = dict(grads=grads, loss=float(loss.item()), nll=nll.detach().to(torch.float64).cpu(),
               logits_dtype=logits_dtype)
    del model, base
    return out


def pure_reference(sd, adapter, cfg, batch, device, torch):
    """An independent float64 forward (plain torch) with the LoRA branch, differentiated by autograd."""
    f64 = torch.float64
    W = {k: v.detach().to(device=device, dtype=f64) for k, v in sd.items()}
    leaves = {k: v.detach().to(device=device, dtype=f64).clone().requires_grad_(True) for k, v in adapter.items()}
    nh = int(cfg.num_attention_heads)
    nkv = int(getattr(cfg, "num_key_value_heads", None) or nh)
    hd = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // nh)
    eps = float(cfg.rms_norm_eps)
    theta = config_theta(cfg)
    s = ALPHA / RANK
    emb = W["model.embed_tokens.weight"]
    lm = W.get("lm_head.weight", emb) if not getattr(cfg, "tie_word_embeddings", False) else emb

    def lin(x, path):
        y = x @ W[path + ".weight"].T
        b = W.get(path + ".bias")
        if b is not None:
            y = y + b
        a = leaves.get(f"base_model.model.{path}.lora_A.weight")
        if a is not None:
            y = y + s * ((x @ a.T) @ leaves[f"base_model.model.{path}.lora_B.weight"].T)
        return y

    def rms(x, w):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w

    ids = torch.tensor(batch["ids"], dtype=torch.long, device=device)
    T = ids.shape[0]
    x = emb[ids]
    pos = torch.arange(T, dtype=f64, device=device)
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=f64, device=device) / hd))
    ang = pos[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)

    def rope(t):  # [heads, T, hd], rotate-half convention
        t1, t2 = t[..., : hd // 2], t[..., hd // 2:]
        return t * cos + torch.cat([-t2, t1], -1) * sin

    causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=device), 1)
    for i in range(int(cfg.num_hidden_layers)):
        p = f"model.layers.{i}."
        h = rms(x, W[p + "input_layernorm.weight"])
        q = rope(lin(h, p + "self_attn.q_proj").view(T, nh, hd).transpose(0, 1))
        k = rope(lin(h, p + "self_attn.k_proj").view(T, nkv, hd).transpose(0, 1))
        v = lin(h, p + "self_attn.v_proj").view(T, nkv, hd).transpose(0, 1)
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = torch.softmax(att.masked_fill(causal, float("-inf")), dim=-1)
        x = x + lin((att @ v).transpose(0, 1).reshape(T, nh * hd), p + "self_attn.o_proj")
        h = rms(x, W[p + "post_attention_layernorm.weight"])
        x = x + lin(torch.nn.functional.silu(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"),
                    p + "mlp.down_proj")
    logits = rms(x, W["model.norm.weight"]) @ lm.T
    targets = torch.tensor(batch["targets"], dtype=torch.long, device=device)
    mask = torch.tensor(batch["mask"], dtype=f64, device=device)
    loss, nll = masked_loss(logits, targets, mask, torch)
    loss.backward()
    grads = {k: v.grad.detach().cpu().contiguous() for k, v in leaves.items()}
    return dict(grads=grads, loss=float(loss.item()), nll=nll.detach().cpu())


def save_ref(path, ref, torch, dtype):
    from safetensors.torch import save_file

    tensors = {k: v.to(dtype).contiguous() for k, v in ref["grads"].items()}
    tensors["loss"] = torch.tensor([ref["loss"]], dtype=dtype)
    tensors["nll"] = ref["nll"].to(dtype).contiguous()
    save_file(tensors, path)


def rel_max(a, b):
    return float((a - b).abs().max().item() / max(b.abs().max().item(), 1e-300))


def worst_rel(grads, ref):
    return max(rel_max(grads[k].double(), ref[k].double()) for k in ref)


# ----------------------------------------------------------------------------------------------

def make_batch(seed, T, vocab):
    import random

    r = random.Random(seed)
    ids = [r.randrange(vocab) for _ in range(T)]
    targets = ids[1:] + [0]
    mask = [1.0] * T
    mask[T - 1] = 0.0  # no next token
    for t in r.sample(range(T - 1), 3):  # a few more positions left out (their targets are real)
        mask[t] = 0.0
    return dict(ids=ids, targets=targets, mask=mask)


def build_case(case, ci, out, args, torch, versions):
    from peft import LoraConfig, get_peft_model
    from safetensors import safe_open
    from safetensors.torch import load_file

    t_case = time.time()
    cdir = os.path.join(out, case)
    mdir, adir = os.path.join(cdir, "model"), os.path.join(cdir, "adapter")
    os.makedirs(mdir, exist_ok=True)
    os.makedirs(adir, exist_ok=True)

    cfg = make_config(case)
    model = new_model(cfg, torch)
    init_backbone(model, args.seed * 100 + ci, torch)
    is_tied = tied(model)
    if bool(getattr(cfg, "tie_word_embeddings", False)) != is_tied:
        raise RuntimeError(f"{case}: tie_word_embeddings {cfg.tie_word_embeddings} but tied={is_tied}")
    try:
        model.save_pretrained(mdir, safe_serialization=True)
    except TypeError:
        model.save_pretrained(mdir)
    if not os.path.exists(os.path.join(mdir, "model.safetensors")):
        raise RuntimeError(f"{mdir}: save_pretrained wrote no model.safetensors ({sorted(os.listdir(mdir))})")
    saved_sd = {k: v.detach().clone() for k, v in model.state_dict().items()}

    lcfg = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=list(MODULES), lora_dropout=0.0,
                      bias="none", task_type="CAUSAL_LM", init_lora_weights=False)
    peft_model = get_peft_model(model, lcfg)
    n_lora = init_lora(peft_model, args.seed * 100 + 50 + ci, torch)
    peft_model.save_pretrained(adir)
    afile = os.path.join(adir, "adapter_model.safetensors")
    if not os.path.exists(afile):
        raise RuntimeError(f"{adir}: PEFT wrote no adapter_model.safetensors ({sorted(os.listdir(adir))})")
    adapter = load_file(afile)
    L = int(cfg.num_hidden_layers)
    want = {f"base_model.model.model.layers.{l}.{PARENT[m]}.{m}.lora_{w}.weight"
            for l in range(L) for m in MODULES for w in "AB"}
    if set(adapter) != want:
        raise RuntimeError(f"{case}: adapter keys differ from base_model.model.<module>.lora_A/B.weight: "
                           f"missing {sorted(want - set(adapter))[:4]}, extra {sorted(set(adapter) - want)[:4]}")
    if n_lora != len(want):
        raise RuntimeError(f"{case}: initialised {n_lora} LoRA tensors, the file has {len(want)}")
    mem = {file_key(n): p.detach().cpu() for n, p in peft_model.named_parameters() if ".lora_" in n}
    for k, v in adapter.items():
        m = KEY_RE.match(k)
        if not m:
            raise RuntimeError(f"{case}: unexpected adapter key {k}")
        if not torch.equal(mem[k], v):
            raise RuntimeError(f"{case}: saved {k} differs from the in-memory adapter")
        if m.group(4) == "A" and v.shape[0] != RANK or m.group(4) == "B" and v.shape[1] != RANK:
            raise RuntimeError(f"{case}: {k} has shape {list(v.shape)} (rank {RANK} expected)")
    with open(os.path.join(adir, "adapter_config.json")) as f:
        acfg = json.load(f)
    if acfg.get("r") != RANK or acfg.get("lora_alpha") != ALPHA or acfg.get("use_rslora"):
        raise RuntimeError(f"{case}: adapter_config.json r={acfg.get('r')} alpha={acfg.get('lora_alpha')} "
                           f"rslora={acfg.get('use_rslora')}")
    del peft_model, model

    # the saved backbone, reloaded, must be what was saved
    with safe_open(os.path.join(mdir, "model.safetensors"), framework="pt") as f:
        file_keys = sorted(f.keys())
    reloaded = load_model(mdir, torch)
    for k, v in reloaded.state_dict().items():
        if k not in saved_sd or not torch.equal(saved_sd[k].cpu(), v.cpu()):
            raise RuntimeError(f"{case}: reloaded tensor {k} differs from the saved model")
    if is_tied and not tied(reloaded):
        raise RuntimeError(f"{case}: tie_word_embeddings lost on reload")
    sd_file = load_file(os.path.join(mdir, "model.safetensors"))
    del reloaded

    batch = make_batch(args.seed * 100 + 90 + ci, args.seq_len, VOCAB)
    with open(os.path.join(cdir, "batch.json"), "w") as f:
        json.dump(batch, f)

    ref64 = peft_reference(cdir, batch, torch.float64, args.device, torch, check_against=adapter)
    ref32 = peft_reference(cdir, batch, torch.float32, args.device, torch)
    pure = pure_reference(sd_file, adapter, cfg, batch, args.device, torch)
    save_ref(os.path.join(cdir, "ref_grads.safetensors"), ref64, torch, torch.float64)
    save_ref(os.path.join(cdir, "ref32_grads.safetensors"), ref32, torch, torch.float32)
    save_ref(os.path.join(cdir, "ref_pure64_grads.safetensors"), pure, torch, torch.float64)

    g = ref64["grads"]
    e32, epure = worst_rel(ref32["grads"], g), worst_rel(pure["grads"], g)
    l32 = abs(ref32["loss"] / ref64["loss"] - 1)
    lpure = abs(pure["loss"] / ref64["loss"] - 1)
    scale_a = max(float(v.abs().max()) for k, v in g.items() if ".lora_A." in k)
    scale_b = max(float(v.abs().max()) for k, v in g.items() if ".lora_B." in k)
    zero = [k for k, v in g.items() if float(v.abs().max()) == 0.0]
    log(f"{case}: {sum(v.numel() for v in saved_sd.values())} backbone params ({len(file_keys)} tensors in "
        f"model.safetensors, lm_head.weight {'present' if 'lm_head.weight' in file_keys else 'absent'}, "
        f"{sum(k.endswith('.bias') for k in file_keys)} biases, tied={is_tied}), {len(adapter)} adapter "
        f"tensors, rope theta {config_theta(cfg)}; T={len(batch['ids'])}, mask sum {sum(batch['mask']):g}")
    log(f"{case}: loss f64 {ref64['loss']:.12g} (logits {ref64['logits_dtype']}), f32 {ref32['loss']:.9g} "
        f"(rel {l32:.2e}), pure-f64 {pure['loss']:.12g} (rel {lpure:.2e}); max|dA| {scale_a:.3e}, "
        f"max|dB| {scale_b:.3e}; worst grad rel err f32 {e32:.2e}, pure-f64 {epure:.2e} "
        f"({time.time() - t_case:.1f}s)")
    if zero:
        log(f"{case}: WARNING all-zero reference gradients: {zero[:4]}")
    if epure > 1e-5 or lpure > 1e-6:
        log(f"{case}: WARNING transformers+PEFT float64 and the plain float64 forward differ "
            f"(grads {epure:.2e}, loss {lpure:.2e})")
    with open(os.path.join(mdir, "config.json")) as f:
        saved_cfg = json.load(f)
    meta = dict(case=case, versions=versions, device=args.device, seed=args.seed,
                config_class=type(cfg).__name__, config=saved_cfg,
                rank=RANK, alpha=ALPHA, scaling=ALPHA / RANK, modules=MODULES, tied=is_tied,
                init=dict(linear_std=LINEAR_STD, embed_std=EMBED_STD, lm_head_std=LM_HEAD_STD,
                          bias_std=BIAS_STD, norm_jitter=NORM_JITTER, lora_a_std=LORA_A_STD,
                          lora_b_std=LORA_B_STD),
                seq_len=len(batch["ids"]), mask_sum=sum(batch["mask"]),
                loss=ref64["loss"], loss_f32=ref32["loss"], loss_pure64=pure["loss"],
                logits_dtype_f64_run=ref64["logits_dtype"],
                grad_rel_err_f32=e32, grad_rel_err_pure64=epure, max_abs_dA=scale_a, max_abs_dB=scale_b)
    with open(os.path.join(cdir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    if args.device == "cuda":
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=4321)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--seq-len", type=int, default=24)
    ap.add_argument("--device", default=None, help="cuda|cpu (default: cuda when present)")
    args = ap.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in cases if c not in CASES]
    if bad or not cases:
        print(f"unknown case(s) {bad} (known: {', '.join(CASES)})", file=sys.stderr)
        return 2
    if not 2 <= args.seq_len <= 128:
        print("--seq-len must be in [2, 128]", file=sys.stderr)
        return 2

    import torch
    import transformers
    import peft

    try:
        transformers.utils.logging.disable_progress_bar()
    except Exception:  # noqa: BLE001
        pass
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        torch.set_float32_matmul_precision("highest")
    except Exception:  # noqa: BLE001
        pass
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    versions = dict(torch=torch.__version__, transformers=transformers.__version__, peft=peft.__version__)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
        f"device {args.device}" + (f" ({torch.cuda.get_device_name(0)})" if args.device == "cuda" else ""))
    out = os.path.abspath(args.out_dir)
    os.makedirs(out, exist_ok=True)
    for ci, case in enumerate(cases):
        build_case(case, ci, out, args, torch, versions)
    log(f"done: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
