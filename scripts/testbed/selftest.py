"""Checks the testbed's torch scripts on the CPU: the reference's pieces against plain float64
definitions on fresh random inputs, and both scripts end to end on a tiny stand-in model.

    python3 scripts/testbed/selftest.py      (torch only, any version ≥ 1.13; no transformers,
                                              no tokenizers, no GPU: stand-ins replace them)

- nf_levels: NF4 equals bitsandbytes' table, NF2 is {-1, 0, 0.3379, 1};
- quantize: equals a per-element nearest-level search in float64 (ties to the lower level);
- loftq: with exact SVD, step 1's error is Pythagoras' √(‖W−Q‖² − Σ_{i≤r} σᵢ²)/‖W‖; the best step
  is never above step 1; W ≈ Q + s·B·A holds for s ≠ 1;
- cloq: for its Q, the weighted error is the optimum √(Σ_{i>r} σᵢ((W−Q)L)²)/‖WL‖, and not above
  the weighted error of LoftQ's factors for the same Q;
- gptq_round: equals a per-element loop of weighted-rounding.ts's algorithm; with H = I it is
  plain rounding; its weighted error is below plain rounding's on correlated inputs;
- sliding_perplexity: on a bigram model (context-free, so windows cannot matter) equals the
  direct mean over the scored tokens: 1..N−1 when stride < seq (the windows' first tokens
  are not scored when stride = seq, as in perplexity.ts);
- LoraLinear: x·Wᵀ + s·(x·Aᵀ)·Bᵀ;
- reference.main end to end on a tiny stand-in model with the seven Llama projections per
  layer (a character-level tokenizer in place of `tokenizers`, 3 fine-tuning steps): every
  row is written with finite perplexities, the errors are compared with a layers.json, and
  LoRA's B = 0 leaves QLoRA's init equal to Q alone;
- pretrain.main the same way (a small xz corpus, 4 rows per step, --device cpu): it sizes the
  run, trains, evaluates and writes its files and pretrain.json.
Tolerances: float64 throughout except the float32 codebook (1e-6 relative where float32 enters).
"""
import json
import math
import os
import sys
import tempfile
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import LoraLinear, cloq, gptq_round, loftq, split_factors  # noqa: E402
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


