"""A MoTLab model in PyTorch, rebuilt from a checkpoint folder (config.json + model.safetensors).

    from motlab_torch import load
    model = load("runs/my-run/checkpoints/step-00001000")   # eval mode, fp32, CPU
    logits = model(token_ids)                                # (B, T) int64 -> (B, T, V)

The module and parameter names are MoTLab's own (blocks.3.ffn.controller, ...), so the safetensors file
loads with strict=True. MoT needs a batch that is a multiple of its group size (tokens of different
sequences at the same position are mixed); at batch 1 it routes each token to its argmax expert, as
MoTLab's sampler does.

    python tests/benchmarks/motlab_torch.py check CHECKPOINT_DIR [--device cuda] [--dtype bf16]

compares this module with MoTLab's own forward, stored by `MoTLab.Training export --reference B`
in CHECKPOINT_DIR/reference.safetensors, and exits 1 when they differ beyond the tolerance.
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    from safetensors.torch import load_file
    LOADER = "safetensors"
except ImportError:                       # a machine without the package: read the (simple) format directly
    LOADER = "motlab_torch"
    _DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64,
               "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}

    def load_file(path):
        with open(path, "rb") as f:
            data = f.read()
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + n])
        header.pop("__metadata__", None)
        out = {}
        for name, h in header.items():
            begin, end = h["data_offsets"]
            raw = bytearray(data[8 + n + begin: 8 + n + end])
            out[name] = torch.frombuffer(raw, dtype=_DTYPES[h["dtype"]]).reshape(h["shape"]) if raw else \
                torch.empty(h["shape"], dtype=_DTYPES[h["dtype"]])
        return out


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Parameter(torch.empty(3 * d, d))
        self.proj = nn.Parameter(torch.empty(d, d))

    def forward(self, x):                                                     # (B, T, d)
        B, T, d = x.shape
        q, k, v = F.linear(x, self.qkv).view(B, T, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)          # (B, H, T, hd)
        return F.linear(y.transpose(1, 2).reshape(B, T, d), self.proj)


class Dense(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(d, hidden))
        self.w2 = nn.Parameter(torch.empty(hidden, d))

    def forward(self, x):
        return F.relu(x @ self.w1) @ self.w2


class Experts(nn.Module):
    def __init__(self, e, d, hidden):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(e, d, hidden))
        self.w2 = nn.Parameter(torch.empty(e, hidden, d))

    def forward(self, x):                                                     # (E, N, d)
        return torch.bmm(F.relu(torch.bmm(x, self.w1)), self.w2)


class MixtureOfTokens(nn.Module):
    fp32_router = False                   # True: controller logits in fp32 even under autocast (as MoTLab routes)

    def __init__(self, d, e, hidden, ffn):
        super().__init__()
        self.cfg = ffn
        self.controller = nn.Parameter(torch.empty(d, e))
        self.experts = Experts(e, d, hidden)
        if ffn.get("learnable_temperature", False):
            self.logTempMerge = nn.Parameter(torch.tensor(math.log(ffn["temperature"])))
            self.logTempEmit = nn.Parameter(torch.tensor(math.log(ffn["temperature"])))
        else:
            self.logTempMerge = self.logTempEmit = None

    def tempered(self, logits, log_t):
        return logits / self.cfg["temperature"] if log_t is None else logits / log_t.exp()

    def forward(self, x):                                                     # (B, T, d)
        B, T, d = x.shape
        E = self.controller.shape[1]
        g = self.cfg["group_size"] if self.training else (self.cfg.get("eval_group_size") or self.cfg["group_size"])
        discrete = not self.training and self.cfg.get("discrete_eval", False)
        if not self.training and B == 1 and g > 1:                           # no group to mix: argmax expert
            flat = x.reshape(T, d)
            choice = (flat @ self.controller).argmax(1)
            every = self.experts(flat.unsqueeze(0).expand(E, T, d))           # (E, T, d)
            return every.permute(1, 0, 2)[torch.arange(T), choice].reshape(1, T, d)
        xg = x.transpose(0, 1).reshape(T, B // g, g, d)                      # (T, G, g, d) one position, g sequences
        if self.fp32_router:                                                  # the controller logits in fp32, autocast or not
            with torch.autocast(device_type=x.device.type, enabled=False):
                logits = xg.float() @ self.controller.float()                 # (T, G, g, E)
        else:
            logits = xg @ self.controller                                     # (T, G, g, E) bf16 under autocast
        if discrete:
            w = F.one_hot(logits.argmax(2), g).to(x.dtype).permute(0, 1, 3, 2)
        else:
            w = F.softmax(self.tempered(logits, self.logTempMerge), 2)       # over the group
        merged = w.transpose(2, 3) @ xg                                       # (T, G, E, d)
        G = B // g
        y = self.experts(merged.reshape(T * G, E, d).transpose(0, 1)).transpose(0, 1).reshape(T, G, E, d)
        emit = w
        if self.cfg.get("emit_over_experts", False):
            emit = F.softmax(self.tempered(logits, self.logTempEmit), 3)
        elif self.logTempEmit is not None and not discrete:
            emit = F.softmax(self.tempered(logits, self.logTempEmit), 2)
        return (emit @ y).reshape(T, B, d).transpose(0, 1)                    # (B, T, d)


class Routed(nn.Module):
    """A router (d, E) in front of E experts: what token-choice and expert-choice share."""

    def __init__(self, d, e, hidden, ffn):
        super().__init__()
        self.cfg = ffn
        self.router = nn.Parameter(torch.empty(d, e))
        self.experts = Experts(e, d, hidden)


class TokenChoice(Routed):
    def forward(self, x):
        B, T, d = x.shape
        N, E, k = B * T, self.router.shape[1], self.cfg["top_k"]
        C = int(max(1, min(math.floor(self.cfg["capacity_factor"] * N * k / E), N)))
        flat = x.reshape(N, d)
        probs = F.softmax(flat @ self.router, 1)                              # (N, E)
        gate, choice = probs.topk(k, 1)
        if self.cfg.get("straight_through_gate", False):                       # a MoT transition: outputs unscaled
            gate = gate / gate.detach()
        order = choice.t().reshape(k * N)                                     # first choices first
        mask = F.one_hot(order, E)
        position = (mask.cumsum(0) * mask).sum(1) - 1                         # slot within the expert
        kept = position < C
        slot = torch.where(kept, order * C + position, E * C)
        buffer = torch.zeros(E * C + 1, d, dtype=x.dtype, device=x.device).index_copy(0, slot, flat.repeat(k, 1))
        y = self.experts(buffer[: E * C].view(E, C, d)).reshape(E * C, d)
        y = torch.cat([y, torch.zeros(1, d, dtype=y.dtype, device=y.device)])
        weight = (gate.t().reshape(k * N) * kept.to(gate.dtype)).unsqueeze(1)
        return (y[slot] * weight.to(y.dtype)).view(k, N, d).sum(0).view(B, T, d)


class ExpertChoice(Routed):
    def forward(self, x):
        B, T, d = x.shape
        N, E = B * T, self.router.shape[1]
        C = int(min(max(round(self.cfg["capacity"] * N / E), 1), N))        # round half to even, as .NET
        flat = x.reshape(N, d)
        scores = F.softmax(flat @ self.router, 1)                             # (N, E)
        gate, index = scores.t().topk(C, 1)                                   # (E, C) each expert's tokens
        y = self.experts(flat[index.reshape(-1)].view(E, C, d)) * gate.unsqueeze(2).to(x.dtype)
        out = torch.zeros(N, d, dtype=y.dtype, device=y.device).index_add(0, index.reshape(-1), y.reshape(E * C, d))
        return out.view(B, T, d)


class Block(nn.Module):
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.ln2 = nn.LayerNorm(d)
        self.ffn = ffn

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class MoTLabGPT(nn.Module):
    """Pre-norm GPT with learned positions; each block's FFN as its weights say (dense, MoT, token- or expert-choice)."""

    def __init__(self, model_cfg, shapes):
        super().__init__()
        m = model_cfg
        d, kind = m["d_model"], m.get("ffn", {}).get("kind", "dense")
        self.wte = nn.Embedding(m["vocab_size"], d)
        self.wpe = nn.Embedding(m["seq_len"], d)
        blocks = []
        for i in range(m["layers"]):
            p = f"blocks.{i}.ffn."
            if p + "experts.w1" in shapes:
                e, _, hidden = shapes[p + "experts.w1"]
                cls = {"mot": MixtureOfTokens, "token_choice": TokenChoice, "expert_choice": ExpertChoice}[kind]
                ffn = cls(d, e, hidden, m["ffn"])
            else:
                ffn = Dense(d, shapes[p + "w1"][1])
            blocks.append(Block(d, m["heads"], ffn))
        self.blocks = nn.ModuleList(blocks)
        self.lnF = nn.LayerNorm(d)
        self.head = None if m.get("tied_head", True) else nn.Parameter(torch.empty(m["vocab_size"], d))

    def forward(self, idx):                                                   # (B, T) -> (B, T, V)
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return F.linear(self.lnF(x), self.wte.weight if self.head is None else self.head)


