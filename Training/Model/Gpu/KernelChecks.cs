using MoTLab.Shared.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace MoTLab.Training.Model.Gpu;

/// <summary>Each fused kernel against the libtorch path it replaces, on random inputs on a CUDA device: the values and
/// the gradients, as the largest absolute difference and the largest absolute value of the reference (`kernels
/// --check`; docs/benchmarks.md shows its output). A check passes when the difference is at most its tolerance times
/// that scale. The cross-entropy and Mixture of Tokens are held against an fp32 reference instead, both paths, and
/// the kernel passes when it is about as close to it as the libtorch path. Every comparison also counts
/// the kernels each side launched: the kernel side must launch some and the libtorch side none, or the two sides
/// compared one path with itself (a precondition that falls back passes every value check).</summary>
public static class KernelChecks
{
    /// <param name="Launches">for a launch count: the kernels the kernel side and the libtorch side launched</param>
    public sealed record Result(string Check, string Quantity, double MaxDiff, double Scale, double Tolerance, (long Kernel, long Libtorch)? Launches = null)
    {
        public bool Passed => Launches is (var kernel, var libtorch) ? kernel > 0 && libtorch == 0 : MaxDiff <= Tolerance * Scale;
        public override string ToString() => Launches is (var kernel, var libtorch)
            ? $"{Check,-34} {Quantity,-22} {kernel,6} on the kernel side, {libtorch} on the libtorch side  {(Passed ? "ok" : "FAILED")}"
            : $"{Check,-34} {Quantity,-22} max|Δ| {MaxDiff,10:G3}  scale {Scale,10:G3}  tolerance {Tolerance,8:G3}  {(Passed ? "ok" : "FAILED")}";
    }

    /// <summary><paramref name="pass"/> on the libtorch paths, then on the kernels, with the kernels each launched.</summary>
    static (T Libtorch, T Kernel, Result Launches) BothPaths<T>(string check, Func<T> pass)
    {
        long before = GpuKernels.Launches;
        var libtorch = GpuKernels.WithoutKernels(pass);
        long middle = GpuKernels.Launches;
        var kernel = pass();
        return (libtorch, kernel, new Result(check, "kernels launched", 0, 0, 0, (GpuKernels.Launches - middle, middle - before)));
    }

    const double Bf16 = 1.0 / 64;    // a few bf16 roundings apart (2⁻⁸ relative each)
    const double Fp32 = 1e-4;        // sums in another order

    /// <param name="models">whole models whose training step is compared too (name, shape)</param>
    public static List<Result> Run(Device device, IEnumerable<(string Name, ModelConfig Model)> models)
    {
        if (device.type != DeviceType.CUDA) throw new ArgumentException($"kernel checks need a CUDA device, not {device}");
        if (!GpuKernels.Enabled(device)) throw new InvalidOperationException($"the fused kernels do not run on {device}: {GpuKernels.Describe(device)}");
        manual_seed(0);
        var results = new List<Result>();
        foreach (var (rows, d, output) in new[] { (8192L, 512L, ScalarType.BFloat16), (8191L, 200L, ScalarType.BFloat16),
                     (4096L, 1024L, ScalarType.BFloat16), (8192L, 512L, ScalarType.Float32), (1000L, 64L, ScalarType.Float32) })
            results.AddRange(LayerNorm(device, rows, d, output));
        results.AddRange(CrossEntropy(device, 20_000, 256, 50_257));
        results.AddRange(CrossEntropy(device, 3_000, 128, 256));
        results.AddRange(Attention(device));
        foreach (var (batch, d, experts, group) in new[] { (64L, 512, 32, 32), (64L, 256, 512, 32), (24L, 200, 40, 8) })
            results.AddRange(SparseLayer(device, batch, d, new FfnConfig { Kind = FfnKind.MoT, Experts = experts, GroupSize = group },
                $"MoT {experts} experts, g {group},"));
        foreach (var k in new[] { 1, 2 })
            results.AddRange(SparseLayer(device, 32, 512, new FfnConfig { Kind = FfnKind.TokenChoice, Experts = 32, TopK = k, CapacityFactor = 1 },
                $"token choice top-{k},"));
        results.AddRange(SparseLayer(device, 32, 512, new FfnConfig { Kind = FfnKind.ExpertChoice, Experts = 32, Capacity = 1 }, "expert choice"));
        foreach (var (name, model) in models) results.AddRange(Model(device, name, model));
        return results;
    }

