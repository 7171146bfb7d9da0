#!/usr/bin/env python3
"""Cross-check a LoftQ Studio run and its PEFT export against Hugging Face PEFT and an
independent torch reference (see scripts/crosscheck/README.md).

  python3 scripts/crosscheck/peft_check.py --model ORIG_MODEL_DIR --run RUN_DIR \
      --export PEFT_EXPORT_DIR [--device cuda|cpu] [--exact-ref] [--ref-limit N]
  python3 scripts/crosscheck/peft_check.py --case MODEL,RUN,EXPORT --case MODEL,RUN,EXPORT ...

Per case:
  1. PEFT load   adapter_config.json fields; PeftModel.from_pretrained on EXPORT/backbone
                 (float32); every lora_A/lora_B tensor of the file lands (bit-exact) in the
                 model and every LoRA module PEFT created gets its weights; PEFT's own
                 missing/unexpected key report must be empty; PEFT's scaling = ours.
  2. Merge       merge_and_unload(); per target matrix rel_err = |W_orig - W_merged|/|W_orig|
                 (float64) <= err_init*1.02 + u*|Q|/|W| (u: backbone dtype rounding); and
                 W_merged = Q_backbone + s*B*A as computed here in float64.
  3. Decode      quantized.safetensors decoded here (packed little-endian codes, blockwise
                 absmax, NF/uniform codebooks) equals the backbone's target weights up to the
                 backbone dtype's rounding; |W - Q - s*B*A|/|W| with the run's adapter-init
                 reproduces layers.json err_init.
  4. --exact-ref an independent LoftQ/QLoRA reference in torch with exact SVD; err_q must agree
                 within 1e-4 relative, our err_init (randomized SVD) within 1% of the exact one.
Exit status: 0 all passed, 1 any check failed, 2 usage error.
"""
import argparse
import json
import math
import os
import re
import sys
import time
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import torch
except ImportError:  # lets `python3 -m py_compile` and --help work without torch
    torch = None

# Tolerances (see README.md for the reasoning).
MERGE_SLACK = 1.02          # rel_err <= err_init * 1.02 + u * |Q|/|W|
MERGE_FORMULA_TOL = 1e-5    # |W_merged - (Q + s B A)| / |Q + s B A|  (float32 merge arithmetic)
ERR_INIT_RECOMPUTE_TOL = 1e-4  # layers.json err_init vs float64 recomputation from the files
ERR_Q_TOL = 1e-4            # layers.json err_q vs reference, relative
ERR_INIT_REF_TOL = 0.01     # |ours/ref - 1| for err_init (randomized vs exact SVD)
NF_OFFSET = 0.9677083
# bitsandbytes' NF4 table (float32), to check the codebook builder itself.
BNB_NF4 = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]


def log(*parts):
    print(*parts, flush=True)


class Report:
    """Collects PASS/FAIL lines per case."""

    def __init__(self):
        self.cases = []  # (label, [(ok, what)])

    def start(self, label):
        self.cases.append((label, []))

    def check(self, ok, what, detail=""):
        ok = bool(ok)
        self.cases[-1][1].append((ok, what))
        log(f"  [{'PASS' if ok else 'FAIL'}] {what}{(': ' + detail) if detail else ''}")
        return ok

    def fail(self, what, detail=""):
        return self.check(False, what, detail)

    def info(self, text):
        log(f"  [info] {text}")

    def ok(self):
        return all(ok for _, checks in self.cases for ok, _ in checks)


# ---------------------------------------------------------------- files


def read_json(path):
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


class WeightStore:
    """Tensors of a model folder: one model.safetensors, or shards with an index."""

    def __init__(self, folder):
        from safetensors import safe_open

        self.folder = folder
        self._safe_open = safe_open
        self.where = {}
        index = os.path.join(folder, "model.safetensors.index.json")
        if os.path.isfile(index):
            for name, file in read_json(index)["weight_map"].items():
                self.where[name] = os.path.join(folder, file)
        else:
            files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
            if not files:
                raise FileNotFoundError(f"{folder}: no .safetensors files")
            for file in files:
                path = os.path.join(folder, file)
                with safe_open(path, framework="pt", device="cpu") as f:
                    for name in f.keys():
                        self.where[name] = path

    def has(self, name):
        return name in self.where

    def get(self, name):
        if name not in self.where:
            raise KeyError(f"{self.folder}: no tensor {name}")
        with self._safe_open(self.where[name], framework="pt", device="cpu") as f:
            return f.get_tensor(name)


