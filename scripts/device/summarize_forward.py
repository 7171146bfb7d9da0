"""Summary of scripts/device/gpu-forward.sh: the numerics checks and the ratios against
transformers measured in the same run (tokens/s ours / theirs, peak memory ours / theirs).

  python3 scripts/device/summarize_forward.py WORK_DIR   (prints a table, writes WORK_DIR/forward-results.json)
"""
import glob
import json
import os
import re
import sys


def read(path):
    try:
        with open(path) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None


def main():
    work = sys.argv[1]
    out = {"checks": {}, "bench": []}
    for name in ["tiny", "demo"]:
        c = read(os.path.join(work, f"check-{name}.json"))
        if c:
            out["checks"][name] = c
            print(f"check {name}: fp32 logits vs HF fp32 {c['ours_fp32_vs_hf_fp32']:.2e} (bound 1e-4) {'PASS' if c['pass_fp32_logits'] else 'FAIL'}; "
                  f"bf16 vs HF fp32 {c['ours_bf16_vs_hf_fp32']:.2e} (HF bf16 vs HF fp32 {c['hf_bf16_vs_hf_fp32']:.2e}) {'PASS' if c['pass_bf16_logits'] else 'FAIL'}; "
                  f"ppl ours bf16 {c['ours_bf16_ppl']:.4f} vs HF bf16 {c['hf_bf16_ppl']:.4f} ({100 * c['ours_bf16_ppl_vs_hf_bf16']:+.3f}%) {'PASS' if c['pass_bf16_ppl'] else 'FAIL'}; "
                  f"ours fp32 {c['ours_fp32_ppl']:.4f} vs HF fp32 {c['hf_fp32_ppl']:.4f}")
        else:
            print(f"check {name}: missing")
    for hf_path in sorted(glob.glob(os.path.join(work, "hf-*.json"))):
        model = os.path.basename(hf_path)[3:-5]
        hf = read(hf_path)
        if not hf:
            continue
        for ours_path in sorted(glob.glob(os.path.join(work, f"ours-{model}-*.json"))):
            ours = read(ours_path)
            if not ours:
                continue
            # ours-MODEL-BITS-bBATCH[-ATTENTION].json
            found = re.fullmatch(r"(\d+)-b(\d+)(?:-(\w+))?", os.path.basename(ours_path)[len(f"ours-{model}-"):-5])
            if not found:
                continue
            bits, batch, attention = found.group(1), found.group(2), found.group(3) or "default"
            r = ours["results"][0]
            row = {
                "model": model, "bits": int(bits), "batch": int(batch), "attention": attention, "seq": r["seq"],
                "ours_tokens_per_s": r["tokens_per_s"], "hf_tokens_per_s": hf["tokens_per_s"], "hf_batch": hf["batch"],
                "speed_ratio": r["tokens_per_s"] / hf["tokens_per_s"],
                "ours_peak_bytes": r["peak_bytes"], "hf_peak_bytes": hf["peak_bytes"],
                "memory_ratio": r["peak_bytes"] / hf["peak_bytes"], "ours_weight_bytes": r["weight_bytes"],
            }
            out["bench"].append(row)
            print(f"{model} {bits}-bit Q + adapter, {attention} attention, batch {batch} x {r['seq']}: {r['tokens_per_s']:.0f} tokens/s vs HF bf16 (batch {hf['batch']}) "
                  f"{hf['tokens_per_s']:.0f} = {row['speed_ratio']:.2f}x (target >= 0.5); peak {r['peak_bytes'] / 2**30:.2f} GiB vs "
                  f"{hf['peak_bytes'] / 2**30:.2f} GiB = {row['memory_ratio']:.3f} (target <= 0.333)")
    out["train"] = []
    for peft_path in sorted(glob.glob(os.path.join(work, "peft-train-*.json"))):
        model = os.path.basename(peft_path)[len("peft-train-"):-5]
        theirs = read(peft_path)
        for ours_path in sorted(glob.glob(os.path.join(work, f"ours-train-{model}*.json"))):
            ours = read(ours_path)
            attention = ours.get("attention", "default") if ours else "?"
            if not theirs or not ours:
                print(f"train {model}: missing ({'PEFT' if not theirs else 'ours'})")
                continue
            row = {"model": model, "attention": attention, "batch": ours["batch"], "seq": ours["seq"], "ours_tokens_per_s": ours["tokens_per_s"],
                   "peft_tokens_per_s": theirs["tokens_per_s"], "speed_ratio": ours["tokens_per_s"] / theirs["tokens_per_s"], "ours_peak_bytes": ours["peak_bytes"],
                   "peft_peak_bytes": theirs["peak_bytes"], "memory_ratio": ours["peak_bytes"] / theirs["peak_bytes"], "ours_losses": ours["losses"],
                   "peft_losses": theirs["losses"]}
            out["train"].append(row)
            print(f"train {model} 2-bit LoftQ r16, {attention} attention, batch {ours['batch']} x {ours['seq']}: {ours['tokens_per_s']:.0f} tokens/s vs PEFT bf16 "
                  f"{theirs['tokens_per_s']:.0f} = {row['speed_ratio']:.2f}x (target >= 0.5); peak {ours['peak_bytes'] / 2**30:.2f} GiB vs "
                  f"{theirs['peak_bytes'] / 2**30:.2f} GiB = {row['memory_ratio']:.3f} (target <= 0.40)")
    with open(os.path.join(work, "forward-results.json"), "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
