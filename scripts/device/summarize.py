"""The GPU check's table: our numbers against the baselines measured in the same run.

  python3 scripts/device/summarize.py RESULTS_DIR
Reads the JSON lines the stages wrote into RESULTS_DIR and prints the table and results.json.
"""
import json
import os
import sys


def load(d, name):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return None
    text = open(p).read()
    try:
        return json.loads(text)
    except ValueError:
        lines = [l for l in text.splitlines() if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None


def main():
    d = sys.argv[1]
    ours_m, torch_m = load(d, "ours-matrix.json"), load(d, "torch-matrix.json")
    floor, run, wall = load(d, "floor.json"), load(d, "run7b.json"), load(d, "run7b-wall.json")
    torch_model, verify = load(d, "torch-model.json"), load(d, "verify.json")
    rows, results = [], {}
    if ours_m and torch_m:
        exact_best = min(torch_m["linalg_svd"]["steps"])
        exact_last = torch_m["linalg_svd"]["steps"][-1]
        t_ours, t_torch = ours_m["randomized"]["seconds"], torch_m["svd_lowrank"]["seconds"]
        results["matrix"] = {
            "ours_s": t_ours, "torch_svd_lowrank_s": t_torch, "torch_linalg_svd_s": torch_m["linalg_svd"]["seconds"],
            "time_ratio_vs_svd_lowrank": t_ours / t_torch, "ours_err": ours_m["randomized"]["err_init"],
            "torch_svd_lowrank_best_err": min(torch_m["svd_lowrank"]["steps"]), "exact_best_err": exact_best, "exact_last_err": exact_last,
            "err_ratio_vs_exact_best": ours_m["randomized"]["err_init"] / exact_best,
            "ours_fp32_sketch_s": (ours_m.get("randomized_fp32_sketch") or {}).get("seconds"),
            "ours_fp32_sketch_err": (ours_m.get("randomized_fp32_sketch") or {}).get("err_init"),
            "ours_peak_gpu_bytes": ours_m.get("gpu_peak_bytes"), "torch_peak_gpu_bytes": torch_m["svd_lowrank"]["peak_gpu_bytes"],
            "ours_peak_rss_bytes": ours_m.get("peak_rss_bytes"), "torch_peak_rss_bytes": torch_m.get("peak_rss_bytes"),
        }
        m = results["matrix"]
        rows.append(("4096x11008 NF2 r=64 T=5: ours / torch svd_lowrank", f"{m['ours_s'] * 1e3:.1f} ms / {m['torch_svd_lowrank_s'] * 1e3:.1f} ms = {m['time_ratio_vs_svd_lowrank']:.3f} (target <= 0.5)"))
        rows.append(("  error ours / exact-SVD LoftQ (best step)", f"{m['ours_err']:.5f} / {exact_best:.5f} = {m['err_ratio_vs_exact_best']:.4f} (target <= 1.005; exact last step {exact_last:.5f})"))
        rows.append(("  torch linalg.svd (official / PEFT)", f"{m['torch_linalg_svd_s']:.2f} s"))
        if m["ours_fp32_sketch_s"]:
            rows.append(("  ours with fp32 sketches", f"{m['ours_fp32_sketch_s'] * 1e3:.1f} ms, err {m['ours_fp32_sketch_err']:.5f}"))
        for name, v in (ours_m.get("power_iteration_variants") or {}).items():
            rows.append((f"  ours, power iterations first/warm {name}", f"{v['seconds'] * 1e3:.1f} ms, err ratio {v['err_init'] / exact_best:.4f}"))
        results["matrix"]["variants"] = ours_m.get("power_iteration_variants")
        results["matrix"]["round_trip_us"] = ours_m.get("round_trip_us")
        if ours_m.get("round_trip_us") is not None:
            rows.append(("  one host round trip (sum of 16 values)", f"{ours_m['round_trip_us']:.0f} us"))
    if run and wall:
        t = wall["seconds"]
        results["model"] = {"ours_end_to_end_s": t, "status": run["status"], "timings": run.get("timings"), "summary": run.get("summary"), "device": run.get("device")}
        rows.append(("7B-shaped bf16 model, LoftQ NF2 r=64 T=5, end to end", f"{t:.1f} s, status {run['status']} (target <= 30 s)"))
        tm = run.get("timings") or {}
        rows.append(("  peak host RSS / peak GPU memory", f"{(tm.get('peak_rss_bytes') or 0) / 2**30:.2f} GiB / {(tm.get('gpu_peak_bytes') or 0) / 2**30:.2f} GiB (target RSS <= 4 GB)"))
        if floor:
            ratio = t / floor["seconds"]
            results["model"]["read_floor_s"] = floor["seconds"]
            results["model"]["ratio_to_read_floor"] = ratio
            rows.append(("  read-bandwidth floor", f"{floor['seconds']:.1f} s ({floor['gb_per_s']:.1f} GB/s); ours / floor = {ratio:.2f}"))
        if torch_model:
            c = torch_model["svd_lowrank_model"]["compute_seconds"]
            results["model"]["torch_compute_only_s"] = c
            results["model"]["ratio_to_torch_compute"] = t / c
            rows.append(("  torch svd_lowrank, compute only (224 matrices)", f"{c:.1f} s; ours end to end / torch compute = {t / c:.2f}"))
        if verify:
            results["model"]["verify"] = verify
            rows.append(("  err_init recomputed in float64 from the files", f"max rel. diff {verify['max_rel_diff_err_init']:.2e} over {verify['matrices']} matrices"))
    ops = load(d, "ops.json")
    if ops:
        results["ops_ms"] = ops["ms"]
        rows.append((f"one step's operations on {ops['shape'][0]}x{ops['shape'][1]} (ms)", ""))
        for name, ms in ops["ms"].items():
            rows.append((f"  {name}", f"{ms:.3f}"))
    width = max((len(a) for a, _ in rows), default=0)
    for a, b in rows:
        print(f"{a.ljust(width)}  {b}")
    json.dump(results, open(os.path.join(d, "results.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
