"""Hugging Face transformers + PEFT LoRA fine-tuning steps: the training baseline of
scripts/device/gpu-forward.sh.

  python3 scripts/device/peft_train.py MODEL_DIR [--seq 2048] [--batch 1] [--repeat 3]

bf16 model (sdpa attention), LoRA r = 16, alpha 32, on all seven linear modules, no dropout,
AdamW (lr 1e-4) over the adapter; each step: forward with labels, backward, optimizer step,
zero_grad. Prints tokens/s (median of --repeat steps after one warm-up step) and the peak GPU
memory (torch.cuda.max_memory_allocated, weights included), one JSON line.
"""
import json
import sys
import time

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM


def arg(name, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def main():
    model_dir = sys.argv[1]
    seq, batch, repeat = arg("--seq", 2048), arg("--batch", 1), arg("--repeat", 3)
    torch.cuda.reset_peak_memory_stats()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="sdpa", device_map="cuda")
    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(model, config)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    gen = torch.Generator(device="cuda").manual_seed(1)
    vocab = model.config.vocab_size
    times, losses = [], []
    for step in range(repeat + 1):
        ids = torch.randint(0, vocab, (batch, seq), device="cuda", generator=gen)
        torch.cuda.synchronize()
        t = time.time()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        torch.cuda.synchronize()
        if step > 0:
            times.append(time.time() - t)
    seconds = sorted(times)[len(times) // 2]
    print(json.dumps({
        "model": model_dir, "baseline": "transformers + PEFT LoRA r16 all-linear, bf16, AdamW", "batch": batch, "seq": seq,
        "tokens_per_s": batch * seq / seconds, "seconds": seconds, "times": times, "losses": losses,
        "peak_bytes": torch.cuda.max_memory_allocated(), "adapter_params": sum(p.numel() for p in trainable),
        "adapter_dtype": str(trainable[0].dtype), "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
    }))


if __name__ == "__main__":
    main()
