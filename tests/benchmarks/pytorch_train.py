"""A plain PyTorch training loop over motlab_torch.py's model, held against MoTLab's own trainer.

It reads a MoTLab run config (config.json, snake_case) and MoTLab's token cache (the flat uint16 file MoTLab writes
under $MOTLAB_CACHE/tokens/), and trains what MoTLab trains: the same model shape, the same batches (MoTLab's
stateless SplitMix64 offsets of (seed, step, row) into the same train split), the same held-out batches, the same
warmup + cosine schedule, AdamW with weight decay on the >= 2-D weights, global-norm clipping, bf16 autocast on
CUDA. What it does not share is MoTLab's code: the model is motlab_torch's, the optimizer, clipping, loss and
attention are PyTorch's, and the weights start from this file's own draw of model.init (gpt2 or paper), unless
--weights starts it from a MoTLab checkpoint's.

    python tests/benchmarks/pytorch_train.py --config RUN/config.json --tokens CACHE.u16 --out DIR [--device cuda]

DIR gets metrics.jsonl in MoTLab's format (step, tokens, elapsed_s, time, train_loss, lr, grad_norm, tokens_per_s,
eval_loss), so `MoTLab.Training plot` and the dashboard's charts read it as they read a MoTLab run.
Dense and MoT models (the FFNs without auxiliary losses).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from motlab_torch import MoTLabGPT, load_file  # noqa: E402

MASK = (1 << 64) - 1


def mix(a, b, c):
    """MoTLab's SplitMix64 over (seed, step, row), in 64-bit unsigned arithmetic."""
    z = ((a * 0x9E3779B97F4A7C15) & MASK) ^ (((b + 0x632BE59BD9B4E019) & MASK) * 0xBF58476D1CE4E5B9 & MASK) \
        ^ (((c + 1) & MASK) * 0x94D049BB133111EB & MASK)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def batch(source, seed, step, rows, seq, device):
    """Rows of `seq` inputs and their next tokens, at MoTLab's offsets (eval batch j is step -1-j)."""
    span = len(source) - seq
    starts = [mix(seed & MASK, step & MASK, r) % span for r in range(rows)]
    window = torch.stack([source[s: s + seq + 1] for s in starts])           # (B, T+1)
    window = window.to(device, non_blocking=True).long()
    return window[:, :-1], window[:, 1:]


def lr_at(step, total, peak, warmup_fraction, min_ratio):
    warmup = round(total * warmup_fraction)                                   # banker's rounding, as .NET's Math.Round
    if step < warmup:
        return peak * (step + 1) / warmup
    decay = max(1, total - 1 - warmup)
    progress = min(max((step - warmup) / decay, 0.0), 1.0)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def evaluates_at(step, t):
    early = t.get("eval_early_every", 0)
    return step % t["eval_every"] == 0 or step == t["steps"] or (early > 0 and step <= t.get("eval_early_until", 0) and step % early == 0)


