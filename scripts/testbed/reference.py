"""The reference side of the testbed's reproduction table: the papers' algorithms in PyTorch.

    python3 scripts/testbed/reference.py MODEL_DIR --out ref.json [--engine-runs DIR]
        [--bits 2,3,4] [--ranks 16,64] [--steps 200] [--lr 5e-4] [--batch 4] [--seq-len 512]
        [--warmup 10] [--seed 0] [--calib-tokens 4096] [--damp 0.01] [--eval-seq 512] [--eval-stride 256]

For each bits × rank, every initialization of DESIGN.md, written here from the algorithm
(exact SVD in float64, LoRA scaling s = alpha/r with alpha = r, so s = 1):

  qlora        Q = q(W), A Kaiming-uniform (PEFT's bound 1/√in), B = 0
  loftq1       LoftQ T = 1
  loftq5       LoftQ T = 5, the step with the lowest ‖W − Q − s·B·A‖ (DESIGN.md, our CLI)
  loftq5-last  LoftQ T = 5, the last step (what the paper's code and PEFT return)
  cloq         the calibrated init (CLoQ): H = XᵀX + λ·mean(diag)·I from the inputs X of
               each matrix (one full-precision forward pass over the first --calib-tokens of
               the fine-tuning split in windows of --seq-len: the CLI's defaults, 4096 and
               512), L = chol(H); T = 5 steps of Q ← GPTQ's H-aware rounding of W − s·B·A
               (the CLI's default --calib-rounding) and the closed form
               s·B·A = U_r Σ_r V_rᵀ L⁻¹ from the SVD of (W − Q)·L; best step by the weighted
               error ‖(W − Q − s·B·A)·L‖ / ‖W·L‖
  cloq-plain   the same with plain rounding Q ← q(W − s·B·A)

plus full precision (no adapter) and LoRA on full precision (W unquantized, QLoRA's init) per
rank. Each is evaluated (perplexity of the Austen evaluation split, loftq eval's sliding window
512/256) at init and after the same fine-tuning as `loftq train`: LoRA on all seven linear
modules over the frozen dequantized Q, AdamW (β 0.9/0.999, ε 1e-8, no weight decay),
clipping at global norm 1, warm-up then cosine to 0 (train/schedule.ts), rows of seq + 1
tokens of the fine-tuning split packed as train/packing.ts packs them and visited in the
engine's own seeded order (data_order.py), --batch rows per step, mean token loss.

With --engine-runs DIR (the driver's run folders, DIR/<row>/layers.json), each init's
per-matrix errors are printed beside the engine's: err_q must agree to 1e-4 (the same
deterministic quantizer), err_init within a few % (the engine's randomized SVD, its early stop).
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_common import DataOrder, learning_rate, nf_levels, packed_rows, quantize, sliding_perplexity  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "assets", "testbed-data")
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:6.1f} s] {msg}", flush=True)


class LoraLinear(torch.nn.Module):
    """x·Wᵀ + s·(x·Aᵀ)·Bᵀ with W frozen (PEFT's LoRA, dropout 0)."""

    def __init__(self, weight, a, b, scaling):
        super().__init__()
        self.register_buffer("weight", weight)
        self.lora_A = torch.nn.Parameter(a.float().clone())
        self.lora_B = torch.nn.Parameter(b.float().clone())
        self.scaling = scaling

    def forward(self, x):
        return F.linear(x, self.weight) + self.scaling * F.linear(F.linear(x, self.lora_A), self.lora_B)


def target_modules(model):
    return [(name, mod) for name, mod in model.named_modules() if name.split(".")[-1] in TARGETS and isinstance(mod, torch.nn.Linear)]


def set_module(model, name, module):
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent), leaf, module)


# ---------------------------------------------------------------- initializations (float64)

def kaiming_a(rank, fan_in, gen, device):
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=√5), as PEFT initializes lora_A
    return (torch.rand(rank, fan_in, generator=gen, dtype=torch.float64) * 2 - 1).mul_(bound).to(device)


def split_factors(u, s_vals, vh, rank, scaling):
    root = s_vals[:rank].sqrt()
    return u[:, :rank] * root / math.sqrt(scaling), root[:, None] * vh[:rank] / math.sqrt(scaling)


