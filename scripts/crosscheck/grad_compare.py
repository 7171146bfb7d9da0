#!/usr/bin/env python3
"""Compare our LoRA gradients and loss with the PyTorch autograd references of grad_make.py.

    python3 scripts/crosscheck/grad_compare.py OUT_DIR [--cases llama,qwen2]
                                               [--grad-tol 1e-4] [--loss-tol 1e-5]

Per case it reads from OUT_DIR/<case>/
  ref_grads.safetensors         float64 transformers + PEFT reference   (grad_make.py)
  ref32_grads.safetensors       the same in float32: its error is the scale to expect
  ref_pure64_grads.safetensors  optional: an independent plain-torch float64 reference
  ours_grads.safetensors        ours (dist/xcheck-grads.cjs)
each holding one tensor per adapter key (base_model.model.<module>.lora_A.weight = dL/dA [r, in],
.lora_B.weight = dL/dB [out, r]), `loss` [1] and optionally `nll` [T].
Per tensor the error is max|x - ref| / max|ref|. A case passes when ours has exactly the
reference's keys and shapes, every tensor's error <= grad tol and |loss/ref - 1| <= loss tol.
Prints one row per (layer, module) with the dA and dB errors of ours and of the float32
reference, then a summary per case. Exit 0 when all passed, 1 on any failure, 2 on usage errors.
Needs python3 + numpy only.
"""
import argparse
import json
import math
import os
import re
import struct
import sys

import numpy as np

CASES = ["llama", "qwen2"]
SCALARS = ("loss", "nll")
KEY_RE = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")
MODULE_ORDER = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

_DT = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