    static IEnumerable<Result> LayerNorm(Device device, long rows, long d, ScalarType output)
    {
        using var scope = NewDisposeScope();
        var ln = nn.LayerNorm(d).to(device);
        using (no_grad()) { ln.weight!.normal_(1, 0.5); ln.bias!.normal_(0, 0.5); }
        var x = (randn(rows, d, device: device) * 3 + 1).requires_grad_();
        var h = randn(rows, d, device: device).to_type(output).requires_grad_();     // a block's output, in the compute dtype
        var upstream = randn(rows, d, device: device).to_type(output).to_type(ScalarType.Float32);
        var alongStream = randn(rows, d, device: device);
        string normed = $"{rows}×{d} → {(output == ScalarType.BFloat16 ? "bf16" : "fp32")}";
        var tolerance = output == ScalarType.BFloat16 ? Bf16 : Fp32;
        foreach (bool add in new[] { false, true })
        {
            Tensor[] Pass()
            {
                foreach (var t in new[] { x, h, ln.weight!, ln.bias! }) t.grad?.zero_();
                var (sum, y) = add ? FusedLayerNorm.AddApply(ln, x, h, output) : (x, FusedLayerNorm.Apply(ln, x, output));
                var loss = (y.to_type(ScalarType.Float32) * upstream).sum();
                if (add) loss = loss + (sum * alongStream).sum();
                loss.backward();
                return [y.detach().clone(), sum.detach().clone(), x.grad!.clone(), ln.weight!.grad!.clone(), ln.bias!.grad!.clone(),
                        add ? h.grad!.clone() : zeros(1)];
            }
            string name = add ? $"add + layer norm {normed}" : $"layer norm {normed}";
            var (reference, fused, launches) = BothPaths(name, Pass);
            yield return launches;
            yield return Compare(name, "output", fused[0], reference[0], tolerance);
            if (add) yield return Compare(name, "sum", fused[1], reference[1], 0);
            yield return Compare(name, "input gradient", fused[2], reference[2], tolerance);
            if (add) yield return Compare(name, "branch gradient", fused[5], reference[5], tolerance);
            yield return Compare(name, "weight gradient", fused[3], reference[3], Fp32);
            yield return Compare(name, "bias gradient", fused[4], reference[4], Fp32);
        }
    }

    static IEnumerable<Result> CrossEntropy(Device device, long n, long d, long vocab)
    {
        using var scope = NewDisposeScope();
        var x = randn(n, d, device: device).to_type(ScalarType.BFloat16).to_type(ScalarType.Float32).requires_grad_();
        var w = (randn(vocab, d, device: device) * 0.2).to_type(ScalarType.BFloat16).to_type(ScalarType.Float32).requires_grad_();
        var targets = randint(vocab, n, dtype: ScalarType.Int64, device: device);
        Tensor[] Pass(Func<Tensor> loss)
        {
            x.grad?.zero_(); w.grad?.zero_();
            var l = loss();
            l.backward();
            return [l.detach().clone(), x.grad!.clone(), w.grad!.clone()];
        }
        var exact = Pass(() => nn.functional.cross_entropy(x.mm(w.t()), targets));
        Tensor Fused() => LinearCrossEntropy.Loss(x, w, targets, ScalarType.BFloat16, chunkElements: 1L << 28);
        string name = $"cross-entropy {n}×{d}, vocab {vocab:N0}";
        var (libtorch, kernel, launches) = BothPaths(name, () => Pass(Fused));
        yield return launches;
        string[] quantities = ["loss", "input gradient", "head gradient"];
        for (int i = 0; i < 3; i++)
            foreach (var r in HeldToLibtorch(name, quantities[i], kernel[i], libtorch[i], exact[i])) yield return r;
    }

    /// <summary>Both paths' distance from an fp32 reference; the kernel is held to the libtorch path's own distance, with
    /// room for rounding the other way (bf16 results that differ in summation order can differ by more than their
    /// rounding: a ReLU whose input is near 0 opens on one path and not the other).</summary>
    static IEnumerable<Result> HeldToLibtorch(string check, string quantity, Tensor kernel, Tensor libtorch, Tensor exact)
    {
        var off = Compare(check, quantity + " (libtorch)", libtorch, exact, double.PositiveInfinity);
        var mine = Compare(check, quantity + " (kernel)", kernel, exact, 0);
        yield return off;
        yield return mine with { Tolerance = Math.Max(1.5 * off.MaxDiff, 1e-3 * off.Scale) / off.Scale };
    }

