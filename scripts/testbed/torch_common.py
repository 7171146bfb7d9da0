"""What the testbed's torch scripts (pretrain.py, reference.py) share with the engine, written
from the engine's definitions so their numbers mean the same thing:

- sliding_perplexity: `loftq eval`'s protocol (src-main/engine/model/perplexity.ts);
- nf_levels / quantize: DESIGN.md's blockwise absmax quantizer (NF-k levels from the normal
  quantiles; codes decided in float64 on x/absmax, ties to the lower level);
- DataOrder / learning_rate / packed rows: `loftq train`'s data order, schedule and packing
  (train/packing.ts, util/random.ts, train/schedule.ts), so the reference fine-tunes on the
  same rows in the same order as our CLI.

data_order.py holds the pure-Python part (no torch), so it can be checked on any machine.
"""
import math

import torch

from data_order import DataOrder, learning_rate  # noqa: F401  (re-exported for the scripts)


@torch.no_grad()
def sliding_perplexity(model, ids, device, seq=512, stride=256, batch=32):
    """Windows [b, b + seq) every `stride` tokens; each scores the tokens the previous window
    did not (every token but the first exactly once, with up to seq − 1 of context); no BOS.
    bf16 autocast, log-probabilities in float32. Returns (perplexity, scored tokens)."""
    n = len(ids)
    windows, prev_end, begin = [], 0, 0
    while prev_end < n:
        end = min(begin + seq, n)
        windows.append((begin, end, max(prev_end, begin + 1)))
        prev_end = end
        begin += stride
    nll, count = 0.0, 0
    i = 0
    while i < len(windows):
        length = windows[i][1] - windows[i][0]
        j = i
        while j < len(windows) and j - i < batch and windows[j][1] - windows[j][0] == length:
            j += 1
        group = windows[i:j]
        x = torch.stack([ids[b:e] for b, e, _ in group]).long().to(device)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.is_cuda):
            logits = model(input_ids=x).logits.float()
        token_nll = -torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, x[:, 1:, None])[..., 0]
        for k, (b, e, first) in enumerate(group):
            nll += token_nll[k, first - 1 - b:e - 1 - b].double().sum().item()
            count += e - first
        i = j
    return math.exp(nll / count), count


def nf_levels(bits):
    """NF-k (DESIGN.md): positive normal quantiles at linspace(0.9677083, 0.5, 2^(k-1)+1) without
    the last, negative ones at linspace(0.9677083, 0.5, 2^(k-1)) without the last, an exact 0;
    sorted, divided by the largest magnitude; float32 like the engine's codebooks."""
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    half = 2 ** (bits - 1)
    pos = normal.icdf(torch.linspace(0.9677083, 0.5, half + 1, dtype=torch.float64)[:-1])
    neg = -normal.icdf(torch.linspace(0.9677083, 0.5, half, dtype=torch.float64)[:-1])
    levels = torch.sort(torch.cat([pos, neg, torch.zeros(1, dtype=torch.float64)])).values
    out = (levels / levels.abs().max()).to(torch.float32)
    assert len(out) == 2 ** bits
    return out


def quantize(x, levels, block=64):
    """q(x): blockwise over the row-major flattened matrix; absmax in float32, the code of
    t = x/absmax (float64) the nearest level, ties to the lower one. Returns Q (x's dtype)."""
    flat = x.reshape(-1, block).float()
    absmax = flat.abs().amax(dim=1, keepdim=True)
    scale = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    t = flat.double() / scale.double()
    lv = levels.to(device=x.device, dtype=torch.float64)
    mids = (lv[1:] + lv[:-1]) / 2
    codes = torch.bucketize(t, mids)  # mids[i-1] < t <= mids[i] → i: a tie goes to the lower level
    q = levels.to(x.device)[codes] * absmax
    return q.reshape(x.shape).to(x.dtype)


def packed_rows(ids, seq):
    """train/packing.ts: rows of seq + 1 tokens, one every seq tokens (a view per row)."""
    n = 0 if len(ids) < seq + 1 else (len(ids) - 1) // seq
    return [ids[i * seq:i * seq + seq + 1] for i in range(n)]