def load_safetensors(path):
    from safetensors import safe_open

    out = {}
    with safe_open(path, framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        for name in f.keys():
            out[name] = f.get_tensor(name)
    return out, meta


def lora_keys(module):
    return (f"base_model.model.{module}.lora_A.weight", f"base_model.model.{module}.lora_B.weight")


# ---------------------------------------------------------------- quantizer


def linspace_js(start, stop, n):
    """Exactly the engine's linspace (float64): start + (stop - start) * i / (n - 1)."""
    if n == 1:
        return [start]
    return [start + ((stop - start) * i) / (n - 1) for i in range(n)]


def codebook_levels(kind, bits):
    """Sorted float32 levels: NF-k (k <= 4) per DESIGN.md with ndtri in float64, else uniform."""
    if kind == "nf" and bits <= 4:
        half = 2 ** (bits - 1)
        pos_p = linspace_js(NF_OFFSET, 0.5, half + 1)[:-1]
        neg_p = linspace_js(NF_OFFSET, 0.5, half)[:-1]
        pos = torch.special.ndtri(torch.tensor(pos_p, dtype=torch.float64))
        neg = -torch.special.ndtri(torch.tensor(neg_p, dtype=torch.float64))
        allv = torch.cat([pos, neg, torch.zeros(1, dtype=torch.float64)])
        allv, _ = torch.sort(allv)
        allv = allv / allv.abs().max()
        return allv.to(torch.float32)
    return torch.tensor(linspace_js(-1.0, 1.0, 2 ** bits), dtype=torch.float64).to(torch.float32)


def codebook_name(kind, bits):
    return f"nf{bits}" if kind == "nf" and bits <= 4 else f"uniform{bits}"


class Quantizer:
    """Blockwise absmax over the row-major flattened matrix; nearest level, ties to lower.

    Bit-for-bit the engine's arithmetic: absmax in float32, t = x * (1/absmax) in float64,
    code = number of level midpoints (float64) strictly below t, Q = level * absmax in float32.
    """

    def __init__(self, kind, bits, block, device):
        self.kind, self.bits, self.block, self.device = kind, bits, block, device
        self.levels = codebook_levels(kind, bits).to(device)
        lv = self.levels.double()
        self.mid = ((lv[:-1] + lv[1:]) / 2).contiguous()

    def blocks(self, n):
        return (n + self.block - 1) // self.block

    def _blocked(self, x):
        flat = x.reshape(-1)
        n = flat.numel()
        nb = self.blocks(n)
        pad = nb * self.block - n
        if pad:
            flat = torch.cat([flat, torch.zeros(pad, dtype=flat.dtype, device=flat.device)])
        return flat.view(nb, self.block), n

    def quantize(self, x):
        """x float32 [out, in] -> (codes int64 [n], absmax float32 [nb], Q float32 [out, in])."""
        xb, n = self._blocked(x.to(torch.float32))
        absmax = xb.abs().amax(dim=1)
        a64 = absmax.double()
        inv = torch.where(a64 > 0, 1.0 / torch.where(a64 > 0, a64, torch.ones_like(a64)), torch.zeros_like(a64))
        t = xb.double() * inv[:, None]
        codes = torch.searchsorted(self.mid, t.contiguous(), right=False)
        del t
        q = self.levels[codes] * absmax[:, None]
        return codes.reshape(-1)[:n], absmax, q.reshape(-1)[:n].view_as(x)

    def dequantize(self, codes, absmax, shape):
        n = codes.numel()
        nb = self.blocks(n)
        if absmax.numel() != nb:
            raise ValueError(f"absmax has {absmax.numel()} values, expected {nb}")
        scale = absmax.to(torch.float32).repeat_interleave(self.block)[:n]
        return (self.levels[codes] * scale).view(*shape)


def unpack_codes(packed, bits, count):
    """Little-endian bit stream: code i occupies bits [i*bits, (i+1)*bits) (tensor/packing.ts)."""
    need = (count * bits + 7) // 8
    if packed.numel() < need:
        raise ValueError(f"packed codes too short: {packed.numel()} bytes for {count} {bits}-bit codes")
    p = packed.reshape(-1)[:need].to(torch.int64)
    if bits == 8:
        return p[:count]
    p = torch.cat([p, torch.zeros(1, dtype=torch.int64, device=p.device)])
    bit = torch.arange(count, dtype=torch.int64, device=p.device) * bits
    byte = bit >> 3
    shift = bit & 7
    word = p[byte] | (p[byte + 1] << 8)
    return (word >> shift) & ((1 << bits) - 1)


def dtype_unit_roundoff(dtype):
    if dtype == torch.bfloat16:
        return 2.0 ** -8
    if dtype == torch.float16:
        return 2.0 ** -11
    return 1e-6  # float32 / float64


def fro(x):
    return float(torch.linalg.vector_norm(x.reshape(-1).double()))


# ---------------------------------------------------------------- the checks


class Case:
    def __init__(self, model, run, export, args):
        self.model_dir = os.path.abspath(model)
        self.run_dir = os.path.abspath(run)
        self.export_dir = os.path.abspath(export)
        self.args = args
        self.device = torch.device(args.device)
        self.run = read_json(os.path.join(self.run_dir, "run.json"))
        self.layers = read_json(os.path.join(self.run_dir, "layers.json"))
        self.cfg = self.run.get("config", {})
        self.names = [l["name"] for l in self.layers]
        self.layer = {l["name"]: l for l in self.layers}
        self.rank = int(self.cfg["rank"])
        self.alpha = float(self.cfg["alpha"])
        self.rslora = bool(self.cfg.get("rslora", False))
        self.scaling = self.alpha / math.sqrt(self.rank) if self.rslora else self.alpha / self.rank
        self.method = self.cfg.get("method")
        self.iters = int(self.cfg.get("iters", 0) or 0)
        self.orig = WeightStore(self.model_dir)
        self.backbone = WeightStore(os.path.join(self.export_dir, "backbone"))
        self.adapter, _ = load_safetensors(os.path.join(self.export_dir, "adapter_model.safetensors"))
        init_path = os.path.join(self.run_dir, "adapter-init", "adapter_model.safetensors")
        self.adapter_init = load_safetensors(init_path)[0] if os.path.isfile(init_path) else None
        self.quantized, meta = load_safetensors(os.path.join(self.run_dir, "quantized.safetensors"))
        self.qformat = meta.get("loftq.format")
        self.qinfo = json.loads(meta.get("loftq.matrices", "{}"))
        self.quantizers = {}
        self.trained = self._adapter_trained()

    def _adapter_trained(self):
        if self.adapter_init is None:
            return None
        if set(self.adapter) != set(self.adapter_init):
            return True
        return any(not torch.equal(self.adapter[k], self.adapter_init[k]) for k in self.adapter)

    def quantizer(self, kind, bits, block):
        key = (kind, bits, block)
        if key not in self.quantizers:
            self.quantizers[key] = Quantizer(kind, bits, block, self.device)
        return self.quantizers[key]

    def w_orig(self, name):
        return self.orig.get(name + ".weight").to(self.device)

    def q_decoded(self, name):
        info = self.qinfo[name]
        out, inp = info["shape"]
        qz = self.quantizer(info["quant"], int(info["bits"]), int(info["block_size"]))
        codes = unpack_codes(self.quantized[name + ".codes"].to(self.device), int(info["bits"]), out * inp)
        absmax = self.quantized[name + ".absmax"].to(self.device)
        return qz.dequantize(codes, absmax, (out, inp)), codes, absmax

    def lora_ba(self, name, tensors):
        a_key, b_key = lora_keys(name)
        return tensors[b_key].to(self.device, torch.float64), tensors[a_key].to(self.device, torch.float64)


def check_config(c, rep):
    log("-- step 1a: run record and adapter_config.json")
    rep.check(c.run.get("status") == "done", "run.json status is done", str(c.run.get("status")))
    cfg_s = c.cfg.get("scaling")
    rep.check(cfg_s is not None and abs(float(cfg_s) - c.scaling) <= 1e-12 * max(1.0, c.scaling),
              "run.json config.scaling = alpha/r" + (" / sqrt(r) (rslora)" if c.rslora else ""),
              f"{cfg_s} vs {c.scaling}")
    ac = read_json(os.path.join(c.export_dir, "adapter_config.json"))
    rep.check(ac.get("peft_type") == "LORA", "peft_type LORA", repr(ac.get("peft_type")))
    rep.check(ac.get("task_type") == "CAUSAL_LM", "task_type CAUSAL_LM", repr(ac.get("task_type")))
    rep.check(ac.get("r") == c.rank, "r = run rank", f"{ac.get('r')} vs {c.rank}")
    rep.check(ac.get("lora_alpha") is not None and float(ac.get("lora_alpha")) == c.alpha,
              "lora_alpha = run alpha", f"{ac.get('lora_alpha')} vs {c.alpha}")
    want_modules = sorted({n.rsplit(".", 1)[-1] for n in c.names})
    tm = ac.get("target_modules")
    got_modules = sorted(tm) if isinstance(tm, list) else tm
    rep.check(got_modules == want_modules, "target_modules = module names of layers.json", f"{got_modules} vs {want_modules}")
    rep.check(ac.get("init_lora_weights") is True, "init_lora_weights true", repr(ac.get("init_lora_weights")))
    rep.check(ac.get("bias") == "none", "bias none", repr(ac.get("bias")))
    rep.check("use_rslora" in ac and bool(ac.get("use_rslora")) == c.rslora, "use_rslora = run rslora",
              f"{ac.get('use_rslora')} vs {c.rslora}")
    rep.check(not ac.get("fan_in_fan_out", False), "fan_in_fan_out false", repr(ac.get("fan_in_fan_out")))
    lc = ac.get("loftq_config")
    ok = isinstance(lc, dict) and len(lc) > 0
    rep.check(ok, "loftq_config present", json.dumps(lc) if lc is not None else "missing")
    if ok:
        diffs = []
        for key, want in (("method", c.method), ("quant", c.cfg.get("quant")), ("block_size", c.cfg.get("block")),
                          ("bits", c.cfg.get("bits"))):
            if key in lc and lc[key] != want:
                diffs.append(f"{key}: {lc[key]!r} vs run {want!r}")
        if c.method == "loftq" and "iters" in lc and lc["iters"] != c.iters:
            diffs.append(f"iters: {lc['iters']!r} vs run {c.iters!r}")
        rep.check(not diffs, "loftq_config agrees with run.json config", "; ".join(diffs))
    bm = ac.get("base_model_name_or_path")
    rep.info(f"base_model_name_or_path = {bm!r} (exists: {bool(bm) and os.path.isdir(str(bm))})")

    # The adapter file: exactly lora_A [r, in] and lora_B [out, r] per layers.json matrix.
    expected = {}
    for l in c.layers:
        out, inp = l["shape"]
        a_key, b_key = lora_keys(l["name"])
        expected[a_key] = (c.rank, inp)
        expected[b_key] = (out, c.rank)
    extra = sorted(set(c.adapter) - set(expected))
    missing = sorted(set(expected) - set(c.adapter))
    bad_shape = [k for k in expected if k in c.adapter and tuple(c.adapter[k].shape) != expected[k]]
    rep.check(not extra and not missing and not bad_shape,
              f"adapter file holds exactly {len(expected)} lora_A/lora_B tensors of the right shapes",
              f"extra {extra[:3]} missing {missing[:3]} bad shape {bad_shape[:3]}" if (extra or missing or bad_shape) else "")
    if c.trained is None:
        rep.info("run has no adapter-init/: cannot tell whether the exported adapter was trained")
    elif c.trained:
        rep.info("exported adapter differs from adapter-init/ (trained): the merge is compared with the "
                 "exported adapter's own Q + s*B*A; err_init comparisons use adapter-init/")
    else:
        rep.info("exported adapter equals adapter-init/ (untrained)")


def load_causal_lm(path):
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except TypeError:
        model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    if any(p.dtype != torch.float32 for p in model.parameters()):
        model = model.float()
    return model


def step_peft(c, rep):
    """Steps 1b and 2: PEFT load, key accounting, merge_and_unload."""
    import warnings

    from peft import PeftModel

    log("-- step 1b: PEFT load")
    t0 = time.perf_counter()
    base = load_causal_lm(os.path.join(c.export_dir, "backbone")).to(c.device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(base, c.export_dir, is_trainable=False)
    log(f"  loaded backbone + adapter in {time.perf_counter() - t0:.2f}s")
    for w in caught:
        msg = str(w.message)
        if "key" in msg.lower():
            rep.info(f"PEFT warning: {msg[:400]}")

    # PEFT's own accounting: load the same file again into the 'default' adapter.
    try:
        res = model.load_adapter(c.export_dir, adapter_name="default")
    except Exception as e:  # older/newer API: fall back to the low-level call
        rep.info(f"load_adapter(default) raised {type(e).__name__}: {e}; using set_peft_model_state_dict")
        from peft import set_peft_model_state_dict

        res = set_peft_model_state_dict(model, {k: v.to(c.device) for k, v in c.adapter.items()}, adapter_name="default")
    missing = list(getattr(res, "missing_keys", None) or (res.get("missing_keys", []) if isinstance(res, dict) else []))
    unexpected = list(getattr(res, "unexpected_keys", None) or (res.get("unexpected_keys", []) if isinstance(res, dict) else []))
    missing_lora = [k for k in missing if "lora_A" in k or "lora_B" in k]
    rep.check(not missing_lora, f"PEFT load: missing LoRA keys = {len(missing_lora)}", ", ".join(missing_lora[:5]))
    rep.check(not unexpected, f"PEFT load: unexpected keys = {len(unexpected)}", ", ".join(unexpected[:5]))

    # Our own accounting: file key <-> PEFT parameter, values bit-exact.
    pat = re.compile(r"^base_model\.model\.(.+)\.lora_([AB])\.default\.weight$")
    params = {}
    for pname, p in model.named_parameters():
        m = pat.match(pname)
        if m:
            params[f"base_model.model.{m.group(1)}.lora_{m.group(2)}.weight"] = p
    file_keys = set(k for k in c.adapter if ".lora_A." in k or ".lora_B." in k)
    not_landed = sorted(file_keys - set(params))
    not_fed = sorted(set(params) - file_keys)
    rep.check(not not_landed, f"every lora_A/lora_B tensor of the file ({len(file_keys)}) has a PEFT parameter",
              ", ".join(not_landed[:5]))
    rep.check(not not_fed, f"every LoRA parameter PEFT created ({len(params)}) has a tensor in the file",
              ", ".join(not_fed[:5]))
    mismatched = []
    for k in sorted(file_keys & set(params)):
        p = params[k].detach().to("cpu", torch.float32)
        f = c.adapter[k].to(torch.float32)
        if p.shape != f.shape or not torch.equal(p, f):
            mismatched.append(k)
    rep.check(not mismatched, "loaded LoRA weights equal the file bit for bit", ", ".join(mismatched[:5]))
    lora_modules = sorted({k[len("base_model.model."):].rsplit(".lora_", 1)[0] for k in params})
    rep.check(lora_modules == sorted(c.names), f"LoRA modules = layers.json targets ({len(c.names)})",
              f"{len(lora_modules)} modules" if lora_modules != sorted(c.names) else "")
    bad_scale = []
    for name in c.names:
        try:
            mod = model.base_model.model.get_submodule(name)
            s = mod.scaling["default"]
            if abs(float(s) - c.scaling) > 1e-9 * max(1.0, c.scaling):
                bad_scale.append(f"{name}: {s}")
        except Exception as e:
            bad_scale.append(f"{name}: {type(e).__name__}")
    rep.check(not bad_scale, f"PEFT scaling = {c.scaling:g} on every LoRA module", ", ".join(bad_scale[:3]))

    log("-- step 2: merge_and_unload")
    t0 = time.perf_counter()
    merged = model.merge_and_unload()
    log(f"  merged in {time.perf_counter() - t0:.2f}s")
    leftovers = [n for n, _ in merged.named_parameters() if "lora_" in n]
    rep.check(not leftovers, "no LoRA parameters left after merge", ", ".join(leftovers[:3]))
    rows = []
    fails_bound, fails_formula = [], []
    worst_formula = 0.0
    for name in c.names:
        l = c.layer[name]
        w = c.w_orig(name).double()
        wm = merged.get_submodule(name).weight.detach().to(c.device).double()
        qb_raw = c.backbone.get(name + ".weight")
        u = dtype_unit_roundoff(qb_raw.dtype)
        qb = qb_raw.to(c.device).double()
        b, a = c.lora_ba(name, c.adapter)
        expect = qb + c.scaling * (b @ a)
        fdiff = fro(wm - expect) / max(fro(expect), 1e-300)
        worst_formula = max(worst_formula, fdiff)
        if fdiff > MERGE_FORMULA_TOL:
            fails_formula.append(f"{name} ({fdiff:.2e})")
        wn = fro(w)
        rel = fro(w - wm) / wn if wn > 0 else 0.0
        ours = float(l["err_init"])
        allowance = u * fro(qb) / wn if wn > 0 else 0.0
        bound = ours * MERGE_SLACK + allowance
        if not c.trained and rel > bound:
            fails_bound.append(f"{name} ({rel:.6f} > {bound:.6f})")
        rows.append((name, ours, rel, rel / ours if ours > 0 else float("nan"), bound))
        del w, wm, qb, expect
    log(f"  {'matrix':<48} {'err_init(ours)':>14} {'merged rel_err':>14} {'ratio':>8} {'bound':>10}")
    for name, ours, rel, ratio, bound in rows:
        log(f"  {name:<48} {ours:14.6f} {rel:14.6f} {ratio:8.4f} {bound:10.6f}")
    ratios = [r[3] for r in rows if r[3] == r[3]]
    if ratios:
        log(f"  ratio merged/ours: mean {sum(ratios) / len(ratios):.4f}, max {max(ratios):.4f}")
    rep.check(not fails_formula, f"merged weights = Q_backbone + s*B*A (max rel diff {worst_formula:.2e} <= {MERGE_FORMULA_TOL:g})",
              ", ".join(fails_formula[:3]))
    if c.trained:
        rep.info("adapter trained: the err_init bound does not apply to the merged weights (skipped)")
    else:
        rep.check(not fails_bound, f"merged rel_err <= err_init*{MERGE_SLACK} + u*|Q|/|W| on all {len(rows)} matrices",
                  ", ".join(fails_bound[:5]))
    del merged, model, base
    if c.device.type == "cuda":
        torch.cuda.empty_cache()


def step_decode(c, rep):
    log("-- step 3: decode quantized.safetensors and compare with the backbone")
    t0 = time.perf_counter()
    rep.check(c.qformat == "loftq-quantized/1", "quantized.safetensors format loftq-quantized/1", repr(c.qformat))
    rep.check(sorted(c.qinfo) == sorted(c.names), f"quantized matrices = layers.json targets ({len(c.names)})",
              f"{len(c.qinfo)} in file" if sorted(c.qinfo) != sorted(c.names) else "")
    # The codebook builder itself against bitsandbytes' NF4 table.
    nf4 = codebook_levels("nf", 4)
    d = float((nf4 - torch.tensor(BNB_NF4, dtype=torch.float32)).abs().max())
    rep.check(d <= 1e-6, "NF4 levels equal bitsandbytes' table", f"max diff {d:.2e}")
    nf2 = codebook_levels("nf", 2).tolist()
    rep.info("NF2 levels: " + ", ".join(f"{v:.4f}" for v in nf2))

    meta_bad, dec_bad, rec_bad = [], [], []
    exact_total, count_total = 0, 0
    rows = []
    adapter_for_err = c.adapter_init if c.adapter_init is not None else (c.adapter if not c.trained else None)
    if adapter_for_err is None:
        rep.info("no untrained adapter available: err_init recomputation skipped")
    for name in c.names:
        if name not in c.qinfo:
            continue
        info = c.qinfo[name]
        l = c.layer[name]
        try:
            bits, kind, block = int(info["bits"]), info["quant"], int(info["block_size"])
            problems = []
            if list(info["shape"]) != list(l["shape"]):
                problems.append(f"shape {info['shape']} vs layers.json {l['shape']}")
            if bits != int(l["bits"]):
                problems.append(f"bits {bits} vs layers.json {l['bits']}")
            if kind != c.cfg.get("quant"):
                problems.append(f"quant {kind} vs run {c.cfg.get('quant')}")
            if block != int(c.cfg.get("block", block)):
                problems.append(f"block {block} vs run {c.cfg.get('block')}")
            if info.get("codebook") != codebook_name(kind, bits):
                problems.append(f"codebook {info.get('codebook')} vs {codebook_name(kind, bits)}")
            if problems:
                meta_bad.append(f"{name}: " + "; ".join(problems))
            q, _, _ = c.q_decoded(name)
            bb = c.backbone.get(name + ".weight").to(c.device)
            if tuple(bb.shape) != tuple(q.shape):
                dec_bad.append(f"{name}: backbone shape {tuple(bb.shape)} vs {tuple(q.shape)}")
                continue
            exact = int((q.to(bb.dtype) == bb).sum())
            exact_total += exact
            count_total += q.numel()
            diff = (bb.double() - q.double()).abs()
            if bb.dtype in (torch.float32, torch.float64):
                tol = torch.zeros_like(diff)
            else:
                tol = dtype_unit_roundoff(bb.dtype) * q.double().abs() + torch.finfo(bb.dtype).tiny
            outside = int((diff > tol).sum())
            if outside:
                dec_bad.append(f"{name}: {outside} of {q.numel()} values beyond rounding, max |diff| {float(diff.max()):.3e}")
            w = c.w_orig(name).double()
            wn = fro(w)
            err_final_q = fro(w - q.double()) / wn if wn > 0 else 0.0
            rec = float("nan")
            if adapter_for_err is not None:
                b, a = c.lora_ba(name, adapter_for_err)
                rec = fro(w - q.double() - c.scaling * (b @ a)) / wn if wn > 0 else 0.0
                ours = float(l["err_init"])
                if abs(rec - ours) > ERR_INIT_RECOMPUTE_TOL * max(ours, 1e-12):
                    rec_bad.append(f"{name}: {rec:.6f} vs {ours:.6f}")
            rows.append((name, bits, exact / q.numel(), err_final_q, float(l["err_init"]), rec))
        except Exception as e:
            dec_bad.append(f"{name}: {type(e).__name__}: {e}")
    log(f"  {'matrix':<48} {'bits':>4} {'bit-exact':>9} {'|W-Q|/|W|':>10} {'err_init':>10} {'recomputed':>10}")
    for name, bits, frac, efq, ours, rec in rows:
        log(f"  {name:<48} {bits:4d} {frac:9.5f} {efq:10.6f} {ours:10.6f} {rec:10.6f}")
    rep.check(not meta_bad, "quantized metadata agrees with layers.json / run.json", "; ".join(meta_bad[:3]))
    frac = exact_total / count_total if count_total else 0.0
    rep.check(not dec_bad and count_total > 0,
              f"decoded Q = backbone weights up to dtype rounding ({frac * 100:.4f}% bit-exact after rounding here)",
              "; ".join(dec_bad[:3]))
    if adapter_for_err is not None:
        rep.check(not rec_bad, f"|W - Q - s*B*A|/|W| (float64, run's init adapter) reproduces err_init within {ERR_INIT_RECOMPUTE_TOL:g} rel",
                  "; ".join(rec_bad[:3]))
    log(f"  step 3 took {time.perf_counter() - t0:.2f}s")


def loftq_reference(w32, qz, rank, scaling, iters):
    """Exact-SVD LoftQ in float32 on w32's device. Returns err_q, err_init, step errors, B, A, Q."""
    w64 = w32.double()
    wn = fro(w64)
    bt = at = None
    q = None
    err_q = None
    steps = []
    for step in range(1, iters + 1):
        x = w32 if bt is None else w32 - bt @ at
        _, _, q = qz.quantize(x)
        if bt is not None:
            steps.append(fro(w64 - q.double() - (bt @ at).double()) / wn)
        if step == 1:
            err_q = fro(w64 - q.double()) / wn
        u, s, vh = torch.linalg.svd(w32 - q, full_matrices=False)
        root = torch.sqrt(s[:rank].clamp_min(0))
        bt = u[:, :rank] * root[None, :]
        at = root[:, None] * vh[:rank, :]
    inv = 1.0 / math.sqrt(scaling)
    b, a = bt * inv, at * inv
    err_init = fro(w64 - q.double() - scaling * (b.double() @ a.double())) / wn
    steps.append(err_init)
    return err_q, err_init, steps, b, a, q


def step_exact_ref(c, rep):
    log("-- step 4: independent reference (exact SVD, float32 on %s)" % c.device)
    names = c.names[: c.args.ref_limit] if c.args.ref_limit else c.names
    if len(names) < len(c.names):
        rep.info(f"--ref-limit: checking the first {len(names)} of {len(c.names)} matrices")
    t_all = time.perf_counter()
    rows = []
    errq_bad, init_bad, other_bad = [], [], []
    for name in names:
        l = c.layer[name]
        info = c.qinfo.get(name, {"quant": c.cfg.get("quant"), "bits": l["bits"], "block_size": c.cfg.get("block")})
        qz = c.quantizer(info["quant"], int(info["bits"]), int(info["block_size"]))
        t0 = time.perf_counter()
        w32 = c.w_orig(name).to(torch.float32)
        wn = fro(w32)
        if c.method == "loftq":
            if c.iters < 1:
                other_bad.append(f"{name}: run config iters = {c.iters}")
                continue
            err_q, err_init, _, b, a, _ = loftq_reference(w32, qz, c.rank, c.scaling, c.iters)
            ours_q, ours_init = float(l["err_q"]), float(l["err_init"])
            if abs(err_q - ours_q) > ERR_Q_TOL * max(err_q, 1e-12):
                errq_bad.append(f"{name}: {ours_q:.6f} vs ref {err_q:.6f}")
            ratio = ours_init / err_init if err_init > 0 else float("nan")
            if not (abs(ratio - 1.0) <= ERR_INIT_REF_TOL):
                init_bad.append(f"{name}: ratio {ratio:.4f}")
            lowrank_diff = float("nan")
            if c.adapter_init is not None:
                bo, ao = c.lora_ba(name, c.adapter_init)
                if not bool(torch.isfinite(bo).all() and torch.isfinite(ao).all()):
                    other_bad.append(f"{name}: non-finite values in adapter-init")
                elif float(bo.abs().max()) == 0.0 or float(ao.abs().max()) == 0.0:
                    other_bad.append(f"{name}: adapter-init lora_A or lora_B is all zeros")
                ref_lr = c.scaling * (b.double() @ a.double())
                lowrank_diff = fro(c.scaling * (bo @ ao) - ref_lr) / max(fro(ref_lr), 1e-300)
            rows.append((name, ours_q, err_q, ours_init, err_init, ratio, lowrank_diff, time.perf_counter() - t0))
        elif c.method == "qlora":
            codes, absmax, q = qz.quantize(w32)
            err_q = fro(w32.double() - q.double()) / wn if wn > 0 else 0.0
            ours_q, ours_init = float(l["err_q"]), float(l["err_init"])
            if abs(err_q - ours_q) > ERR_Q_TOL * max(err_q, 1e-12):
                errq_bad.append(f"{name}: {ours_q:.6f} vs ref {err_q:.6f}")
            if abs(ours_init - ours_q) > 1e-12 * max(ours_q, 1e-12):
                init_bad.append(f"{name}: err_init {ours_init} != err_q {ours_q}")
            same_codes = float("nan")
            if name in c.qinfo:
                _, codes_ours, _ = c.q_decoded(name)
                same_codes = float((codes_ours == codes).double().mean())
            src = c.adapter_init if c.adapter_init is not None else c.adapter
            b_key = lora_keys(name)[1]
            a_key = lora_keys(name)[0]
            if b_key in src and bool(src[b_key].abs().max() != 0):
                other_bad.append(f"{name}: lora_B is not all zeros")
            if a_key in src:
                bound = 1.0 / math.sqrt(l["shape"][1])
                amax = float(src[a_key].abs().max())
                if amax > bound * (1 + 1e-6) or amax == 0.0:
                    other_bad.append(f"{name}: lora_A max |a| {amax:.4g} vs Kaiming bound {bound:.4g}")
            ratio = ours_init / err_q if err_q > 0 else float("nan")
            rows.append((name, ours_q, err_q, ours_init, err_q, ratio, same_codes, time.perf_counter() - t0))
        else:
            other_bad.append(f"{name}: unknown method {c.method!r}")
            break
        if c.device.type == "cuda":
            torch.cuda.synchronize()
    last_col = "|sBA-ref|/|ref|" if c.method == "loftq" else "same codes"
    log(f"  {'matrix':<48} {'err_q ours':>10} {'err_q ref':>10} {'init ours':>10} {'init ref':>10} {'ours/ref':>8} {last_col:>15} {'s':>6}")
    for name, oq, rq, oi, ri, ratio, extra, secs in rows:
        log(f"  {name:<48} {oq:10.6f} {rq:10.6f} {oi:10.6f} {ri:10.6f} {ratio:8.4f} {extra:15.3e} {secs:6.2f}")
    ratios = [r[5] for r in rows if r[5] == r[5]]
    if ratios:
        log(f"  err_init ours/ref: mean {sum(ratios) / len(ratios):.5f}, min {min(ratios):.5f}, max {max(ratios):.5f}")
    rep.check(not errq_bad and rows, f"err_q agrees with the reference within {ERR_Q_TOL:g} relative ({len(rows)} matrices)",
              "; ".join(errq_bad[:3]))
    if c.method == "loftq":
        rep.check(not init_bad and rows, f"err_init within {ERR_INIT_REF_TOL * 100:g}% of the exact-SVD reference "
                  f"(T={c.iters}, r={c.rank}, s={c.scaling:g}, svd={c.cfg.get('svd')})", "; ".join(init_bad[:3]))
    else:
        rep.check(not init_bad, "qlora: err_init = err_q", "; ".join(init_bad[:3]))
    rep.check(not other_bad, "adapter-init checks" + (" (qlora: B = 0, A within Kaiming bound)" if c.method == "qlora" else " (loftq: A, B finite and nonzero)"),
              "; ".join(other_bad[:3]))
    log(f"  step 4 took {time.perf_counter() - t_all:.2f}s")


def run_case(index, model, run, export, args, rep):
    label = f"case {index}: {run}"
    rep.start(label)
    log("")
    log("=" * 100)
    log(f"{label}\n  model  {model}\n  run    {run}\n  export {export}")
    log("=" * 100)
    t_case = time.perf_counter()
    try:
        c = Case(model, run, export, args)
    except Exception as e:
        traceback.print_exc()
        sys.stdout.flush()
        rep.fail("read the run, model and export", f"{type(e).__name__}: {e}")
        return
    log(f"  method {c.method}, bits {c.cfg.get('bits')} (map {c.cfg.get('bits_map')}), quant {c.cfg.get('quant')}, "
        f"block {c.cfg.get('block')}, rank {c.rank}, alpha {c.alpha:g}, rslora {c.rslora}, s {c.scaling:g}, "
        f"iters {c.iters}, svd {c.cfg.get('svd')}, {len(c.names)} matrices, device {c.device}")
    steps = [("config", check_config), ("PEFT load/merge", step_peft), ("decode", step_decode)]
    if args.exact_ref:
        steps.append(("exact reference", step_exact_ref))
    for what, fn in steps:
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                fn(c, rep)
        except Exception as e:
            traceback.print_exc()
            sys.stdout.flush()
            rep.fail(f"{what} step ran", f"{type(e).__name__}: {e}")
        log(f"  ({what}: {time.perf_counter() - t0:.2f}s)")
    log(f"  case took {time.perf_counter() - t_case:.2f}s")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="the original model folder (the run's source)")
    p.add_argument("--run", help="the run directory")
    p.add_argument("--export", help="the folder written by `loftq export RUN --format peft`")
    p.add_argument("--case", action="append", default=[], metavar="MODEL,RUN,EXPORT",
                   help="one case as a comma-separated triple; repeatable")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--exact-ref", action="store_true", help="also run the exact-SVD LoftQ/QLoRA reference (step 4)")
    p.add_argument("--ref-limit", type=int, default=0, help="step 4 on the first N matrices only (0 = all)")
    args = p.parse_args(argv)
    cases = []
    for spec in args.case:
        parts = [s.strip() for s in spec.split(",")]
        if len(parts) != 3 or not all(parts):
            p.error(f"--case needs MODEL,RUN,EXPORT, got {spec!r}")
        cases.append(tuple(parts))
    single = [args.model, args.run, args.export]
    if any(single):
        if not all(single):
            p.error("--model, --run and --export go together")
        cases.append(tuple(single))
    if not cases:
        p.error("give --model/--run/--export or at least one --case")
    return args, cases


def main(argv):
    args, cases = parse_args(argv)
    if torch is None:
        log("error: this script needs torch (and transformers, peft, safetensors)")
        return 2
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        log("error: --device cuda but torch sees no GPU")
        return 2
    # Exact float32 matmuls: no TF32 anywhere (merge, references).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        import peft
        import transformers

        versions = f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}"
    except Exception as e:
        versions = f"torch {torch.__version__} ({type(e).__name__}: {e})"
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:
        pass
    log(f"peft_check: {versions}, device {args.device}"
        + (f" ({torch.cuda.get_device_name(0)})" if args.device.startswith("cuda") else ""))
    t0 = time.perf_counter()
    rep = Report()
    for i, (model, run, export) in enumerate(cases, 1):
        run_case(i, model, run, export, args, rep)
    log("")
    log("=" * 100)
    log("SUMMARY")
    for label, checks in rep.cases:
        failed = [what for ok, what in checks if not ok]
        log(f"  {'PASS' if not failed else 'FAIL'}  {label}: {len(checks) - len(failed)}/{len(checks)} checks passed")
        for what in failed:
            log(f"        failed: {what}")
    verdict = "PASS" if rep.ok() else "FAIL"
    log(f"{verdict} ({len(cases)} case{'s' if len(cases) != 1 else ''}, {time.perf_counter() - t0:.1f}s)")
    return 0 if rep.ok() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
