"""LoRA gradients of transformers + PEFT autograd against ours, for scripts/device/gpu-train.sh.

  python3 scripts/device/peft_grads.py make MODEL_DIR ADAPTER_DIR [--rank 16] [--seed 1]
  python3 scripts/device/peft_grads.py check MODEL_DIR ADAPTER_DIR --dump DIR

make: a PEFT LoRA adapter (rank r, alpha 2r, all seven linear modules) with random A and B
(N(0, 0.02²) each, so the branch is not zero and every factor has a gradient), saved with
save_pretrained: the adapter our side reads (bench/train-gpu.bench.ts --adapter).

check: DIR holds what `bench-train-gpu.cjs --dump-grads` wrote: ids.bin ([batch, seq + 1]
int32 rows; inputs row[:-1], targets row[1:]), grads.json (the tensors: PEFT name, shape,
offset) and grads-<precision>.bin (float32). The reference is PyTorch autograd of the mean
next-token cross-entropy through the fp32 model (eager attention, TF32 off) with the adapter;
HF's own bf16 (sdpa, bf16 weights, fp32 adapter) is measured against it as the yardstick.
Per tensor: max|Δ| / max|ref| and ‖Δ‖/‖ref‖. PASS: fp32 every tensor's max-relative ≤ 1e-4;
bf16 the Frobenius-relative error over all factors together ≤ 2 × HF bf16's own (and each
tensor's ≤ 2 × HF bf16's worst tensor). Prints one JSON line.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def arg(name, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def make(model_dir, adapter_dir):
    rank, seed = arg("--rank", 16), arg("--seed", 1)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=MODULES, init_lora_weights=False))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    model.save_pretrained(adapter_dir)
    print(json.dumps({"adapter": adapter_dir, "rank": rank, "tensors": sum(1 for n, _ in model.named_parameters() if "lora_" in n)}))


def reference_grads(model_dir, adapter_dir, ids, dtype):
    attn = "eager" if dtype == torch.float32 else "sdpa"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation=attn, device_map="cuda")
    model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=True)
    x = torch.from_numpy(ids).long().cuda()
    logits = model(input_ids=x[:, :-1]).logits.float()
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
    loss.backward()
    grads = {}
    for name, p in model.named_parameters():
        if p.requires_grad and p.grad is not None:
            grads[name.replace(".default", "")] = p.grad.detach().float().cpu().numpy()
    del model
    torch.cuda.empty_cache()
    return loss.item(), grads


def errors(ours, ref):
    d = ours.astype(np.float64) - ref.astype(np.float64)
    return float(np.abs(d).max() / max(np.abs(ref).max(), 1e-30)), float(np.linalg.norm(d) / max(np.linalg.norm(ref), 1e-30))


def check(model_dir, adapter_dir, dump):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    index = json.load(open(os.path.join(dump, "grads.json")))
    batch, seq = index["batch"], index["seq"]
    ids = np.fromfile(os.path.join(dump, "ids.bin"), dtype=np.int32).reshape(batch, seq + 1)
    ref_loss, ref = reference_grads(model_dir, adapter_dir, ids, torch.float32)
    hf_loss, hf = reference_grads(model_dir, adapter_dir, ids, torch.bfloat16)
    out = {"batch": batch, "seq": seq, "tensors": len(index["tensors"]), "loss_ref_fp32": ref_loss, "loss_hf_bf16": hf_loss, "losses_ours": index["losses"]}

    def over(grads_of):
        per, num, den = [], 0.0, 0.0
        for t in index["tensors"]:
            r = ref[t["name"]]
            g = grads_of(t).reshape(r.shape)
            per.append(errors(g, r))
            num += float(np.sum((g.astype(np.float64) - r) ** 2))
            den += float(np.sum(r.astype(np.float64) ** 2))
        return per, (num / den) ** 0.5

    hf_per, hf_all = over(lambda t: hf[t["name"]])
    out["hf_bf16"] = {"max_rel_worst": max(p[0] for p in hf_per), "frob_worst": max(p[1] for p in hf_per), "frob_all": hf_all}
    ok = True
    for precision in ("fp32", "bf16"):
        path = os.path.join(dump, f"grads-{precision}.bin")
        if not os.path.exists(path):
            continue
        flat = np.fromfile(path, dtype=np.float32)
        per, frob_all = over(lambda t: flat[t["offset"]:t["offset"] + int(np.prod(t["shape"]))])
        row = {"max_rel_worst": max(p[0] for p in per), "frob_worst": max(p[1] for p in per), "frob_all": frob_all,
               "loss_rel": abs(index["losses"][precision] - ref_loss) / ref_loss}
        if precision == "fp32":
            row["pass"] = row["max_rel_worst"] <= 1e-4
        else:
            row["pass"] = frob_all <= 2 * hf_all and row["frob_worst"] <= 2 * out["hf_bf16"]["frob_worst"]
        ok = ok and row["pass"]
        out[f"ours_{precision}"] = row
    out["pass"] = ok
    print(json.dumps(out))


def main():
    cmd, model_dir, adapter_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "make":
        make(model_dir, adapter_dir)
    elif cmd == "check":
        check(model_dir, adapter_dir, arg("--dump", ""))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
