"""PyTorch baselines for LoftQ, measured in the same run as ours (scripts/device/gpu-check.sh).

  python3 scripts/device/torch_loftq.py matrix FILE [--bits 2] [--rank 64] [--iters 5]
  python3 scripts/device/torch_loftq.py model MODEL_DIR [--bits 2] [--rank 64] [--iters 5]

LoftQ written from the algorithm (DESIGN.md), as the official code and PEFT do it: blockwise
absmax NF quantization (block 64) of the residual, then the best rank-r approximation of
W - Q, T times; with torch.svd_lowrank (q = r + 8, niter = 2) or torch.linalg.svd (exact,
what the official code and PEFT use). float32 throughout, TF32 off (PyTorch's default).
Prints one JSON line: times (median of repeated runs after a warm-up, synchronized), every
step's error ||W - Q - L||/||W|| and peak GPU memory. `model` times compute only: each
matrix is on the GPU before its clock starts.
"""
import json
import math
import resource
import sys
import time

import torch
from safetensors import safe_open

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def arg(name, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def nf_levels(bits):
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    half = 2 ** (bits - 1)
    pos = normal.icdf(torch.linspace(0.9677083, 0.5, half + 1, dtype=torch.float64)[:-1])
    neg = -normal.icdf(torch.linspace(0.9677083, 0.5, half, dtype=torch.float64)[:-1])
    levels = torch.sort(torch.cat([pos, neg, torch.zeros(1, dtype=torch.float64)])).values
    return (levels / levels.abs().max()).to(torch.float32).cuda()


def quantize(x, levels, block=64):
    flat = x.reshape(-1, block)
    absmax = flat.abs().amax(dim=1, keepdim=True)
    t = flat / torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    mids = (levels[1:] + levels[:-1]) / 2
    return (levels[torch.bucketize(t, mids)] * absmax).reshape(x.shape)


def loftq(w, levels, rank, iters, exact):
    """Returns the per-step error tensors (not synchronized)."""
    norm = w.norm()
    residual = w
    errors = []
    for _ in range(iters):
        q = quantize(residual, levels)
        d = w - q
        if exact:
            u, s, vh = torch.linalg.svd(d, full_matrices=False)
            low = (u[:, :rank] * s[:rank]) @ vh[:rank]
        else:
            u, s, v = torch.svd_lowrank(d, q=rank + 8, niter=2)
            low = (u[:, :rank] * s[:rank]) @ v[:, :rank].T
        residual = w - low
        errors.append((d - low).norm() / norm)
    return errors


def timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]


def main():
    mode, path = sys.argv[1], sys.argv[2]
    bits, rank, iters = arg("--bits", 2), arg("--rank", 64), arg("--iters", 5)
    levels = nf_levels(bits)
    result = {"mode": mode, "bits": bits, "rank": rank, "iters": iters, "device": torch.cuda.get_device_name()}
    if mode == "matrix":
        with safe_open(path, "pt", device="cuda") as f:
            w = f.get_tensor(f.keys()[0]).float()
        result["shape"] = list(w.shape)
        for _ in range(2):
            loftq(w, levels, rank, iters, False)
        torch.cuda.reset_peak_memory_stats()
        runs, errs = [], None
        for _ in range(5):
            t, errs = timed(lambda: loftq(w, levels, rank, iters, False))
            runs.append(t)
        result["svd_lowrank"] = {"seconds": median(runs), "runs": runs, "steps": [e.item() for e in errs],
                                 "peak_gpu_bytes": torch.cuda.max_memory_allocated()}
        t, errs = timed(lambda: loftq(w, levels, rank, iters, True))
        result["linalg_svd"] = {"seconds": t, "steps": [e.item() for e in errs]}
    else:
        index = json.load(open(f"{path}/model.safetensors.index.json"))["weight_map"]
        targets = [n for n in index if n.endswith("_proj.weight")]
        warm = True
        total, count, errors = 0.0, 0, []
        torch.cuda.reset_peak_memory_stats()
        for name in targets:
            with safe_open(f"{path}/{index[name]}", "pt", device="cuda") as f:
                w = f.get_tensor(name).float()
            if warm:
                loftq(w, levels, rank, iters, False)
                warm = False
            t, errs = timed(lambda: loftq(w, levels, rank, iters, False))
            total += t
            count += 1
            errors.append(min(e.item() for e in errs))
            del w
        result["svd_lowrank_model"] = {"compute_seconds": total, "matrices": count, "mean_best_err": sum(errors) / len(errors),
                                       "peak_gpu_bytes": torch.cuda.max_memory_allocated()}
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