def loftq(w, levels, rank, scaling, iters):
    """Every step's (Q, B, A, error); W ≈ Q + s·B·A."""
    norm = w.norm()
    b = torch.zeros(w.shape[0], rank, dtype=w.dtype, device=w.device)
    a = torch.zeros(rank, w.shape[1], dtype=w.dtype, device=w.device)
    steps = []
    for _ in range(iters):
        q = quantize(w - scaling * b @ a, levels)
        u, s_vals, vh = torch.linalg.svd(w - q, full_matrices=False)
        b, a = split_factors(u, s_vals, vh, rank, scaling)
        steps.append((q, b, a, ((w - q - scaling * b @ a).norm() / norm).item()))
    return steps


def gptq_round(x, chol, levels, block=64):
    """H-aware rounding (GPTQ) of x (rows × cols, cols a multiple of the block) to the blockwise
    codebook, as the engine's tensor/weighted-rounding.ts does it: with M = L⁻¹ (H⁻¹ = Mᵀ·M),
    columns run from the last to the first; column j's rounding error divided by the pivot
    1/M[j][j] moves the columns k < j by −e·M[j][k]. A block's absmax is taken from its values
    as the feedback has left them when its first value (its last column) is rounded."""
    rows, cols = x.shape
    assert cols % block == 0, "blocks must lie along rows"
    m = torch.linalg.solve_triangular(chol, torch.eye(cols, dtype=chol.dtype, device=chol.device), upper=False)
    w = x.double().clone()
    lv = levels.to(device=x.device, dtype=torch.float64)
    lv32 = levels.to(x.device)
    mids = (lv[1:] + lv[:-1]) / 2
    q = torch.empty_like(w)
    scale = torch.zeros(rows, dtype=torch.float64, device=x.device)
    for j in range(cols - 1, -1, -1):
        if j % block == block - 1:
            absmax = w[:, j - block + 1:j + 1].float().abs().amax(dim=1)
            scale = absmax.double()
        t = torch.where(scale > 0, w[:, j] / torch.where(scale > 0, scale, torch.ones_like(scale)), torch.zeros_like(scale))
        codes = torch.bucketize(t, mids)
        q[:, j] = (lv32[codes] * scale.float()).double()
        if j:
            err = (w[:, j] - q[:, j]) / m[j, j]
            w[:, :j] -= err[:, None] * m[j, :j][None, :]
    return q.to(x.dtype)


def cloq(w, chol, levels, rank, scaling, iters, rounding="gptq"):
    """Every step's (Q, B, A, plain error, weighted error) of the calibrated init."""
    norm, wnorm = w.norm(), (w @ chol).norm()
    b = torch.zeros(w.shape[0], rank, dtype=w.dtype, device=w.device)
    a = torch.zeros(rank, w.shape[1], dtype=w.dtype, device=w.device)
    steps = []
    for _ in range(iters):
        target = w - scaling * b @ a
        q = gptq_round(target, chol, levels) if rounding == "gptq" else quantize(target, levels)
        u, s_vals, vh = torch.linalg.svd((w - q) @ chol, full_matrices=False)
        root = s_vals[:rank].sqrt()
        # A = Σ^½ V_rᵀ L⁻¹ / √s: solve Lᵀ·X = V_r, then A = (Σ^½ Xᵀ) / √s.
        x = torch.linalg.solve_triangular(chol.T, vh[:rank].T, upper=True)
        b = u[:, :rank] * root / math.sqrt(scaling)
        a = root[:, None] * x.T / math.sqrt(scaling)
        resid = w - q - scaling * b @ a
        steps.append((q, b, a, (resid.norm() / norm).item(), ((resid @ chol).norm() / wnorm).item()))
    return steps


@torch.no_grad()
def input_grams(model, ids, device, seq, rows=8):
    """XᵀX (float64) of every target matrix's inputs over the calibration tokens (fp model, fp32),
    read as consecutive windows of seq tokens."""
    grams, count, hooks = {}, {}, []
    for name, mod in target_modules(model):
        def hook(_m, inp, _out, name=name):
            x = inp[0].reshape(-1, inp[0].shape[-1]).double()
            grams[name] = grams.get(name, 0) + x.T @ x
            count[name] = count.get(name, 0) + x.shape[0]
        hooks.append(mod.register_forward_hook(hook))
    chunks = [ids[i:i + seq] for i in range(0, len(ids) - seq + 1, seq)]
    for i in range(0, len(chunks), rows):
        model(input_ids=torch.stack(chunks[i:i + rows]).long().to(device))
    for h in hooks:
        h.remove()
    return grams, count


# ---------------------------------------------------------------- fine-tuning (as loftq train)

