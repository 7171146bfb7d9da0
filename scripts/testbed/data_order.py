"""`loftq train`'s data order and learning-rate schedule in plain Python (no torch), so that the
torch reference (reference.py) visits the same rows in the same order with the same rates.

- Rng: xoshiro128** seeded by splitmix32 (src-main/engine/util/random.ts), uniform() in [0, 1).
- DataOrder: per epoch a Fisher–Yates permutation from Rng(epoch_seed(seed, epoch))
  (train/packing.ts); take(n) walks it, crossing into the next epoch as needed.
- learning_rate: train/schedule.ts (steps numbered from 1; warm-up peak·step/W for step < W,
  then cosine or linear decay to the floor over the remaining steps).

    python3 scripts/testbed/data_order.py   # self-check against values printed by the engine
"""
import math

M32 = 0xFFFFFFFF


def _imul(a, b):
    return (a * b) & M32


def _rotl(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


class Rng:
    def __init__(self, seed):
        x = seed & M32
        state = []
        for _ in range(4):
            x = (x + 0x9E3779B9) & M32
            z = x
            z = _imul(z ^ (z >> 16), 0x85EBCA6B)
            z = _imul(z ^ (z >> 13), 0xC2B2AE35)
            state.append((z ^ (z >> 16)) & M32)
        self.s = state

    def next_uint32(self):
        s0, s1, s2, s3 = self.s
        result = _imul(_rotl(_imul(s1, 5), 7), 9)
        t = (s1 << 9) & M32
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = _rotl(s3, 11)
        self.s = [s0, s1, s2, s3]
        return result

    def uniform(self):
        return self.next_uint32() / 4294967296


def epoch_seed(seed, epoch):
    h = (seed & M32) ^ _imul(epoch + 1, 0x9E3779B1)
    h = _imul(h ^ (h >> 16), 0x85EBCA6B)
    h = _imul(h ^ (h >> 13), 0xC2B2AE35)
    return (h ^ (h >> 16)) & M32


class DataOrder:
    def __init__(self, rows, seed):
        self.rows, self.seed = rows, seed
        self.epoch, self.index, self.perm = 0, 0, self.permutation(0)

    def permutation(self, epoch):
        perm = list(range(self.rows))
        rng = Rng(epoch_seed(self.seed, epoch))
        for i in range(self.rows - 1, 0, -1):
            j = math.floor(rng.uniform() * (i + 1))
            perm[i], perm[j] = perm[j], perm[i]
        return perm

    def take(self, n):
        out = []
        while len(out) < n:
            if self.index == self.rows:
                self.epoch, self.index = self.epoch + 1, 0
                self.perm = self.permutation(self.epoch)
            out.append(self.perm[self.index])
            self.index += 1
        return out


def learning_rate(step, peak, warmup, total, floor=0.0, decay="cosine"):
    if step < 1:
        raise ValueError("steps are numbered from 1")
    if warmup > 0 and step < warmup:
        return peak * step / warmup
    if decay == "constant":
        return peak
    if step >= total:
        return peak if total <= warmup else floor
    p = (step - warmup) / (total - warmup)
    f = 0.5 * (1 + math.cos(math.pi * p)) if decay == "cosine" else 1 - p
    return floor + (peak - floor) * f


# Printed by the engine: Rng(7).nextUint32() ×5, new DataOrder(rows, seed).take(START_POSITION, n).rows,
# learningRate(step, {peak 2e-4, floor 0, warmup 10, total 200, cosine}).
ENGINE_VALUES = {"rng_seed7":[1004282400,2200021487,1928073449,741806228,2429532727],"order_rows10_seed0":[7,6,1,9,4,0,3,8,5,2,0,3,5,8,1,6,9,2,4,7,6,3,4,9,7],"order_rows655_seed3":[11,619,585,321,404,634,363,89,93,182,29,376],"lr":[2e-05,0.0001,0.0002,0.0001999863304992469,0.00010825793454723325,1.3669500753099585e-8,0]}

if __name__ == "__main__":
    import json
    import sys

    expected = json.load(open(sys.argv[1])) if len(sys.argv) > 1 else ENGINE_VALUES
    rng = Rng(7)
    got = {
        "rng_seed7": [rng.next_uint32() for _ in range(5)],
        "order_rows10_seed0": DataOrder(10, 0).take(25),
        "order_rows655_seed3": DataOrder(655, 3).take(12),
        "lr": [learning_rate(s, 2e-4, 10, 200) for s in (1, 5, 10, 11, 100, 199, 200)],
    }
    if expected is None:
        print(json.dumps(got))
        sys.exit(0)
    bad = [k for k in expected if (expected[k] != got[k] if k != "lr" else any(abs(a - b) > 1e-15 for a, b in zip(expected[k], got[k])))]
    print("data_order: " + ("matches the engine" if not bad else f"DIFFERS from the engine in {bad}"))
    sys.exit(1 if bad else 0)
