"""Checks the torch reference's pieces against plain float64 definitions on fresh random inputs.

    python3 scripts/testbed/reference_selftest.py      (torch only; CPU is enough)

- nf_levels: NF4 equals bitsandbytes' table, NF2 is {-1, 0, 0.3379, 1};
- quantize: equals a per-element nearest-level search in float64 (ties to the lower level);
- loftq: with exact SVD, step 1's error is Pythagoras' √(‖W−Q‖² − Σ_{i≤r} σᵢ²)/‖W‖; the best step
  is never above step 1; W ≈ Q + s·B·A holds for s ≠ 1;
- cloq: for its Q, the weighted error is the optimum √(Σ_{i>r} σᵢ((W−Q)L)²)/‖WL‖, and not above
  the weighted error of LoftQ's factors for the same Q;
- sliding_perplexity: on a bigram model (context-free, so windows cannot matter) equals the
  direct mean over tokens 1..N−1, and scores N − 1 tokens;
- LoraLinear: x·Wᵀ + s·(x·Aᵀ)·Bᵀ.
Tolerances: float64 throughout except the float32 codebook (1e-6 relative where float32 enters).
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import LoraLinear, cloq, loftq, split_factors  # noqa: E402
from torch_common import nf_levels, quantize, sliding_perplexity  # noqa: E402

BNB_NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
           -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
           0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
           0.7229568362236023, 1.0]
FAILS = []


def check(name, ok, detail=""):
    print(f"[{'PASS' if ok else 'FAIL'}] {name} {detail}")
    if not ok:
        FAILS.append(name)


def slow_quantize(x, levels, block):
    flat = x.reshape(-1, block).double()
    lv = levels.double()
    out = torch.empty_like(flat)
    for i in range(flat.shape[0]):
        amax = flat[i].abs().max().float().double()
        for j in range(block):
            t = flat[i, j] / amax if amax > 0 else 0.0
            d = (lv - t).abs()
            k = int(torch.nonzero(d == d.min())[0])  # the lower level on a tie
            out[i, j] = lv[k] * amax
    return out.reshape(x.shape)


class Bigram(torch.nn.Module):
    def __init__(self, vocab, gen):
        super().__init__()
        self.table = torch.randn(vocab, vocab, generator=gen, dtype=torch.float64)

    def forward(self, input_ids):
        return type("Out", (), {"logits": self.table[input_ids]})()


def main():
    gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
    check("NF4 = bitsandbytes", torch.allclose(nf_levels(4).double(), torch.tensor(BNB_NF4, dtype=torch.float64), atol=1e-7))
    check("NF2 levels", torch.allclose(nf_levels(2).double(), torch.tensor([-1, 0, 0.33791524171829224, 1], dtype=torch.float64), atol=1e-6))

    for bits in (2, 3, 4):
        x = torch.randn(8, 128, generator=gen, dtype=torch.float64)
        levels = nf_levels(bits)
        lv = levels.double()
        # plant exact ties: t on a midpoint (block absmax 1 in the first block)
        x[0, 0] = 1.0
        x[0, 1] = float((lv[0] + lv[1]) / 2)
        q, ref = quantize(x, levels), slow_quantize(x, levels, 64)
        check(f"quantize NF{bits} = per-element nearest level", torch.allclose(q, ref, rtol=1e-6, atol=1e-12),
              f"max |diff| {float((q - ref).abs().max()):.2e}")

    w = torch.randn(96, 64, generator=gen, dtype=torch.float64) * torch.linspace(0.2, 2, 64, dtype=torch.float64)
    levels = nf_levels(2)
    rank = 8
    for scaling in (1.0, 0.25):
        steps = loftq(w, levels, rank, scaling, 5)
        q1 = quantize(w, levels)
        s_vals = torch.linalg.svdvals(w - q1)
        pyth = math.sqrt(float((w - q1).norm() ** 2 - (s_vals[:rank] ** 2).sum())) / float(w.norm())
        check(f"loftq s={scaling}: step 1 = Pythagoras", abs(steps[0][3] - pyth) < 1e-10, f"{steps[0][3]:.6f} vs {pyth:.6f}")
        q, b, a, err = steps[-1]
        recon = float((w - q - scaling * b @ a).norm() / w.norm())
        check(f"loftq s={scaling}: reported error = ‖W − Q − s·B·A‖/‖W‖", abs(recon - err) < 1e-10)
        check(f"loftq s={scaling}: best step ≤ step 1", min(s[3] for s in steps) <= steps[0][3] + 1e-15,
              "steps " + ", ".join(f"{s[3]:.4f}" for s in steps))

    # A Gram matrix with strongly unequal directions, as activations have.
    xs = torch.randn(400, 64, generator=gen, dtype=torch.float64) * torch.logspace(0, 1.5, 64, dtype=torch.float64)
    h = xs.T @ xs / 400
    h = h + 0.01 * h.diagonal().mean() * torch.eye(64, dtype=torch.float64)
    chol = torch.linalg.cholesky(h)
    check("cholesky: H = L·Lᵀ", torch.allclose(chol @ chol.T, h, rtol=1e-10, atol=1e-10))
    for scaling in (1.0, 0.5):
        steps = cloq(w, chol, levels, rank, scaling, 3)
        q, b, a, err, werr = steps[0]
        sv = torch.linalg.svdvals((w - q) @ chol)
        optimum = float(torch.sqrt((sv[rank:] ** 2).sum()) / (w @ chol).norm())
        check(f"cloq s={scaling}: step 1 weighted error = the rank-r optimum", abs(werr - optimum) < 1e-9, f"{werr:.6f} vs {optimum:.6f}")
        u, s_all, vh = torch.linalg.svd(w - q, full_matrices=False)
        lb, la = split_factors(u, s_all, vh, rank, scaling)
        loftq_w = float(((w - q - scaling * lb @ la) @ chol).norm() / (w @ chol).norm())
        check(f"cloq s={scaling}: weighted error ≤ LoftQ's factors' for the same Q", werr <= loftq_w + 1e-12, f"{werr:.4f} ≤ {loftq_w:.4f}")
        recon = float(((w - q - scaling * b @ a) @ chol).norm() / (w @ chol).norm())
        check(f"cloq s={scaling}: reported weighted error recomputes", abs(recon - werr) < 1e-10)

    model = Bigram(11, gen)
    ids = torch.randint(0, 11, (37,), generator=gen)
    logp = torch.log_softmax(model.table, dim=-1)
    direct = math.exp(-float(sum(logp[ids[t - 1], ids[t]] for t in range(1, len(ids)))) / (len(ids) - 1))
    for seq, stride in ((8, 4), (8, 8), (5, 2), (64, 32)):
        ppl, count = sliding_perplexity(model, ids, torch.device("cpu"), seq=seq, stride=stride, batch=3)
        check(f"sliding perplexity seq {seq} stride {stride}", count == len(ids) - 1 and abs(ppl / direct - 1) < 1e-6,
              f"{ppl:.6f} vs {direct:.6f}, {count} tokens")

    wl, al, bl = (torch.randn(*s, generator=gen) for s in ((6, 5), (3, 5), (6, 3)))
    lin = LoraLinear(wl, al, bl, 0.5)
    xin = torch.randn(4, 5, generator=gen)
    check("LoraLinear = x·Wᵀ + s·(x·Aᵀ)·Bᵀ", torch.allclose(lin(xin), xin @ wl.T + 0.5 * (xin @ al.T) @ bl.T, atol=1e-6))
    print(f"{len(FAILS)} failed" if FAILS else "all passed")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