class TinyLlama(torch.nn.Module):
    """Embedding, per layer q/k/v/o attention (causal softmax) and a SwiGLU MLP, tied head."""

    def __init__(self, vocab=40, d=64, layers=2, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.config = types.SimpleNamespace(num_hidden_layers=layers)
        self.embed = torch.nn.Embedding(vocab, d)
        self.embed.weight.data.mul_(0.2)
        self.layers = torch.nn.ModuleList()
        for _ in range(layers):
            layer = torch.nn.Module()
            layer.self_attn = torch.nn.Module()
            for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
                setattr(layer.self_attn, n, torch.nn.Linear(d, d, bias=False))
            layer.mlp = torch.nn.Module()
            layer.mlp.gate_proj, layer.mlp.up_proj = torch.nn.Linear(d, 128, bias=False), torch.nn.Linear(d, 128, bias=False)
            layer.mlp.down_proj = torch.nn.Linear(128, d, bias=False)
            self.layers.append(layer)

    def forward(self, input_ids):
        x = self.embed(input_ids)
        t = x.shape[1]
        mask = torch.full((t, t), float("-inf")).triu(1)
        for layer in self.layers:
            a = layer.self_attn
            scores = a.q_proj(x) @ a.k_proj(x).transpose(1, 2) / 8 + mask
            x = x + a.o_proj(torch.softmax(scores, -1) @ a.v_proj(x))
            m = layer.mlp
            x = x + m.down_proj(torch.nn.functional.silu(m.gate_proj(x)) * m.up_proj(x))
        return types.SimpleNamespace(logits=x @ self.embed.weight.T)


def dry_run():
    import reference

    class CharTokenizer:
        def encode(self, text, add_special_tokens=False):
            return types.SimpleNamespace(ids=[ord(c) % 40 for c in text])

    sys.modules["tokenizers"] = types.SimpleNamespace(Tokenizer=types.SimpleNamespace(from_file=lambda _p: CharTokenizer()))

    def load(_path, device):
        model = TinyLlama().to(device)
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    reference.load_model = load
    with tempfile.TemporaryDirectory() as tmp:
        words = "the quick brown fox jumps over a lazy dog while nine wizards quietly vex ".split()
        gen = torch.Generator().manual_seed(5)
        for name, n in (("ft.txt", 3000), ("ev.txt", 900)):
            with open(os.path.join(tmp, name), "w") as f:
                f.write(" ".join(words[i] for i in torch.randint(0, len(words), (n // 5,), generator=gen).tolist()))
        runs = os.path.join(tmp, "runs", "loftq5-b2-r4")
        os.makedirs(runs)
        names = [n for n, _ in reference.target_modules(TinyLlama())]
        with open(os.path.join(runs, "layers.json"), "w") as f:
            json.dump([{"name": n, "err_q": 0.5, "err_init": 0.4} for n in names], f)
        out = os.path.join(tmp, "ref.json")
        sys.argv = ["reference.py", tmp, "--out", out, "--finetune", os.path.join(tmp, "ft.txt"), "--eval", os.path.join(tmp, "ev.txt"),
                    "--bits", "2", "--ranks", "4", "--steps", "3", "--warmup", "1", "--seq-len", "32", "--batch", "2",
                    "--calib-tokens", "256", "--engine-runs", os.path.join(tmp, "runs")]
        reference.main()
        rows = json.load(open(out))["rows"]
    expected = {"fp", "lora-r4"} | {f"{m}-b2-r4" for m in ("qlora", "loftq1", "loftq5", "loftq5-last", "cloq", "cloq-plain")}
    check("reference dry run: every row written", set(rows) == expected, str(sorted(rows)))
    finite = all(math.isfinite(r["ppl_init"]) and (r["ppl_finetuned"] is None or math.isfinite(r["ppl_finetuned"])) for r in rows.values())
    check("reference dry run: finite perplexities", finite)
    check("reference dry run: compared with layers.json", rows["loftq5-b2-r4"]["vs_engine"]["matrices"] == len(names))
    check("reference dry run: CLoQ's weighted error below Q alone's", rows["cloq-b2-r4"]["mean_weighted_err_init"] < rows["cloq-b2-r4"]["mean_weighted_err_q"])
    check("reference dry run: LoftQ T=5 best ≤ last", rows["loftq5-b2-r4"]["mean_err_init"] <= rows["loftq5-last-b2-r4"]["mean_err_init"] + 1e-12)


def pretrain_dry_run():
    import lzma

    class StubModel(TinyLlama):
        def __init__(self, config):
            super().__init__(vocab=config.vocab_size)

        def save_pretrained(self, out, max_shard_size):
            torch.save(self.state_dict(), os.path.join(out, "weights.pt"))
            with open(os.path.join(out, "config.json"), "w") as f:
                f.write(self.config.to_json_string())

    class StubConfig(types.SimpleNamespace):
        def to_json_string(self):
            return json.dumps({k: v for k, v in vars(self).items()})

    class CharTokenizer:
        def encode(self, text, add_special_tokens=False):
            return types.SimpleNamespace(ids=[ord(c) % 200 for c in text])

        def encode_batch(self, texts, add_special_tokens=False):
            return [self.encode(t) for t in texts]

        def token_to_id(self, token):
            return 2

    sys.modules["tokenizers"] = types.SimpleNamespace(Tokenizer=types.SimpleNamespace(from_file=lambda _p: CharTokenizer()))
    sys.modules["transformers"] = types.SimpleNamespace(LlamaConfig=StubConfig, LlamaForCausalLM=StubModel)
    import pretrain

    def stub_model():
        model = StubModel(StubConfig(vocab_size=200))
        model.config = StubConfig(vocab_size=200)
        return model

    pretrain.make_model = stub_model
    pretrain.check_tokenizer = lambda tok: None
    words = "select the rows where id is null and return a list of names from each table in order".split()
    gen = torch.Generator().manual_seed(9)
    doc = lambda n: " ".join(words[i] for i in torch.randint(0, len(words), (n,), generator=gen).tolist())  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        corpus, data, out = (os.path.join(tmp, d) for d in ("corpus", "data", "out"))
        for d in (corpus, data):
            os.makedirs(d)
        for name, count in (("train", 40), ("val", 4)):
            with lzma.open(os.path.join(corpus, f"{name}.jsonl.xz"), "wt") as f:
                for _ in range(count):
                    f.write(json.dumps({"text": doc(300), "source": "x"}) + "\n")
        for name, text in (("eval.txt", doc(400)), ("tokenizer.json", "{}"), ("tokenizer_config.json", "{}")):
            with open(os.path.join(data, name), "w") as f:
                f.write(text)
        pretrain.DATA = data
        sys.argv = ["pretrain.py", out, "--corpus", corpus, "--device", "cpu", "--batch-rows", "4", "--warmup", "5",
                    "--train-seconds", "5", "--max-epochs", "1"]
        pretrain.main()
        result = json.load(open(os.path.join(out, "pretrain.json")))
        files = sorted(os.listdir(out))
    check("pretrain dry run: its files", files == ["config.json", "pretrain.json", "tokenizer.json", "tokenizer_config.json", "weights.pt"], str(files))
    check("pretrain dry run: at most one epoch, loss fell", result["training"]["epochs"] <= 1.0 + 1e-9
          and result["training"]["loss_curve"][-1][1] < math.log(200), json.dumps(result["training"]["loss_curve"]))
    check("pretrain dry run: finite perplexities, val/train ratio", all(math.isfinite(result[k]) for k in ("val_ppl", "austen_eval_ppl", "val_over_train_loss")))


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

    # GPTQ rounding: a literal per-element loop of the engine's algorithm (tensor/weighted-rounding.ts).
    x = torch.randn(3, 128, generator=gen, dtype=torch.float64)
    lv = nf_levels(2).double()
    m = torch.linalg.inv(chol[:64, :64].contiguous())
    small_chol = chol[:64, :64].contiguous()
    x = x[:, :64].contiguous()
    wl = x.clone()
    q_loop = torch.zeros_like(x)
    scales = [0.0] * 3
    for j in range(63, -1, -1):
        for i in range(3):
            if j == 63:
                scales[i] = float(torch.tensor([abs(v) for v in wl[i].tolist()], dtype=torch.float32).max())
            t = wl[i, j].item() / scales[i] if scales[i] else 0.0
            d = (lv - t).abs()
            c = int(torch.nonzero(d == d.min())[0])
            q_loop[i, j] = float(torch.tensor(float(lv[c]) * scales[i], dtype=torch.float32))
        for i in range(3):
            e = (wl[i, j].item() - q_loop[i, j].item()) / m[j, j].item()
            for k in range(j):
                wl[i, k] -= e * m[j, k].item()
    q_fast = gptq_round(x, small_chol, nf_levels(2))
    check("gptq_round = the per-element loop", torch.allclose(q_fast, q_loop, rtol=1e-6, atol=1e-9), f"max |diff| {float((q_fast - q_loop).abs().max()):.1e}")
    eye = torch.eye(w.shape[1], dtype=torch.float64)
    check("gptq_round with H = I is plain rounding", torch.equal(gptq_round(w, eye, levels).float(), quantize(w, levels).float()))
    werr = lambda q: float(((w - q) @ chol).norm())  # noqa: E731
    check("gptq_round: weighted error below plain rounding's", werr(gptq_round(w, chol, levels)) < werr(quantize(w, levels)),
          f"{werr(gptq_round(w, chol, levels)):.3f} < {werr(quantize(w, levels)):.3f}")

    model = Bigram(11, gen)
    ids = torch.randint(0, 11, (37,), generator=gen)
    logp = torch.log_softmax(model.table, dim=-1)
    for seq, stride in ((8, 4), (8, 8), (5, 2), (64, 32)):
        # With stride < seq every token but the first is scored; with stride = seq (as in
        # perplexity.ts) a window's first token has no context there and is not scored.
        scored = [t for t in range(1, len(ids)) if stride < seq or t % seq != 0]
        direct = math.exp(-float(sum(logp[ids[t - 1], ids[t]] for t in scored)) / len(scored))
        ppl, count = sliding_perplexity(model, ids, torch.device("cpu"), seq=seq, stride=stride, batch=3)
        check(f"sliding perplexity seq {seq} stride {stride}", count == len(scored) and abs(ppl / direct - 1) < 1e-6,
              f"{ppl:.6f} vs {direct:.6f}, {count} tokens")

    wl, al, bl = (torch.randn(*s, generator=gen) for s in ((6, 5), (3, 5), (6, 3)))
    lin = LoraLinear(wl, al, bl, 0.5)
    xin = torch.randn(4, 5, generator=gen)
    check("LoraLinear = x·Wᵀ + s·(x·Aᵀ)·Bᵀ", torch.allclose(lin(xin), xin @ wl.T + 0.5 * (xin @ al.T) @ bl.T, atol=1e-6))
    dry_run()
    pretrain_dry_run()
    print(f"{len(FAILS)} failed" if FAILS else "all passed")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