def expert_shapes(m):
    """The parameter shapes MoTLab builds for this model config (dense and MoT)."""
    d, mult, layers, f = m["d_model"], m.get("dense_multiplier", 4), m["layers"], m.get("ffn", {})
    kind = f.get("kind", "dense")
    shapes = {}
    sparse = set()
    if kind != "dense":
        if kind != "mot":
            sys.exit(f"pytorch_train.py trains dense and MoT models; this config's FFN is {kind}")
        sparse = set(f.get("sparse_blocks") or range(layers // 2, layers))
    for i in range(layers):
        if i in sparse:
            granularity = max(1, f.get("granularity", 1))
            experts = f["experts"] * granularity
            width = f.get("expert_width", 0)
            hidden = max(1, width // granularity) if width > 0 else max(1, mult * d * f["group_size"] // experts)
            shapes[f"blocks.{i}.ffn.experts.w1"] = (experts, d, hidden)
        else:
            shapes[f"blocks.{i}.ffn.w1"] = (d, mult * d)
    return shapes


def initialise(model, m, generator):
    """model.init, drawn here: gpt2 = N(0, 0.02), residual outputs N(0, 0.02/sqrt(2L)); paper = normal with
    std sqrt(scale/fan_in) truncated at +-2*scale, embeddings with fan_in 1 (a tied one as the head, fan_in d).
    LayerNorms start at (1, 0)."""
    scheme, scale, layers = m.get("init", "gpt2"), m.get("init_scale", 1.0), m["layers"]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() < 2:
                continue
            residual = name.endswith(("attn.proj", "ffn.w2", "experts.w2"))
            if name == "wte.weight" and m.get("tied_head", True):
                fan_in = p.shape[1]                                            # the head's weight too: drawn as the head
            elif name in ("wte.weight", "wpe.weight"):
                fan_in = 1
            elif p.dim() == 3:
                fan_in = p.shape[1]                                            # experts: (E, in, out)
            elif name.endswith(("attn.qkv", "attn.proj", "head")):
                fan_in = p.shape[1]                                            # (out, in)
            else:
                fan_in = p.shape[0]                                            # (in, out): w1, w2, controller
            if scheme == "paper":
                std = math.sqrt(scale / fan_in)
                torch.nn.init.trunc_normal_(p, 0.0, std, -2 * scale, 2 * scale, generator=generator)
            else:
                p.normal_(0.0, 0.02 / math.sqrt(2 * layers) if residual else 0.02, generator=generator)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="a MoTLab config.json")
    ap.add_argument("--tokens", required=True, help="MoTLab's token cache for the config's corpus and tokenizer (.u16)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--weights", help="start from this MoTLab checkpoint folder's weights instead of drawing them")
    ap.add_argument("--steps", type=int, help="stop after this many steps (the schedule still follows the config)")
    ap.add_argument("--seed", type=int, help="train.seed instead of the config's (batches and the weights' draw)")
    args = ap.parse_args()

    with open(args.config) as f:
        config = json.load(f)
    if args.seed is not None:
        config["train"]["seed"] = args.seed
    m, t, data = config["model"], config["train"], config["data"]
    seq, rows, seed = m["seq_len"], t["batch_size"], t.get("seed", 0)
    device = torch.device(args.device)
    torch.manual_seed(seed)

    tokens = torch.from_numpy(np.fromfile(args.tokens, dtype=np.uint16).astype(np.int32))
    val_count = int(max(seq + 1, len(tokens) * data.get("val_fraction", 0.05)))
    train, val = tokens[:-val_count], tokens[-val_count:]

    model = MoTLabGPT(m, expert_shapes(m))
    if args.weights:
        model.load_state_dict(load_file(os.path.join(args.weights, "model.safetensors")), strict=True)
    else:
        initialise(model, m, torch.Generator().manual_seed(seed))
    model.to(device)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": t.get("weight_decay", 0.1)}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=t["learning_rate"], betas=(t.get("beta1", 0.9), t.get("beta2", 0.95)), eps=1e-8,
                                  fused=device.type == "cuda")
    bf16 = t.get("precision", "auto") == "bf16" or (t.get("precision", "auto") == "auto" and device.type == "cuda")

    def loss_of(x, y):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))

    def evaluate():
        model.eval()
        with torch.no_grad():
            losses = [loss_of(*batch(val, seed, -1 - j, rows, seq, device)).item() for j in range(t.get("eval_batches", 8))]
        model.train()
        return sum(losses) / len(losses)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    out = open(os.path.join(args.out, "metrics.jsonl"), "w")
    total, steps = t["steps"], min(t["steps"], args.steps or t["steps"])
    start = last_time = time.time()
    last_step = 0
    model.train()
    for step in range(steps):
        done = step + 1
        lr = lr_at(step, total, t["learning_rate"], t.get("warmup_fraction", 0.01), t.get("min_lr_ratio", 0.1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = batch(train, seed, step, rows, seq, device)
        loss = loss_of(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = t.get("grad_clip", 1.0)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip > 0 else float("inf"))
        optimizer.step()
        evaluated = evaluates_at(done, t)
        if done % t.get("log_every", 10) == 0 or evaluated:
            now = time.time()
            record = {"step": done, "tokens": done * rows * seq, "elapsed_s": now - start, "time": now,
                      "train_loss": loss.item(), "lr": lr, "grad_norm": grad_norm.item(),
                      "tokens_per_s": (done - last_step) * rows * seq / max(now - last_time, 1e-9), "mfu": 0.0, "aux_loss": 0.0}
            if evaluated:
                record["eval_loss"] = evaluate()
            out.write(json.dumps(record) + "\n")
            out.flush()
            last_step, last_time = done, time.time()
            if evaluated:
                print(f"step {done}/{total} loss {record['train_loss']:.4f} eval {record['eval_loss']:.4f}", flush=True)
    out.close()


if __name__ == "__main__":
    main()
