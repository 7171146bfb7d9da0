"""Re-opens a finished run's files and recomputes ||W - Q - s*B*A||/||W|| in float64.

  python3 scripts/device/verify_run.py RUN_DIR MODEL_DIR

Q comes from quantized.safetensors alone (its packed codes, absmax and the codebook levels in
its metadata), B and A from adapter-init/ (PEFT format), W from the original model. Prints
one JSON line: the largest relative difference from layers.json's err_init and err_q.
"""
import json
import os
import sys

import torch
from safetensors import safe_open


def unpack(packed, bits, count):
    bitmap = ((packed.unsqueeze(-1) >> torch.arange(8, device=packed.device, dtype=torch.uint8)) & 1).reshape(-1)[: count * bits]
    bitmap = bitmap.reshape(count, bits).to(torch.int32)
    return (bitmap << torch.arange(bits, device=packed.device, dtype=torch.int32)).sum(-1)


def main():
    run, model = sys.argv[1], sys.argv[2]
    layers = json.load(open(os.path.join(run, "layers.json")))
    config = json.load(open(os.path.join(run, "adapter-init", "adapter_config.json")))
    r, alpha = config["r"], config["lora_alpha"]
    s = alpha / r ** 0.5 if config.get("use_rslora") else alpha / r
    index_path = os.path.join(model, "model.safetensors.index.json")
    index = json.load(open(index_path))["weight_map"] if os.path.exists(index_path) else None
    qf = safe_open(os.path.join(run, "quantized.safetensors"), "pt", device="cuda")
    meta = qf.metadata()
    matrices, codebooks = json.loads(meta["loftq.matrices"]), json.loads(meta["loftq.codebooks"])
    af = safe_open(os.path.join(run, "adapter-init", "adapter_model.safetensors"), "pt", device="cuda")
    worst_init, worst_q = 0.0, 0.0
    for layer in layers:
        name = layer["name"]
        info = matrices[name]
        shard = os.path.join(model, index[f"{name}.weight"] if index else "model.safetensors")
        with safe_open(shard, "pt", device="cuda") as f:
            w = f.get_tensor(f"{name}.weight").double()
        count = w.numel()
        levels = torch.tensor(codebooks[info["codebook"]], dtype=torch.float32, device="cuda")
        codes = unpack(qf.get_tensor(f"{name}.codes"), info["bits"], count)
        absmax = qf.get_tensor(f"{name}.absmax")
        q = (levels[codes].reshape(-1, info["block_size"]) * absmax.unsqueeze(1)).reshape(w.shape).double()
        a = af.get_tensor(f"base_model.model.{name}.lora_A.weight").double()
        b = af.get_tensor(f"base_model.model.{name}.lora_B.weight").double()
        norm = w.norm()
        err_init = ((w - q - s * (b @ a)).norm() / norm).item()
        err_q = ((w - q).norm() / norm).item() if layer.get("best_step", 1) == 1 or layer["method"] == "qlora" else None
        worst_init = max(worst_init, abs(err_init / layer["err_init"] - 1))
        if err_q is not None:
            worst_q = max(worst_q, abs(err_q / layer["err_q"] - 1))
        del w, q, a, b, codes
    print(json.dumps({"matrices": len(layers), "max_rel_diff_err_init": worst_init, "max_rel_diff_err_q": worst_q}))


if __name__ == "__main__":
    main()
