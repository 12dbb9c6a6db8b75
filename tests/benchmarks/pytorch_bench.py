"""PyTorch-eager reference for MoTLab's `bench`: the same GPT shapes and the same training step
(forward, loss, backward, clip, AdamW) with bf16 autocast, SDPA and fused AdamW, on random tokens.

    python3 tests/benchmarks/pytorch_bench.py --preset medium-mot --steps 20

Prints one JSON line like `MoTLab.Training bench`. Architecture mirrors Training/Model: pre-norm,
learned positions, tied head, bias-free projections, ReLU FFN, fused QKV; MoT as in docs/architecture.md ("Mixture of Tokens").
"""
import argparse, json, math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {"mini": dict(d=256, layers=4, heads=4), "medium": dict(d=512, layers=8, heads=8)}
SPARSE = {
    "dense": None,
    "mot": dict(kind="mot", experts=32, group=32, granularity=1),
    "mot-32e8": dict(kind="mot", experts=32, group=32, granularity=8),
    "moe": dict(kind="token_choice", experts=32, top_k=1, capacity_factor=1.25),
    "ec": dict(kind="expert_choice", experts=32, capacity=1.0),
}


class Experts(nn.Module):
    def __init__(self, e, d, s, out_std):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(e, d, s) * 0.02)
        self.w2 = nn.Parameter(torch.randn(e, s, d) * out_std)

    def forward(self, x):                                    # (E, N, d)
        return torch.bmm(F.relu(torch.bmm(x, self.w1)), self.w2)


class MoT(nn.Module):
    def __init__(self, d, e, g, s, out_std):
        super().__init__()
        self.g = g
        self.controller = nn.Parameter(torch.randn(d, e) * 0.02)
        self.experts = Experts(e, d, s, out_std)

    def forward(self, x):                                    # (B, T, d)
        B, T, d = x.shape
        g, E = self.g, self.controller.shape[1]
        G = B // g
        xg = x.transpose(0, 1).reshape(T, G, g, d)           # (T, G, g, d)
        w = torch.softmax((xg @ self.controller).float(), dim=2)  # (T, G, g, E)
        merged = w.transpose(2, 3).to(xg.dtype) @ xg         # (T, G, E, d)
        y = self.experts(merged.reshape(T * G, E, d).transpose(0, 1))  # (E, T·G, d)
        y = y.transpose(0, 1).reshape(T, G, E, d)
        out = w.to(y.dtype) @ y                              # (T, G, g, d)
        return out.reshape(T, B, d).transpose(0, 1)


class TokenChoice(nn.Module):
    def __init__(self, d, e, k, cf, s, out_std):
        super().__init__()
        self.k, self.cf = k, cf
        self.router = nn.Parameter(torch.randn(d, e) * 0.02)
        self.experts = Experts(e, d, s, out_std)
        self.aux = None

    def forward(self, x):
        B, T, d = x.shape
        N, E, k = B * T, self.router.shape[1], self.k
        C = int(min(math.floor(self.cf * N * k / E), N))
        flat = x.reshape(N, d)
        logits = (flat @ self.router).float()
        probs = torch.softmax(logits, 1)
        gate, choice = probs.topk(k, 1)
        order = choice.t().reshape(k * N)
        mask = F.one_hot(order, E)
        pos = (mask.cumsum(0) * mask).sum(1) - 1
        kept = pos < C
        slot = torch.where(kept, order * C + pos, E * C)
        buf = torch.zeros(E * C + 1, d, dtype=flat.dtype, device=x.device).index_copy(0, slot, flat.repeat(k, 1))
        y = self.experts(buf[: E * C].view(E, C, d)).reshape(E * C, d)
        y = torch.cat([y, y.new_zeros(1, d)], 0)
        wgt = (gate.t().reshape(k * N) * kept).unsqueeze(1)
        out = (y.index_select(0, slot) * wgt.to(y.dtype)).view(k, N, d).sum(0)
        self.aux = 0.01 * E * (probs.mean(0) * mask.float().mean(0)).sum()
        return out.view(B, T, d)


class ExpertChoice(nn.Module):
    def __init__(self, d, e, capacity, s, out_std):
        super().__init__()
        self.capacity = capacity
        self.router = nn.Parameter(torch.randn(d, e) * 0.02)
        self.experts = Experts(e, d, s, out_std)

    def forward(self, x):
        B, T, d = x.shape
        N, E = B * T, self.router.shape[1]
        C = int(min(max(round(self.capacity * N / E), 1), N))
        flat = x.reshape(N, d)
        scores = torch.softmax((flat @ self.router).float(), 1)
        gate, idx = scores.t().topk(C, 1)
        y = self.experts(flat.index_select(0, idx.reshape(-1)).view(E, C, d)) * gate.unsqueeze(2).to(flat.dtype)
        out = torch.zeros(N, d, dtype=y.dtype, device=x.device).index_add(0, idx.reshape(-1), y.reshape(E * C, d))
        return out.view(B, T, d)


