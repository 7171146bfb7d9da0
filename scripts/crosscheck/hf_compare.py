#!/usr/bin/env python3
"""Compare our forward pass and perplexity with the transformers references written by
hf_make_models.py.

    python3 scripts/crosscheck/hf_compare.py OUT_DIR [--archs llama,mistral,qwen2]
                                             [--logit-tol 1e-4] [--ppl-tol 1e-4]

Per arch it reads
  OUT_DIR/<arch>/ref_logits.safetensors  (logits, logits_f32[, logits_pure64])   from hf_make_models.py
  OUT_DIR/<arch>/ref_ppl.json                                                    from hf_make_models.py
  OUT_DIR/<arch>/ours_logits.safetensors (tensor `logits` [T, V] float32)        ours
  OUT_DIR/<arch>/ours_eval.json          (`loftq eval --json` output; the last JSON line with
                                          `ppl` and `tokens`, at any nesting depth)  ours
  OUT_DIR/<arch>/ours_ids.json           (optional: our ids of text.txt, no BOS)  ours
and OUT_DIR/ids_full.json. PASS needs: max|ours - ref| / max|ref| <= logit tol, identical token
counts, |ppl_ours / ppl_ref - 1| <= ppl tol, identical tokenization where ours_ids.json exists.
Exit 0 when everything passed, 1 on any failure, 2 on usage errors. Needs python3 + numpy only.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

ARCHS = ["llama", "mistral", "qwen2"]

_DT = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


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
        shape = tuple(info["shape"])
        if dt == "BF16":
            u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        elif dt in _DT:
            arr = np.frombuffer(buf, dtype=np.dtype(_DT[dt]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        out[name] = arr.reshape(shape).astype(np.float64)
    return out


def find_ppl_record(obj):
    """First dict (depth-first, in order) holding both `ppl` and `tokens`."""
    if isinstance(obj, dict):
        if "ppl" in obj and "tokens" in obj:
            return obj
        for key in ("results", "fp"):  # the likely places first
            if key in obj:
                hit = find_ppl_record(obj[key])
                if hit is not None:
                    return hit
        for v in obj.values():
            hit = find_ppl_record(v)
            if hit is not None:
                return hit
    elif isinstance(obj, list):
        for v in obj:
            hit = find_ppl_record(v)
            if hit is not None:
                return hit
    return None


def read_eval(path):
    """The last JSON line of `loftq eval --json` output that carries ppl and tokens."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    objs = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith(("{", "[")):
            continue
        try:
            objs.append(json.loads(line))
        except ValueError:
            continue
    if not objs:  # maybe one pretty-printed object
        try:
            objs.append(json.loads(text))
        except ValueError:
            pass
    for obj in reversed(objs):
        rec = find_ppl_record(obj)
        if rec is not None:
            return rec
    raise ValueError(f"{path}: no JSON object with both 'ppl' and 'tokens' "
                     f"({len(objs)} JSON lines, {len(text)} chars)")


def read_ids(path):
    with open(path, encoding="utf-8") as f:
        obj = json.load(f)
    if isinstance(obj, dict):
        for key in ("ids", "input_ids", "tokens"):
            if isinstance(obj.get(key), list):
                obj = obj[key]
                break
    if not isinstance(obj, list):
        raise ValueError(f"{path}: expected a JSON array of ids")
    return [int(x) for x in obj]


def rel_max(a, ref):
    return float(np.max(np.abs(a - ref)) / max(float(np.max(np.abs(ref))), 1e-300))


def row_rel(a, ref):
    num = np.linalg.norm(a - ref, axis=-1)
    den = np.maximum(np.linalg.norm(ref, axis=-1), 1e-300)
    return float(np.max(num / den))


def fmt(x, spec=".2e"):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    return format(x, spec)


def check_arch(out_dir, arch, ids_full, args):
    adir = os.path.join(out_dir, arch)
    r = dict(arch=arch, fails=[], notes=[])
    fails = r["fails"]

    # -- logits -----------------------------------------------------------------------------
    try:
        ref = read_safetensors(os.path.join(adir, "ref_logits.safetensors"))
        ref64 = ref["logits"]
    except Exception as e:  # noqa: BLE001
        fails.append(f"reference logits unreadable: {e}")
        ref, ref64 = {}, None
    if "logits_f32" in ref and ref64 is not None:
        r["f32_err"] = rel_max(ref["logits_f32"], ref64)
    if "logits_pure64" in ref and ref64 is not None:
        r["pure_err"] = rel_max(ref["logits_pure64"], ref64)
    ours_path = os.path.join(adir, "ours_logits.safetensors")
    if not os.path.exists(ours_path):
        fails.append("ours_logits.safetensors missing")
    elif ref64 is not None:
        try:
            ours = read_safetensors(ours_path)
            if "logits" not in ours:
                raise ValueError(f"no tensor 'logits' (has {sorted(ours)})")
            o = ours["logits"]
            if o.ndim == 3 and o.shape[0] == 1:
                o = o[0]
            if o.shape != ref64.shape:
                fails.append(f"logits shape {list(o.shape)} != reference {list(ref64.shape)}")
            elif not np.all(np.isfinite(o)):
                fails.append(f"logits hold {int(np.sum(~np.isfinite(o)))} non-finite values")
            else:
                r["logit_err"] = rel_max(o, ref64)
                r["row_err"] = row_rel(o, ref64)
                am_o, am_r = o.argmax(-1), ref64.argmax(-1)
                r["argmax"] = f"{int(np.sum(am_o == am_r))}/{len(am_r)}"
                worst = np.unravel_index(np.argmax(np.abs(o - ref64)), o.shape)
                r["worst"] = f"t={int(worst[0])} v={int(worst[1])}"
                if r["logit_err"] > args.logit_tol:
                    fails.append(f"logit error {r['logit_err']:.3e} > {args.logit_tol:g} "
                                 f"(worst at {r['worst']}: ours {o[worst]:.6g}, ref {ref64[worst]:.6g})")
        except Exception as e:  # noqa: BLE001
            fails.append(f"ours_logits.safetensors unreadable: {e}")

    # -- tokenization -------------------------------------------------------------------------
    ids_path = os.path.join(adir, "ours_ids.json")
    if os.path.exists(ids_path):
        try:
            ours_ids = read_ids(ids_path)
            if ours_ids == ids_full:
                r["tok"] = f"same ({len(ids_full)})"
            else:
                n = min(len(ours_ids), len(ids_full))
                bad = next((i for i in range(n) if ours_ids[i] != ids_full[i]), n)
                r["tok"] = f"DIFF @{bad}"
                ctx_o = ours_ids[max(0, bad - 3): bad + 4]
                ctx_r = ids_full[max(0, bad - 3): bad + 4]
                fails.append(f"tokenization differs at index {bad} (lengths ours {len(ours_ids)}, "
                             f"ref {len(ids_full)}; ours {ctx_o} vs ref {ctx_r} around it)")
        except Exception as e:  # noqa: BLE001
            r["tok"] = "unreadable"
            fails.append(f"ours_ids.json unreadable: {e}")
    else:
        r["tok"] = "n/a"
        r["notes"].append("ours_ids.json absent: tokenization compared only through the token count")

    # -- perplexity ---------------------------------------------------------------------------
    try:
        with open(os.path.join(adir, "ref_ppl.json")) as f:
            rp = json.load(f)
        r["ppl_ref"], r["tokens_ref"] = float(rp["ppl"]), int(rp["tokens"])
    except Exception as e:  # noqa: BLE001
        fails.append(f"ref_ppl.json unreadable: {e}")
        rp = None
    ev_path = os.path.join(adir, "ours_eval.json")
    if not os.path.exists(ev_path):
        fails.append("ours_eval.json missing")
    elif rp is not None:
        try:
            rec = read_eval(ev_path)
            r["ppl_ours"], r["tokens_ours"] = float(rec["ppl"]), int(rec["tokens"])
            r["ppl_err"] = abs(r["ppl_ours"] / r["ppl_ref"] - 1.0)
            if not math.isfinite(r["ppl_ours"]) or r["ppl_err"] > args.ppl_tol:
                fails.append(f"ppl {r['ppl_ours']:.6f} vs ref {r['ppl_ref']:.6f} "
                             f"(rel {r['ppl_err']:.3e} > {args.ppl_tol:g})")
            if r["tokens_ours"] != r["tokens_ref"]:
                hint = ""
                if r["tokens_ours"] == rp.get("n_ids"):
                    hint = " (ours equals the number of text tokens; the protocol scores N-1: the first never)"
                fails.append(f"token count {r['tokens_ours']} != ref {r['tokens_ref']}{hint}")
        except Exception as e:  # noqa: BLE001
            fails.append(f"ours_eval.json: {e}")
    r["ok"] = not fails
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--archs", default=None, help="comma list (default: every arch folder present)")
    ap.add_argument("--logit-tol", type=float, default=1e-4)
    ap.add_argument("--ppl-tol", type=float, default=1e-4)
    args = ap.parse_args()
    out = args.out_dir
    if not os.path.isdir(out):
        print(f"{out}: not a folder", file=sys.stderr)
        return 2
    if args.archs:
        archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    else:
        archs = [a for a in ARCHS if os.path.isdir(os.path.join(out, a))]
    if not archs:
        print(f"{out}: no arch folders ({', '.join(ARCHS)})", file=sys.stderr)
        return 2
    try:
        ids_full = read_ids(os.path.join(out, "ids_full.json"))
    except Exception as e:  # noqa: BLE001
        print(f"{out}/ids_full.json: {e}", file=sys.stderr)
        return 2

    rows = [check_arch(out, a, ids_full, args) for a in archs]

    cols = [("arch", "arch", "s"), ("logit rel", "logit_err", ".2e"), ("row rel", "row_err", ".2e"),
            ("f32-ref rel", "f32_err", ".2e"), ("argmax", "argmax", "s"), ("tokens ids", "tok", "s"),
            ("ppl ours", "ppl_ours", ".6f"), ("ppl ref", "ppl_ref", ".6f"), ("ppl rel", "ppl_err", ".2e"),
            ("n ours", "tokens_ours", "d"), ("n ref", "tokens_ref", "d"), ("", "verdict", "s")]
    table = []
    for r in rows:
        r["verdict"] = "PASS" if r["ok"] else "FAIL"
        table.append([fmt(r.get(k), spec) if spec != "s" else str(r.get(k, "-")) for _, k, spec in cols])
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, (h, _, _) in enumerate(cols)]
    print(f"forward/perplexity cross-check vs transformers: {os.path.abspath(out)}")
    try:
        with open(os.path.join(out, "meta.json")) as f:
            meta = json.load(f)
        v = meta.get("versions", {})
        print(f"references: transformers {v.get('transformers')}, torch {v.get('torch')}, "
              f"tokenizers {v.get('tokenizers')} on {meta.get('device')}; vocab {meta.get('tokenizer_vocab')} "
              f"(model {meta.get('model_vocab')}), text {meta.get('n_ids_full')} tokens, "
              f"logits over the first {meta.get('n_ids')}")
    except Exception:  # noqa: BLE001
        pass
    print(f"tolerances: max|ours-ref|/max|ref| <= {args.logit_tol:g}, |ppl/ref-1| <= {args.ppl_tol:g}, "
          f"identical token counts and ids")
    print("  ".join(h.ljust(w) for (h, _, _), w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths)))
    print()
    for r in rows:
        extra = []
        if "pure_err" in r:
            extra.append(f"plain-f64 vs transformers-f64 {r['pure_err']:.2e}")
        if "worst" in r:
            extra.append(f"worst logit at {r['worst']}")
        line = f"[{r['verdict']}] {r['arch']}" + (f" ({'; '.join(extra)})" if extra else "")
        print(line)
        for msg in r["fails"]:
            print(f"    FAIL: {msg}")
        for msg in r["notes"]:
            print(f"    note: {msg}")
    n_fail = sum(not r["ok"] for r in rows)
    print()
    print(f"{'PASS' if n_fail == 0 else 'FAIL'}: {len(rows) - n_fail}/{len(rows)} archs passed", flush=True)
    return 0 if n_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
