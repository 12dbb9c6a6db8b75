"""A plain PyTorch training loop over motlab_torch.py's model, held against MoTLab's own trainer.

It reads a MoTLab run config (config.json, snake_case) and MoTLab's token store (the folder of train.bin and val.bin
MoTLab writes under $MOTLAB_CACHE/tokens/), and trains what MoTLab trains: the same model shape, the same batches (MoTLab's
stateless SplitMix64 offsets of (seed, step, row) into the same train split), the same held-out batches, the same
warmup + cosine schedule, AdamW with weight decay on the >= 2-D weights, global-norm clipping, bf16 autocast on
CUDA. What it does not share is MoTLab's code: the model is motlab_torch's, the optimizer, clipping, loss and
attention are PyTorch's, and the weights start from this file's own draw of model.init (gpt2 or paper), unless
--weights starts it from a MoTLab checkpoint's or --motlab-init draws MoTLab's own initial weights.

    python tests/benchmarks/pytorch_train.py --config RUN/config.json --tokens STORE --out DIR [--device cuda]

For A/B tests against MoTLab (docs/training-parity.md), flags put one piece of MoTLab's arithmetic into the loop:
--motlab-init (MoTLab's draw of the weights, bit for bit on the same libtorch; --check-init CHECKPOINT prints how far
the drawn weights are from a MoTLab checkpoint's), --bf16-logits (MoTLab's fused head + cross-entropy), --fp32-router
(MoT's controller logits in fp32); --no-init-outliers drops trunc_normal_'s rare -2*scale weights from the loop's own draw.

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
from motlab_torch import MixtureOfTokens, MoTLabGPT, load_file  # noqa: E402

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


def initialise(model, m, generator, outliers=True):
    """model.init, drawn here: gpt2 = N(0, 0.02), residual outputs N(0, 0.02/sqrt(2L)); paper = normal with
    std sqrt(scale/fan_in) truncated at +-2*scale, embeddings with fan_in 1 (a tied one as the head, fan_in d).
    LayerNorms start at (1, 0)."""
    scheme, scale, layers = m.get("init", "gpt2"), m.get("init_scale", 1.0), m["layers"]
    spare = torch.Generator().manual_seed(generator.initial_seed() + 1)      # redraws leave the main draw as it is
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
                # trunc_normal_ draws u ~ U[2*cdf(a)-1, 2*cdf(b)-1) in fp32 and returns erfinv(u): where the bounds are many
                # sigmas out, u = -1 comes up once in 2^24 draws, erfinv(-1) = -inf, clamped to the lower bound (-2*scale,
                # 32 sigma for fan_in 256): a few such weights in MoT's experts. Without them: redrawn inside 6 sigma.
                far = p.abs() > 6 * std
                if not outliers and 2 * scale > 6 * std and far.any():
                    redraw = torch.empty(int(far.sum()), dtype=p.dtype)
                    torch.nn.init.trunc_normal_(redraw, 0.0, std, -6 * std, 6 * std, generator=spare)
                    p[far] = redraw
            else:
                p.normal_(0.0, 0.02 / math.sqrt(2 * layers) if residual else 0.02, generator=generator)



def motlab_initialise(model, m, seed):
    """model.init drawn as MoTLab draws it: the same CPU generator calls in the same order after manual_seed(train.seed)
    (the two default embedding draws, then per block the FFN and the attention, then the embeddings and the head;
    truncation by redrawing the whole tensor and keeping the new values where the old fell outside). On the same
    libtorch, as on a GPU host where MoTLab runs on PyTorch's libtorch, the weights are MoTLab's own bit for bit."""
    scheme, scale, layers, d = m.get("init", "gpt2"), m.get("init_scale", 1.0), m["layers"], m["d_model"]
    tied = m.get("tied_head", True)
    torch.manual_seed(seed)

    def fill(p, fan_in, residual=False):
        if scheme == "paper":
            std, bound = math.sqrt(scale / fan_in), 2 * scale
            p.normal_(0.0, std)
            outside = p.abs().gt(bound)
            while outside.any().item():
                p.copy_(torch.where(outside, torch.randn_like(p).mul_(std), p))
                outside = p.abs().gt(bound)
        else:
            p.normal_(0.0, 0.02 / math.sqrt(2 * layers) if residual else 0.02)

    with torch.no_grad():
        model.wte.weight.normal_()                                            # the embedding modules' own N(0, 1) draws
        model.wpe.weight.normal_()
        for block in model.blocks:
            f = block.ffn
            if hasattr(f, "controller"):                                       # MoT: controller, then the experts
                fill(f.controller, d)
                fill(f.experts.w1, d)
                fill(f.experts.w2, f.experts.w1.shape[2], residual=True)
            else:
                fill(f.w1, d)
                fill(f.w2, f.w1.shape[1], residual=True)
            fill(block.attn.qkv, d)
            fill(block.attn.proj, d, residual=True)
        fill(model.wte.weight, d if tied else 1)
        fill(model.wpe.weight, 1)
        if model.head is not None:
            fill(model.head, d)


def hidden(model, idx):
    """The final hidden states (B, T, d), before the head."""
    x = model.wte(idx) + model.wpe(torch.arange(idx.shape[1], device=idx.device))
    for block in model.blocks:
        x = block(x)
    return model.lnF(x)


def motlab_ce_parts(x, weight, targets):
    """MoTLab's LinearCrossEntropy arithmetic (vocabularies up to ~4M rows of logits: one chunk): bf16 logits, their
    softmax stored in bf16, the log-sum-exp read back from the most likely token's bf16 probability, and the logits'
    gradient (softmax - onehot) formed in bf16. Returns the summed loss, dx and dW (both summed, unscaled) and z."""
    n, d = x.shape
    vocab = weight.shape[0]
    padded = (vocab + 63) // 64 * 64
    w = weight.to(torch.bfloat16)
    if padded > vocab:
        w = torch.cat([w, w.new_zeros(padded - vocab, d)])
    xc = x.to(torch.bfloat16)
    t = targets.unsqueeze(1)
    z = xc @ w.t()                                                             # (n, Vp) bf16
    if padded > vocab:
        z[:, vocab:] = float("-inf")
    z_max, arg_max = z.max(1, keepdim=True)
    p = z.softmax(1)                                                           # fp32 inside, stored bf16
    lse = z_max.float() - p.gather(1, arg_max).float().log()
    nll = (lse - z.gather(1, t).float()).sum()
    return nll, p, w, xc, t, z, vocab


class MoTLabLinearCrossEntropy(torch.autograd.Function):
    """The head and mean cross-entropy as MoTLab computes them (Training/Model/LinearCrossEntropy.cs)."""

    @staticmethod
    def forward(ctx, x, weight, targets):
        nll, p, w, xc, t, _, vocab = motlab_ce_parts(x, weight, targets)
        n = x.shape[0]
        p.scatter_add_(1, t, torch.full((n, 1), -1.0, dtype=p.dtype, device=p.device))
        dx = (p @ w).mul_(1.0 / n).to(x.dtype)                                 # bf16 product, as MoTLab
        dw = torch.zeros(p.shape[1], x.shape[1], dtype=torch.float32, device=x.device).add_(p.t() @ xc)
        ctx.save_for_backward(dx, dw[:vocab].mul_(1.0 / n).to(weight.dtype))
        return nll / n

    @staticmethod
    def backward(ctx, grad):
        dx, dw = ctx.saved_tensors
        return dx * grad, dw * grad, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="a MoTLab config.json")
    ap.add_argument("--tokens", required=True, help="MoTLab's token store for the config's corpus and tokenizer (the folder of train.bin, val.bin and manifest.json)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--weights", help="start from this MoTLab checkpoint folder's weights instead of drawing them")
    ap.add_argument("--steps", type=int, help="stop after this many steps (the schedule still follows the config)")
    ap.add_argument("--seed", type=int, help="train.seed instead of the config's (batches and the weights' draw)")
    ap.add_argument("--motlab-init", action="store_true",
                    help="draw model.init as MoTLab does (its generator calls, in its order): MoTLab's own initial weights")
    ap.add_argument("--bf16-logits", action="store_true",
                    help="head + loss with MoTLab's arithmetic: bf16 softmax, (softmax - onehot) in bf16 (eval_loss_fp32 "
                         "also logs the fp32 cross-entropy of the same logits)")
    ap.add_argument("--check-init", metavar="CHECKPOINT",
                    help="print the largest |difference| between the drawn weights and a MoTLab checkpoint's, and exit")
    ap.add_argument("--no-init-outliers", action="store_true",
                    help="this file's own draw without trunc_normal_'s rare -2*scale values (u = -1: erfinv = -inf, clamped)")
    ap.add_argument("--fp32-router", action="store_true", help="MoT's controller logits in fp32, as MoTLab computes them")
    args = ap.parse_args()

    with open(args.config) as f:
        config = json.load(f)
    if args.seed is not None:
        config["train"]["seed"] = args.seed
    m, t, data = config["model"], config["train"], config["data"]
    seq, rows, seed = m["seq_len"], t["batch_size"], t.get("seed", 0)
    device = torch.device(args.device)
    torch.manual_seed(seed)

    manifest = json.load(open(os.path.join(args.tokens, "manifest.json")))
    width = np.uint32 if manifest["token_type"] == "uint32" else np.uint16
    train, val = (torch.from_numpy(np.fromfile(os.path.join(args.tokens, f), dtype=width).astype(np.int32)) for f in ("train.bin", "val.bin"))

    model = MoTLabGPT(m, expert_shapes(m))
    if args.weights:
        model.load_state_dict(load_file(os.path.join(args.weights, "model.safetensors")), strict=True)
    elif args.motlab_init:
        motlab_initialise(model, m, seed)
    else:
        initialise(model, m, torch.Generator().manual_seed(seed), outliers=not args.no_init_outliers)
    if args.check_init:
        stored = load_file(os.path.join(args.check_init, "model.safetensors"))
        diffs = {k: (v - stored[k].float()).abs().max().item() for k, v in model.state_dict().items()}
        worst = max(diffs, key=diffs.get)
        print(json.dumps({"checkpoint": args.check_init, "max_abs_diff": diffs[worst], "tensor": worst}))
        return
    model.to(device)
    MixtureOfTokens.fp32_router = args.fp32_router

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": t.get("weight_decay", 0.1)}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=t["learning_rate"], betas=(t.get("beta1", 0.9), t.get("beta2", 0.95)), eps=1e-8,
                                  fused=device.type == "cuda")
    bf16 = t.get("precision", "auto") == "bf16" or (t.get("precision", "auto") == "auto" and device.type == "cuda")

    head = lambda: model.wte.weight if model.head is None else model.head      # noqa: E731

    def loss_of(x, y):
        if args.bf16_logits:
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                h = hidden(model, x)
            return MoTLabLinearCrossEntropy.apply(h.reshape(-1, h.shape[-1]).float(), head(), y.reshape(-1))
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))

    def eval_losses(x, y):
        """The loss as trained (MoTLab's formula under --bf16-logits), and the fp32 cross-entropy of the same bf16 logits."""
        if not args.bf16_logits:
            loss = loss_of(x, y).item()
            return loss, loss
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            h = hidden(model, x)
        nll, _, _, _, _, z, vocab = motlab_ce_parts(h.reshape(-1, h.shape[-1]).float(), head(), y.reshape(-1))
        return nll.item() / z.shape[0], F.cross_entropy(z[:, :vocab].float(), y.reshape(-1)).item()

    def evaluate():
        model.eval()
        with torch.no_grad():
            pairs = [eval_losses(*batch(val, seed, -1 - j, rows, seq, device)) for j in range(t.get("eval_batches", 8))]
        model.train()
        return sum(a for a, _ in pairs) / len(pairs), sum(b for _, b in pairs) / len(pairs)

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
                record["eval_loss"], fp32 = evaluate()
                if args.bf16_logits:
                    record["eval_loss_fp32"] = fp32
            out.write(json.dumps(record) + "\n")
            out.flush()
            last_step, last_time = done, time.time()
            if evaluated:
                print(f"step {done}/{total} loss {record['train_loss']:.4f} eval {record['eval_loss']:.4f}", flush=True)
    out.close()


if __name__ == "__main__":
    main()