def finetune(model, rows, args, device):
    params = [p for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    order = DataOrder(len(rows), args.seed)
    losses = []
    for step in range(1, args.steps + 1):
        batch = torch.stack([rows[i] for i in order.take(args.batch)]).long().to(device)
        lr = learning_rate(step, args.lr, args.warmup, args.steps)
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(input_ids=batch[:, :-1]).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
        opt.step()
        losses.append(loss.item())
    return losses


def load_model(path, device):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def engine_layers(runs_dir, row):
    path = os.path.join(runs_dir or "", row, "layers.json")
    if not runs_dir or not os.path.exists(path):
        return None
    layers = json.load(open(path))
    return {entry["name"]: entry for entry in (layers if isinstance(layers, list) else layers.get("layers", []))}


def compare_errors(row, ours, engine):
    """Prints per-matrix errors beside the engine's; returns the summary."""
    if engine is None:
        return None
    ratios, dq = [], []
    for name, e in ours.items():
        eng = engine.get(name)
        if eng is None:
            continue
        dq.append(abs(eng["err_q"] / e["err_q"] - 1))
        ratios.append(eng["err_init"] / e["err_init"])
    if not ratios:
        return None
    summary = {"matrices": len(ratios), "err_q_max_rel_diff": max(dq), "err_init_engine_over_ref_mean": sum(ratios) / len(ratios),
               "err_init_engine_over_ref_min": min(ratios), "err_init_engine_over_ref_max": max(ratios)}
    ok = "ok" if summary["err_q_max_rel_diff"] <= 1e-4 else "ERR_Q DIFFERS"
    log(f"  {row}: vs engine layers.json: err_q max rel diff {summary['err_q_max_rel_diff']:.2e} ({ok}); "
        f"err_init engine/ref mean {summary['err_init_engine_over_ref_mean']:.4f} [{summary['err_init_engine_over_ref_min']:.4f}, "
        f"{summary['err_init_engine_over_ref_max']:.4f}]")
    return summary


def run_row(args, model_path, device, row, inits, scaling, eval_ids, train_rows):
    """inits: {module: (weight, A, B)}; a fresh copy of the model with those LoRA modules is
    evaluated at init, fine-tuned, and evaluated again."""
    model = load_model(model_path, device)
    for name, (w, a, b) in inits.items():
        set_module(model, name, LoraLinear(w.float(), a, b, scaling).to(device))
    ppl_init, tokens = sliding_perplexity(model, eval_ids, device, seq=args.eval_seq, stride=args.eval_stride)
    t = time.time()
    model.train()
    losses = finetune(model, train_rows, args, device)
    model.eval()
    ppl_after, _ = sliding_perplexity(model, eval_ids, device, seq=args.eval_seq, stride=args.eval_stride)
    log(f"{row:22s} init {ppl_init:9.3f}  fine-tuned {ppl_after:9.3f}  (last loss {losses[-1]:.4f}, {time.time() - t:.1f} s)")
    return {"ppl_init": ppl_init, "ppl_finetuned": ppl_after, "eval_tokens": tokens, "first_loss": losses[0],
            "last_loss": losses[-1], "loss_every_10": losses[::10]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--out", required=True)
    ap.add_argument("--finetune", default=os.path.join(DATA, "finetune.txt"))
    ap.add_argument("--eval", default=os.path.join(DATA, "eval.txt"))
    ap.add_argument("--engine-runs", default=None)
    ap.add_argument("--bits", default="2,3,4")
    ap.add_argument("--ranks", default="16,64")
    ap.add_argument("--methods", default="qlora,loftq1,loftq5,loftq5-last,cloq,cloq-plain")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--eval-seq", type=int, default=512)
    ap.add_argument("--eval-stride", type=int, default=256)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--calib-tokens", type=int, default=4096)
    ap.add_argument("--damp", type=float, default=0.01)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    enc = lambda path: torch.tensor(tok.encode(open(path, encoding="utf-8").read(), add_special_tokens=False).ids, dtype=torch.int32)  # noqa: E731
    ft_ids, eval_ids = enc(args.finetune), enc(args.eval)
    train_rows = packed_rows(ft_ids, args.seq_len)
    log(f"fine-tune split {len(ft_ids)} tokens ({len(train_rows)} rows of {args.seq_len}), eval split {len(eval_ids)} tokens")

    base = load_model(args.model, device)
    weights = {name: mod.weight.detach().double() for name, mod in target_modules(base)}
    assert len(weights) == 7 * base.config.num_hidden_layers, f"{len(weights)} target matrices"
    results = {"config": {k: v for k, v in vars(args).items()}, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "rows": {}}
    ppl_fp, n_tok = sliding_perplexity(base, eval_ids, device, seq=args.eval_seq, stride=args.eval_stride)
    results["rows"]["fp"] = {"ppl_init": ppl_fp, "ppl_finetuned": None, "eval_tokens": n_tok}
    log(f"full precision: eval perplexity {ppl_fp:.3f} over {n_tok} tokens")

    methods = args.methods.split(",")
    chol = {}
    if any(m.startswith("cloq") for m in methods):
        grams, counts = input_grams(base, ft_ids[:args.calib_tokens], device, args.seq_len)
        for name in weights:
            h = grams[name] / counts[name]
            h = h + args.damp * h.diagonal().mean() * torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
            chol[name] = torch.linalg.cholesky(h)
        log(f"calibration: {counts[next(iter(counts))]} tokens, H of {len(chol)} matrices (λ = {args.damp})")
    del base

    gen = torch.Generator().manual_seed(args.seed)
    for rank in [int(r) for r in args.ranks.split(",")]:
        inits = {n: (w, kaiming_a(rank, w.shape[1], gen, device), torch.zeros(w.shape[0], rank, dtype=w.dtype, device=device)) for n, w in weights.items()}
        results["rows"][f"lora-r{rank}"] = run_row(args, args.model, device, f"lora-r{rank}", inits, 1.0, eval_ids, train_rows)
        for bits in [int(b) for b in args.bits.split(",")]:
            levels = nf_levels(bits).to(device)
            per_method = {m: {} for m in methods}
            errors = {m: {} for m in methods}
            for name, w in weights.items():
                q0 = quantize(w, levels)
                err_q = ((w - q0).norm() / w.norm()).item()
                if "qlora" in methods:
                    a = kaiming_a(rank, w.shape[1], gen, device)
                    per_method["qlora"][name] = (q0, a, torch.zeros(w.shape[0], rank, dtype=w.dtype, device=device))
                    errors["qlora"][name] = {"err_q": err_q, "err_init": err_q}
                runs = {}  # T = 5's steps serve both its best and its last step
                for m, iters in (("loftq1", 1), ("loftq5", args.iters), ("loftq5-last", args.iters)):
                    if m not in methods:
                        continue
                    steps = runs[iters] = runs.get(iters) or loftq(w, levels, rank, 1.0, iters)
                    pick = len(steps) - 1 if m.endswith("-last") else min(range(len(steps)), key=lambda i: steps[i][3])
                    q, b, a, err = steps[pick]
                    per_method[m][name] = (q, a, b)
                    errors[m][name] = {"err_q": err_q, "err_init": err, "step": pick + 1, "steps": [s[3] for s in steps]}
                for m, rounding in (("cloq", "gptq"), ("cloq-plain", "plain")):
                    if m not in methods:
                        continue
                    steps = cloq(w, chol[name], levels, rank, 1.0, args.iters, rounding)
                    pick = min(range(len(steps)), key=lambda i: steps[i][4])
                    q, b, a, err, werr = steps[pick]
                    w_err_q = (((w - q0) @ chol[name]).norm() / (w @ chol[name]).norm()).item()
                    per_method[m][name] = (q, a, b)
                    errors[m][name] = {"err_q": err_q, "err_init": err, "weighted_err_q": w_err_q, "weighted_err_init": werr,
                                       "step": pick + 1, "weighted_steps": [s[4] for s in steps]}
            for m in methods:
                row = f"{m}-b{bits}-r{rank}"
                for name, (q, a, b) in per_method[m].items():
                    assert q.shape == weights[name].shape and a.shape == (rank, q.shape[1]) and b.shape == (q.shape[0], rank), name
                mean = lambda key: sum(e[key] for e in errors[m].values()) / len(errors[m])  # noqa: E731
                entry = run_row(args, args.model, device, row, per_method[m], 1.0, eval_ids, train_rows)
                entry.update({"method": m, "bits": bits, "rank": rank, "mean_err_q": mean("err_q"), "mean_err_init": mean("err_init")})
                if m.startswith("cloq"):
                    entry.update({"mean_weighted_err_q": mean("weighted_err_q"), "mean_weighted_err_init": mean("weighted_err_init")})
                entry["vs_engine"] = compare_errors(row, errors[m], engine_layers(args.engine_runs, row))
                entry["layers"] = errors[m]
                results["rows"][row] = entry
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
    results["seconds"] = time.time() - T0
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
