"""The summary of scripts/device/gpu-train.sh: gradients vs PEFT, the 24 GB fit of the 7B
training, the fine-tuning with its interrupt and resume, and where the demo ran; printed, and
written to WORK/train-results.json.

  python3 scripts/device/summarize_train.py WORK
"""
import glob
import json
import os
import sys


def read(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def events(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def main():
    work = sys.argv[1]
    out = {}
    g = read(os.path.join(work, "grads-check.json"))
    out["grads"] = g
    if g:
        for p in ("fp32", "bf16"):
            r = g.get(f"ours_{p}")
            if r:
                print(f"LoRA grads vs PEFT autograd fp32 ({g['tensors']} tensors, {g['batch']} x {g['seq']}): ours {p} max-rel worst {r['max_rel_worst']:.2e}, "
                      f"Frobenius worst {r['frob_worst']:.2e}, all {r['frob_all']:.2e}; loss rel {r['loss_rel']:.1e} {'PASS' if r['pass'] else 'FAIL'}")
        h = g["hf_bf16"]
        print(f"  HF bf16 vs fp32 (yardstick): max-rel worst {h['max_rel_worst']:.2e}, Frobenius worst {h['frob_worst']:.2e}, all {h['frob_all']:.2e}")
    else:
        print("LoRA grads vs PEFT: missing")

    fits = []
    for path in glob.glob(os.path.join(work, "fit-*.json")):
        r = read(path)
        if r:
            fits.append({"batch": r["batch"], "seq": r["seq"], "tokens_per_s": r["tokens_per_s"], "peak_bytes": r["peak_bytes"], "held_bytes": r["held_bytes"],
                         "fits_24gb": r["held_bytes"] <= 24 * 2**30})
    fits.sort(key=lambda f: (f["seq"], f["batch"]))
    out["fit"] = fits
    for f in fits:
        print(f"7B 2-bit training batch {f['batch']} x {f['seq']}: {f['tokens_per_s']:.0f} tokens/s, allocations' peak {f['peak_bytes'] / 2**30:.2f} GiB, "
              f"device memory held {f['held_bytes'] / 2**30:.2f} GiB: {'fits' if f['fits_24gb'] else 'does not fit'} in 24 GiB")
    ok = [f for f in fits if f["fits_24gb"]]
    if ok:
        best = max(ok, key=lambda f: f["batch"] * f["seq"])
        print(f"largest that fits in 24 GiB: batch {best['batch']} x seq {best['seq']} = {best['batch'] * best['seq']} tokens per micro-batch")

    a = events(os.path.join(work, "finetune-a.jsonl"))
    b1 = events(os.path.join(work, "finetune-b1.jsonl"))
    b2 = events(os.path.join(work, "finetune-b2.jsonl"))
    steps = [e for e in a if e.get("type") == "train" and "loss" in e]
    evals = [e for e in a if e.get("type") == "train" and "eval_ppl" in e]
    sha = open(os.path.join(work, "finetune-sha256.txt")).read().split() if os.path.exists(os.path.join(work, "finetune-sha256.txt")) else []
    result_b2 = next((e for e in b2 if e.get("type") == "result"), None)
    out["finetune"] = {
        "losses": [e["loss"] for e in steps], "eval_ppl": [(e["step"], e["eval_ppl"]) for e in evals],
        "tokens_per_s": [e.get("tokens_per_s") for e in steps], "where": steps[0].get("where") if steps else None,
        "interrupted_at": max([e["step"] for e in b1 if e.get("type") == "train" and "loss" in e], default=None),
        "resumed_from": result_b2.get("resumed_from") if result_b2 else None,
        "adapters_identical": len(sha) == 4 and sha[0] == sha[2],
    }
    f = out["finetune"]
    if steps:
        first, last = steps[0]["loss"], sum(e["loss"] for e in steps[-5:]) / min(5, len(steps))
        print(f"7B 2-bit fine-tune on {f['where']}: loss {first:.3f} at step 1 -> {last:.3f} (mean of the last 5 of {len(steps)} steps); "
              f"held-out ppl {', '.join(f'{s}: {p:.1f}' for s, p in f['eval_ppl'])}")
        print(f"  interrupted after step {f['interrupted_at']}, resumed from checkpoint {f['resumed_from']}; "
              f"final adapter identical to the uninterrupted run's: {f['adapters_identical']}")
    else:
        print("7B fine-tune: missing")
    try:
        ran = [line.strip() for line in open(os.path.join(work, "demo.txt")) if line.startswith("Ran:")]
        out["demo"] = ran[0] if ran else None
        print(f"demo: {out['demo']}")
    except OSError:
        print("demo: missing")
    with open(os.path.join(work, "train-results.json"), "w") as fh:
        json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