class Dense(nn.Module):
    def __init__(self, d, h, out_std):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(d, h) * 0.02)
        self.w2 = nn.Parameter(torch.randn(h, d) * out_std)

    def forward(self, x):
        return F.relu(x @ self.w1) @ self.w2


class Block(nn.Module):
    def __init__(self, d, heads, ffn, out_std):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        nn.init.normal_(self.qkv.weight, std=0.02); nn.init.normal_(self.proj.weight, std=out_std)
        self.ffn = ffn

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, d)
        x = x + self.proj(y)
        return x + self.ffn(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab, seq, d, layers, heads, sparse):
        super().__init__()
        out_std = 0.02 / math.sqrt(2 * layers)
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        nn.init.normal_(self.wte.weight, std=0.02); nn.init.normal_(self.wpe.weight, std=0.02)
        blocks = []
        for i in range(layers):
            if sparse is None or i < layers // 2:
                ffn = Dense(d, 4 * d, out_std)
            else:
                e = sparse["experts"] * sparse.get("granularity", 1)
                if sparse["kind"] == "mot":
                    ffn = MoT(d, e, sparse["group"], 4 * d * sparse["group"] // e, out_std)
                elif sparse["kind"] == "token_choice":
                    ffn = TokenChoice(d, e, sparse["top_k"], sparse["capacity_factor"], 4 * d // sparse["top_k"], out_std)
                else:
                    ffn = ExpertChoice(d, e, sparse["capacity"], int(4 * d / sparse["capacity"]), out_std)
            blocks.append(Block(d, heads, ffn, out_std))
        self.blocks = nn.ModuleList(blocks)
        self.ln_f = nn.LayerNorm(d)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.blocks:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))
        aux = sum(b.ffn.aux for b in self.blocks if getattr(b.ffn, "aux", None) is not None)
        return loss + aux


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="medium-dense")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--omit", default="none", choices=["none", "backward", "clip", "optimizer"],
                    help="leave a stage out to measure its cost (as MoTLab's bench --omit)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (a fused reference, not eager)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after timing, profile 3 steps and print the N kernels with the most GPU time to stderr")
    a = ap.parse_args()
    shape, _, variant = a.preset.partition("-")
    dev = "cuda"
    torch.manual_seed(0)
    model = GPT(a.vocab, a.seq, sparse=SPARSE[variant], **SHAPES[shape]).to(dev)
    fwd = torch.compile(model) if a.compile else model
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), fused=True)
    data = torch.randint(0, a.vocab, (a.steps + a.warmup, a.batch, a.seq + 1), device=dev)

    def step(i):
        x, y = data[i, :, :-1], data[i, :, 1:]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = fwd(x, y)
        opt.zero_grad(set_to_none=True)
        if a.omit == "backward":
            return
        loss.backward()
        if a.omit != "clip":
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        if a.omit != "optimizer":
            opt.step()

    for i in range(a.warmup):
        step(i)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(a.warmup + i)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    tps = a.steps * a.batch * a.seq / dt
    print(json.dumps(dict(preset=a.preset, omitted=None if a.omit == "none" else a.omit,
                          framework="pytorch-compile" if a.compile else "pytorch-eager", torch=torch.__version__, tokens_per_s=tps,
                          step_ms=dt * 1000 / a.steps, params=sum(p.numel() for p in model.parameters()),
                          peak_memory_mib=torch.cuda.max_memory_allocated() / 2**20)))

    if a.profile:
        profile(lambda: step(a.warmup), a.profile)


def profile(step, top):
    """Where a step's GPU time goes: the kernels with the most self time over 3 steps, and their share."""
    from torch.profiler import profile as prof, ProfilerActivity
    with prof(activities=[ProfilerActivity.CUDA]) as p:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
    events = [e for e in p.key_averages() if e.self_device_time_total > 0]
    total = sum(e.self_device_time_total for e in events)
    print(f"GPU time per step {total / 3 / 1000:.1f} ms over {len(events)} kernel kinds", file=sys.stderr)
    for e in sorted(events, key=lambda e: -e.self_device_time_total)[:top]:
        print(f"{e.self_device_time_total / 3 / 1000:8.2f} ms {100 * e.self_device_time_total / total:5.1f} % "
              f"x{e.count // 3:<4d} {e.key[:110]}", file=sys.stderr)


if __name__ == "__main__":
    main()
