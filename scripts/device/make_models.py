"""Synthetic weights for the GPU benchmarks, generated on the GPU machine's local disk.

  python3 scripts/device/make_models.py OUT_DIR [--layers 32] [--matrix-only] [--tinyllama-only]

OUT_DIR/matrix.safetensors   one 4096x11008 bf16 matrix (the size of LLaMA-2-7B's MLP)
OUT_DIR/llama7b/             a LLaMA-2-7B-shaped bf16 model (32 layers, hidden 4096,
                             intermediate 11008, 32 heads, vocab 32000; 224 target matrices,
                             13.5 GB in 5 GB shards) with its config.json
OUT_DIR/tinyllama/           a TinyLlama-1.1B-shaped bf16 model (22 layers, hidden 2048,
                             intermediate 5632, 32 heads over 4 KV heads, vocab 32000)

The values are heavy-tailed like trained weights: a Gaussian bulk, 1% of entries scaled up
4x, and a decaying low-rank part, so quantization error and its spectrum are realistic.
"""
import json
import os
import sys
import time

import torch
from safetensors.torch import save_file

HIDDEN, INTER, LAYERS, VOCAB, HEADS = 4096, 11008, 32, 32000, 32
SHAPES = {
    "llama7b": dict(hidden=4096, inter=11008, layers=32, heads=32, kv=32, vocab=32000, positions=4096),
    "tinyllama": dict(hidden=2048, inter=5632, layers=22, heads=32, kv=4, vocab=32000, positions=2048),
}


def weight(out, inp, gen):
    w = torch.randn(out, inp, device="cuda", generator=gen) * (1.0 / inp**0.5)
    outliers = torch.rand(out, inp, device="cuda", generator=gen) < 0.01
    w = torch.where(outliers, w * 4, w)
    u = torch.randn(out, 8, device="cuda", generator=gen)
    v = torch.randn(8, inp, device="cuda", generator=gen)
    s = torch.exp(-torch.arange(8, device="cuda") / 3.0) * (2.0 / inp**0.5) / 8**0.5
    w = w + (u * s) @ v / inp**0.5 * 4
    return w.to(torch.bfloat16).cpu()


def write_model(model, shape, gen):
    """A bf16 Llama-shaped model with random trained-like weights at `model` (config + shards)."""
    H, I, L, V, NH, KV = shape["hidden"], shape["inter"], shape["layers"], shape["vocab"], shape["heads"], shape["kv"]
    hd = H // NH
    os.makedirs(model, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H, "intermediate_size": I,
        "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": KV, "vocab_size": V,
        "max_position_embeddings": shape["positions"], "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    with open(os.path.join(model, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    shapes = {"q_proj": (H, H), "k_proj": (KV * hd, H), "v_proj": (KV * hd, H), "o_proj": (H, H),
              "gate_proj": (I, H), "up_proj": (I, H), "down_proj": (H, I)}
    parent = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
              "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
    shards, current, size = [], {}, 0
    def flush():
        nonlocal current, size
        if current:
            shards.append(current)
            current, size = {}, 0
    def add(name, t):
        nonlocal size
        if size + t.numel() * 2 > 5e9:
            flush()
        current[name] = t
        size += t.numel() * 2
    add("model.embed_tokens.weight", (torch.randn(V, H) * 0.02).to(torch.bfloat16))
    for l in range(L):
        p = f"model.layers.{l}"
        add(f"{p}.input_layernorm.weight", torch.ones(H, dtype=torch.bfloat16))
        add(f"{p}.post_attention_layernorm.weight", torch.ones(H, dtype=torch.bfloat16))
        for m, (o, i) in shapes.items():
            add(f"{p}.{parent[m]}.{m}.weight", weight(o, i, gen))
    add("model.norm.weight", torch.ones(H, dtype=torch.bfloat16))
    add("lm_head.weight", (torch.randn(V, H) * 0.02).to(torch.bfloat16))
    flush()
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map, total = {}, 0
    for name, shard in zip(names, shards):
        save_file(shard, os.path.join(model, name), metadata={"format": "pt"})
        for k, t in shard.items():
            weight_map[k] = name
            total += t.numel() * 2
    with open(os.path.join(model, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)
    return {"model_bytes": total, "shards": len(shards), "layers": L}


def main():
    out = sys.argv[1]
    layers = int(sys.argv[sys.argv.index("--layers") + 1]) if "--layers" in sys.argv else LAYERS
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator(device="cuda").manual_seed(20261201)
    t0 = time.time()
    save_file({"weight": weight(HIDDEN, INTER, gen)}, os.path.join(out, "matrix.safetensors"), metadata={"format": "pt"})
    if "--matrix-only" in sys.argv:
        print(json.dumps({"models_s": time.time() - t0}))
        return
    shapes = ["tinyllama"] if "--tinyllama-only" in sys.argv else ["llama7b", "tinyllama"]
    info = {}
    for name in shapes:
        shape = dict(SHAPES[name])
        if name == "llama7b":
            shape["layers"] = layers
        info[name] = write_model(os.path.join(out, name), shape, gen)
    os.sync()
    print(json.dumps({"models_s": time.time() - t0, **info}))


if __name__ == "__main__":
    main()