def read_safetensors(path):
    """Minimal reader (no torch / safetensors dependency): {name: float64 ndarray}."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        b0, b1 = info["data_offsets"]
        buf = raw[base + b0: base + b1]
        if dt == "BF16":
            arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt in _DT:
            arr = np.frombuffer(buf, dtype=_DT[dt])
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        out[name] = arr.reshape(tuple(info["shape"])).astype(np.float64)
    return out


def rel_err(x, ref):
    """max|x - ref| / max|ref|; inf when x is not finite; absolute when ref is all zeros."""
    if x.shape != ref.shape:
        return math.inf
    if not np.all(np.isfinite(x)):
        return math.inf
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    diff = float(np.abs(x - ref).max()) if ref.size else 0.0
    return diff / scale if scale > 0 else diff


def loss_rel(x, ref):
    a, b = float(np.asarray(x).reshape(-1)[0]), float(np.asarray(ref).reshape(-1)[0])
    if not math.isfinite(a):
        return math.inf
    return abs(a / b - 1) if b != 0 else abs(a - b)


def sort_key(k):
    m = KEY_RE.match(k)
    if not m:
        return (1 << 30, k, "")
    mod = m.group(2)
    return (int(m.group(1)), MODULE_ORDER.index(mod) if mod in MODULE_ORDER else 99, mod, m.group(3))


def fmt(e):
    return "   -    " if e is None else ("     inf" if math.isinf(e) else f"{e:8.2e}")


def compare_case(case, cdir, args):
    paths = {n: os.path.join(cdir, f"{n}_grads.safetensors") for n in ("ref", "ref32", "ref_pure64", "ours")}
    for n in ("ref", "ref32", "ours"):
        if not os.path.exists(paths[n]):
            print(f"[FAIL] {case}: missing {paths[n]}")
            return False, {}
    ref, ref32, ours = (read_safetensors(paths[n]) for n in ("ref", "ref32", "ours"))
    pure = read_safetensors(paths["ref_pure64"]) if os.path.exists(paths["ref_pure64"]) else None
    ok = True
    problems = []

    gkeys = sorted((k for k in ref if k not in SCALARS), key=sort_key)
    okeys = {k for k in ours if k not in SCALARS}
    missing, extra = [k for k in gkeys if k not in okeys], sorted(okeys - set(gkeys))
    if missing or extra:
        ok = False
        problems.append(f"keys: {len(missing)} missing {missing[:2]}, {len(extra)} extra {extra[:2]}")
    bad_shape = [k for k in gkeys if k in ours and ours[k].shape != ref[k].shape]
    if bad_shape:
        ok = False
        problems.append("shapes: " + ", ".join(f"{k} ours {list(ours[k].shape)} ref {list(ref[k].shape)}"
                                               for k in bad_shape[:3]))
    if "loss" not in ours:
        ok = False
        problems.append("ours has no `loss`")

    # one row per (layer, module): dA and dB side by side
    rows = {}
    for k in gkeys:
        m = KEY_RE.match(k)
        row = (int(m.group(1)), m.group(2)) if m else (-1, k)
        rows.setdefault(row, {})[m.group(3) if m else "A"] = k
    errs, errs32, errs_pure = {}, {}, {}
    for k in gkeys:
        errs[k] = rel_err(ours[k], ref[k]) if k in ours else math.inf
        errs32[k] = rel_err(ref32[k], ref[k]) if k in ref32 else None
        errs_pure[k] = rel_err(pure[k], ref[k]) if pure is not None and k in pure else None

    print(f"\n== {case} ==  error = max|x - ref| / max|ref| per tensor, ref = float64 transformers + PEFT")
    print(f"{'layer':>5} {'module':<10} {'max|dA|':>9} {'dA ours':>8}  {'dA f32':>8} "
          f"{'max|dB|':>9} {'dB ours':>8}  {'dB f32':>8}   (* over tol)")
    for (layer, mod), pair in sorted(rows.items(), key=lambda kv: sort_key(next(iter(kv[1].values())))):
        cells = []
        for w in ("A", "B"):
            k = pair.get(w)
            if k is None:
                cells.append(f"{'-':>9} {'-':>8}  {'-':>8}")
                continue
            flag = "*" if errs[k] > args.grad_tol else " "
            cells.append(f"{float(np.abs(ref[k]).max()):9.3e} {fmt(errs[k])}{flag} {fmt(errs32[k])}")
        print(f"{layer:>5} {mod:<10} " + " ".join(cells))

    worst_k = max(gkeys, key=lambda k: errs[k]) if gkeys else None
    worst = errs[worst_k] if worst_k else math.inf
    e32 = [e for e in errs32.values() if e is not None]
    ep = [e for e in errs_pure.values() if e is not None]
    worst32 = max(e32) if e32 else None
    worst_pure = max(ep) if ep else None
    # one number over all tensors too: max over all entries / max |ref| over all entries
    glob_scale = max((float(np.abs(ref[k]).max()) for k in gkeys), default=0.0)
    glob = max((float(np.abs(ours[k] - ref[k]).max()) for k in gkeys if k in ours and ours[k].shape == ref[k].shape),
               default=math.inf) / glob_scale if glob_scale > 0 else math.inf
    rel_fro = math.sqrt(sum(float(((ours[k] - ref[k]) ** 2).sum()) for k in gkeys if k in ours and ours[k].shape == ref[k].shape)
                        / max(sum(float((ref[k] ** 2).sum()) for k in gkeys), 1e-300))

    l_ref = float(ref["loss"].reshape(-1)[0])
    l_ours = loss_rel(ours["loss"], ref["loss"]) if "loss" in ours else math.inf
    l_32 = loss_rel(ref32["loss"], ref["loss"])
    l_pure = loss_rel(pure["loss"], ref["loss"]) if pure is not None and "loss" in pure else None
    nll_err = rel_err(ours["nll"], ref["nll"]) if "nll" in ours and "nll" in ref else None

    nonfinite = [k for k in gkeys if k in ours and not np.all(np.isfinite(ours[k]))]
    if nonfinite:
        problems.append(f"non-finite values in ours: {nonfinite[:2]}")
    if worst > args.grad_tol:
        ok = False
        problems.append(f"gradient error {worst:.2e} > {args.grad_tol:g} (worst {worst_k}); "
                        f"{sum(e > args.grad_tol for e in errs.values())}/{len(gkeys)} tensors over")
    if not l_ours <= args.loss_tol:
        ok = False
        problems.append(f"loss error {l_ours:.2e} > {args.loss_tol:g}")
    if not gkeys:
        ok = False
        problems.append("the reference holds no gradient tensors")

    print(f"  tensors {len(gkeys)}; worst gradient error: ours {worst:.2e} ({worst_k}), "
          f"float32 reference {fmt(worst32).strip()}"
          + (f", plain-torch float64 {fmt(worst_pure).strip()}" if worst_pure is not None else ""))
    print(f"  all tensors together: max-abs {glob:.2e}, Frobenius {rel_fro:.2e}")
    print(f"  loss: ref {l_ref:.10g}, ours {float(ours['loss'].reshape(-1)[0]) if 'loss' in ours else float('nan'):.10g}, "
          f"rel diff ours {l_ours:.2e}, float32 ref {l_32:.2e}"
          + (f", plain float64 {l_pure:.2e}" if l_pure is not None else "")
          + (f"; per-position nll max rel {nll_err:.2e}" if nll_err is not None else ""))
    if worst_pure is not None and (worst_pure > 1e-5 or (l_pure or 0) > 1e-6):
        print(f"  NOTE the two float64 references disagree ({worst_pure:.2e} grads, {l_pure:.2e} loss): "
              "check the reference before trusting the verdict")
    for p in problems:
        print(f"  - {p}")
    print(f"[{'PASS' if ok else 'FAIL'}] {case}: gradients {worst:.2e} (tol {args.grad_tol:g}), "
          f"loss {l_ours:.2e} (tol {args.loss_tol:g})")
    summary = dict(grad=worst, grad32=worst32, grad_pure=worst_pure, loss=l_ours, loss32=l_32)
    return ok, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--grad-tol", type=float, default=1e-4)
    ap.add_argument("--loss-tol", type=float, default=1e-5)
    args = ap.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if not cases or not os.path.isdir(args.out_dir):
        print(f"usage: no cases, or {args.out_dir} is not a directory", file=sys.stderr)
        return 2
    results = {}
    for case in cases:
        cdir = os.path.join(args.out_dir, case)
        if not os.path.isdir(cdir):
            print(f"[FAIL] {case}: {cdir} does not exist")
            results[case] = (False, {})
            continue
        try:
            results[case] = compare_case(case, cdir, args)
        except Exception as e:  # noqa: BLE001
            print(f"[FAIL] {case}: {type(e).__name__}: {e}")
            results[case] = (False, {})
        sys.stdout.flush()

    print("\n== summary ==")
    print(f"{'case':<8} {'grad ours':>9} {'grad f32':>9} {'loss ours':>9} {'loss f32':>9}  verdict")
    for case, (ok, s) in results.items():
        print(f"{case:<8} {fmt(s.get('grad')):>9} {fmt(s.get('grad32')):>9} {fmt(s.get('loss')):>9} "
              f"{fmt(s.get('loss32')):>9}  {'PASS' if ok else 'FAIL'}")
    all_ok = all(ok for ok, _ in results.values())
    print("ALL PASS" if all_ok else "SOME FAILED")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