    static IEnumerable<Result> Attention(Device device)
    {
        using var scope = NewDisposeScope();
        var attn = new CausalSelfAttention(512, 8, 0, new WeightInit(new ModelConfig()), ScalarType.BFloat16).to(device);
        var x = randn(16, 256, 512, device: device).requires_grad_();
        var upstream = randn(16, 256, 512, device: device);
        Tensor[] Pass()
        {
            x.grad?.zero_(); foreach (var p in attn.parameters()) p.grad?.zero_();
            (attn.forward(x).to_type(ScalarType.Float32) * upstream).sum().backward();
            return [x.grad!.clone(), .. attn.parameters().Select(p => p.grad!.clone())];
        }
        var (reference, fused, launches) = BothPaths("attention 16×256×512, 8 heads", Pass);
        yield return launches;
        yield return Compare("attention 16×256×512, 8 heads", "input gradient", fused[0], reference[0], 0);
        yield return Compare("attention 16×256×512, 8 heads", "QKV weight gradient", fused[1], reference[1], 0);
    }

    /// <summary>A sparse FFN layer on its kernels (MoT's mixing, token and expert choice's routing) and on its libtorch
    /// path (MoT: transposes and batched matmuls; token choice: RowGather; expert choice: index_select and index_add), both in bf16 and
    /// both held against the same layer in fp32: the output and the gradients of the tokens and of every weight.</summary>
    static IEnumerable<Result> SparseLayer(Device device, long batch, int d, FfnConfig ffn, string name)
    {
        using var scope = NewDisposeScope();
        SparseFeedForward Build(ScalarType compute) => SparseFeedForward.Build(
            new ModelConfig { DModel = d, Ffn = ffn }, new WeightInit(new ModelConfig()), compute);
        var layer = Build(ScalarType.BFloat16).to(device);
        var exact = Build(ScalarType.Float32).to(device);
        using (no_grad())
            foreach (var (to, from) in exact.parameters().Zip(layer.parameters())) to.copy_(from);
        var x = randn(batch, 256, d, device: device).requires_grad_();
        var upstream = randn(batch, 256, d, device: device);
        Func<Tensor[]> Pass(SparseFeedForward l) => () =>
        {
            x.grad?.zero_(); foreach (var p in l.parameters()) p.grad?.zero_();
            var y = l.forward(x);
            (y.to_type(ScalarType.Float32) * upstream).sum().backward();
            return [y.detach().clone(), x.grad!.clone(), .. l.parameters().Select(p => p.grad!.clone())];
        };
        name = $"{name} {batch}×256×{d}";
        var fp32 = GpuKernels.WithoutKernels(Pass(exact));
        var (libtorch, kernel, launches) = BothPaths(name, Pass(layer));
        yield return launches;
        string[] quantities = ["output", "input gradient", .. layer.named_parameters().Select(p => p.name + " gradient")];
        for (int i = 0; i < quantities.Length; i++)
            foreach (var r in HeldToLibtorch(name, quantities[i], kernel[i], libtorch[i], fp32[i])) yield return r;
    }

    /// <summary>A whole training step's loss and gradients, at a smaller batch.</summary>
    static IEnumerable<Result> Model(Device device, string name, ModelConfig cfg)
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var model = new Gpt(cfg, ScalarType.BFloat16).to(device);
        var idx = randint(cfg.VocabSize, [32, cfg.SeqLen], dtype: ScalarType.Int64, device: device);
        var targets = randint(cfg.VocabSize, [32, cfg.SeqLen], dtype: ScalarType.Int64, device: device);
        Tensor[] Pass()
        {
            model.zero_grad();
            var (objective, ce, _) = model.Loss(idx, targets);
            objective.backward();
            var norm = stack(model.parameters().Where(p => p.grad is not null).Select(p => p.grad!.norm())).norm();
            return [ce.detach().clone(), norm];
        }
        name = $"{name} step, batch 32";
        var (reference, fused, launches) = BothPaths(name, Pass);
        yield return launches;
        yield return Compare(name, "loss", fused[0], reference[0], 1e-3);
        yield return Compare(name, "gradient norm", fused[1], reference[1], 1e-2);
    }

    static Result Compare(string check, string quantity, Tensor actual, Tensor expected, double tolerance)
    {
        using var a = actual.to_type(ScalarType.Float64);
        using var e = expected.to_type(ScalarType.Float64);
        using var diff = (a - e).abs().max();
        using var scale = e.abs().max();
        return new Result(check, quantity, diff.item<double>(), Math.Max(scale.item<double>(), 1e-30), tolerance);
    }
}