def load(checkpoint_dir, device="cpu"):
    """The model of a MoTLab checkpoint folder, weights loaded strictly, in eval mode."""
    with open(os.path.join(checkpoint_dir, "config.json")) as f:
        config = json.load(f)
    state = load_file(os.path.join(checkpoint_dir, "model.safetensors"))
    model = MoTLabGPT(config["model"], {k: tuple(v.shape) for k, v in state.items()})
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def check(args):
    """MoTLab's reference forward against this module's, on the same token ids."""
    ref = load_file(os.path.join(args.checkpoint, "reference.safetensors"))
    model = load(args.checkpoint, args.device)
    ids = ref["input_ids"].to(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    with torch.no_grad(), torch.autocast(device_type=args.device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
        logits = model(ids).float()
    V = logits.shape[-1]
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1), reduction="none").view(ids.shape[0], -1)
    d_logits = (logits[:, -1].cpu() - ref["logits_last"]).abs().max().item()
    d_loss = (loss.cpu() - ref["token_loss"]).abs().max().item()
    mean_loss = ref["token_loss"].mean().item()
    tolerance = {"fp32": (1e-3, 1e-3), "bf16": (0.25, 0.05)}[args.dtype]
    ok = d_logits <= tolerance[0] and d_loss <= tolerance[1]
    print(json.dumps({"checkpoint": args.checkpoint, "loader": LOADER, "device": args.device, "dtype": args.dtype,
                      "batch": list(ids.shape), "mean_token_loss": mean_loss,
                      "max_abs_diff_logits_last": d_logits, "max_abs_diff_token_loss": d_loss,
                      "tolerance": tolerance, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("checkpoint")
    c.add_argument("--device", default="cpu")
    c.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    sys.exit(check(parser.parse_args()))
