"""The testbed's reproduction table in Markdown: our CLI's perplexities beside the torch reference's.

    python3 scripts/testbed/summarize_table.py WORK_DIR [--cloq known|unknown] [--steps 200 ...]

WORK_DIR is scripts/device/testbed-table.sh's work folder: runs/<row>.{init,after}.jsonl (the
`--json` output of `loftq eval` before and after `loftq train`; the last line is the result,
whose `results` hold fp, q and q+lora) and runs/<row>/layers.json; reference.json from
scripts/testbed/reference.py. Rows are <method>-b<bits>-r<rank>. Missing pieces print as "—"
with the reason below the table. Standard library only.
"""
import argparse
import json
import os

METHODS = [("qlora", "QLoRA"), ("loftq1", "LoftQ T=1"), ("loftq5", "LoftQ T=5 (best step)"),
           ("loftq5-last", "LoftQ T=5 (last step, paper)"), ("cloq", "CLoQ (GPTQ rounding)"),
           ("cloq-plain", "CLoQ (plain rounding)")]


def result_of(path):
    """The `result` line of a --json output, or None."""
    if not os.path.exists(path):
        return None
    last = None
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("{"):
            obj = json.loads(line)
            if obj.get("type") == "result":
                last = obj
    return last


def ppl(result, weights):
    if result is None:
        return None
    for r in result.get("results", []):
        if r.get("weights") == weights:
            return r.get("ppl")
    return None


def our_layers(runs, row):
    path = os.path.join(runs, row, "layers.json")
    if not os.path.exists(path):
        return None
    layers = json.load(open(path))
    return layers if isinstance(layers, list) else layers.get("layers", [])


def mean_err(runs, row):
    layers = our_layers(runs, row)
    return sum(entry["err_init"] for entry in layers) / len(layers) if layers else None


def error_agreement(runs, ref):
    """Per matrix, ours (layers.json) against the reference's errors (reference.json rows' "layers")."""
    dq, ratios, rows = [], [], 0
    for row, entry in ref.items():
        ours = our_layers(runs, row)
        if not ours or not isinstance(entry, dict) or "layers" not in entry:
            continue
        rows += 1
        for layer in ours:
            r = entry["layers"].get(layer["name"])
            if r:
                dq.append(abs(layer["err_q"] / r["err_q"] - 1))
                ratios.append(layer["err_init"] / r["err_init"])
    return (rows, max(dq), min(ratios), max(ratios), sum(ratios) / len(ratios)) if ratios else None


def fmt(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--cloq", default="unknown")
    for k, d in (("steps", "200"), ("batch", "4"), ("seq", "512"), ("lr", "5e-4"), ("warmup", "10"), ("seed", "0"),
                 ("eval-data", "assets/testbed-data/eval.txt"), ("eval-seq", "512"), ("eval-stride", "256"),
                 ("finetune-data", "assets/testbed-data/finetune.txt"), ("device", "cuda")):
        ap.add_argument(f"--{k}", default=d)
    args = ap.parse_args()
    runs = os.path.join(args.work, "runs")
    ref_path = os.path.join(args.work, "reference.json")
    ref = json.load(open(ref_path))["rows"] if os.path.exists(ref_path) else {}
    notes = []
    if not ref:
        notes.append("no reference.json: the torch reference did not run or did not finish")
    if args.cloq != "known":
        notes.append("ours: the CLI does not know `--method cloq` yet, so its CLoQ rows are empty")

    any_init = next((result_of(os.path.join(runs, f)) for f in sorted(os.listdir(runs)) if f.endswith(".init.jsonl")), None) if os.path.isdir(runs) else None
    out = [
        f"Perplexity of {args.eval_data} (window {args.eval_seq}, stride {args.eval_stride}, every token "
        "but the first scored once) of Q + adapter at init and after the same fine-tuning: LoRA on all linear modules, "
        f"alpha = r (s = 1), NF-k blockwise absmax (block 64), {args.steps} steps × {args.batch} rows × {args.seq} tokens of "
        f"{args.finetune_data}, AdamW lr {args.lr} (warm-up {args.warmup}, cosine to 0, clip 1), seed {args.seed}. "
        f"Ours: `loftq quantize|eval|train --device {args.device}`; reference: scripts/testbed/reference.py (exact SVD, torch).",
        "",
        "| bits | rank | method | ours init | ours fine-tuned | reference init | reference fine-tuned | mean err_init ours | mean err_init ref |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    fp_ref = ref.get("fp", {}).get("ppl_init")
    out.append(f"| bf16 | — | full precision | {fmt(ppl(any_init, 'fp'))} | — | {fmt(fp_ref)} | — | — | — |")
    for rank in (16, 64):
        r = ref.get(f"lora-r{rank}", {})
        out.append(f"| bf16 | {rank} | LoRA on full precision | — | — | {fmt(r.get('ppl_init'))} | {fmt(r.get('ppl_finetuned'))} | — | — |")
    notes.append("LoRA on full precision: our CLI always quantizes the backbone, so only the reference has these rows")
    omitted = 0
    for bits in (2, 3, 4):
        for rank in (16, 64):
            for key, label in METHODS:
                row = f"{key}-b{bits}-r{rank}"
                init = result_of(os.path.join(runs, f"{row}.init.jsonl"))
                after = result_of(os.path.join(runs, f"{row}.after.jsonl"))
                rr = ref.get(row, {})
                if init is None and after is None and not rr:
                    omitted += 1
                    continue
                out.append(f"| {bits} | {rank} | {label} | {fmt(ppl(init, 'q+lora'))} | {fmt(ppl(after, 'q+lora'))} | "
                           f"{fmt(rr.get('ppl_init'))} | {fmt(rr.get('ppl_finetuned'))} | {fmt(mean_err(runs, row), 4)} | "
                           f"{fmt(rr.get('mean_err_init'), 4)} |")
    if omitted:
        notes.append(f"{omitted} rows with no result on either side are left out")
    if "loftq5-last" not in " ".join(os.listdir(runs) if os.path.isdir(runs) else []):
        notes.append("LoftQ's last step (the paper's and PEFT's return value) is a reference-only row: our CLI returns the best step")
    if "cloq-plain" not in " ".join(os.listdir(runs) if os.path.isdir(runs) else []):
        notes.append("CLoQ with plain rounding is a reference-only row: ours runs the CLI's default (--calib-rounding gptq)")
    weighted = [(k, v) for k, v in ref.items() if k.startswith("cloq") and "mean_weighted_err_init" in v]
    if weighted:
        notes.append("CLoQ reference, mean activation-weighted error ‖(W − Q − sBA)L‖/‖WL‖ at init: " +
                     ", ".join(f"{k} {v['mean_weighted_err_init']:.4f} (Q alone {v['mean_weighted_err_q']:.4f})" for k, v in weighted))
    agreement = error_agreement(runs, ref)
    if agreement:
        rows, worst_q, lo, hi, mean = agreement
        notes.append(f"per-matrix errors, ours vs reference, {rows} rows: err_q max relative difference {worst_q:.1e} "
                     f"(the same deterministic quantizer); err_init ours/ref mean {mean:.4f}, range [{lo:.4f}, {hi:.4f}] "
                     "(ours: the CLI's SVD and early stop; the reference: exact SVD, all steps)")
    out.append("")
    out.extend(f"- {n}" for n in notes)
    print("\n".join(out))


if __name__ == "__main__":
    main()
