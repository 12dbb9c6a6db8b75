using System.Diagnostics;
using System.Globalization;
using MoTLab.Training.Model;
using MoTLab.Training.Model.Gpu;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

/// <summary>Builds the CPU launcher of MoTLab's CUDA kernels once (KernelEmulation/: kernels.cu as the training assembly
/// embeds it, compiled as C++ with each block's threads as std::threads) and runs kernels on it. It needs a C++20
/// compiler: $CXX, or g++ (`apt-get install g++`, as .ci/run does).</summary>
public sealed class KernelLauncher : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("motlab-kernels").FullName;
    readonly string launcher;

    public KernelLauncher()
    {
        var here = Path.Combine(AppContext.BaseDirectory, "KernelEmulation");
        var source = Path.Combine(dir, "kernels.cpp");
        // CUDA's dynamic shared memory is declared `extern __shared__` in a kernel; here it is a global of the launcher
        File.WriteAllText(source, GpuKernels.Source().Replace("extern __shared__", "extern"));
        launcher = Path.Combine(dir, "launch");
        var compiler = Environment.GetEnvironmentVariable("CXX") is { Length: > 0 } cxx ? cxx : "g++";
        var (code, output) = Run(compiler, "-std=c++20", "-O1", "-pthread", "-w", $"-I{here}", $"-DKERNELS_SOURCE=\"{source}\"",
            Path.Combine(here, "launch.cpp"), "-o", launcher);
        if (code != 0) throw new InvalidOperationException($"compiling the kernel launcher with {compiler} failed ({code}):\n{output}");
    }

    static (int Code, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"the kernel emulation tests need a C++20 compiler ({file}: {e.Message}); apt-get install g++, or set CXX");
        }
        using (p)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEndAsync();
            // a kernel whose threads miss a barrier would wait for ever on the CPU: fail instead of hanging the suite
            if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(true); throw new TimeoutException($"{file} {string.Join(' ', args)} ran past 3 minutes"); }
            return (p.ExitCode, stdout.GetAwaiter().GetResult() + stderr.GetAwaiter().GetResult());
        }
    }

    /// <summary>Launches <paramref name="kernel"/> with a 1-D grid. Arguments: a CPU tensor (its bytes are the kernel's
    /// buffer, written back after the launch), null (a null pointer), int (32-bit), long (64-bit) or float.</summary>
    public void Launch(string kernel, long grid, int block, params object?[] args)
    {
        var job = new List<string> { $"{kernel} {grid} {block}" };
        var buffers = new List<(Tensor Tensor, string Path)>();
        foreach (var a in args)
            switch (a)
            {
                case Tensor t:
                    var path = Path.Combine(dir, $"buffer{buffers.Count}.bin");
                    File.WriteAllBytes(path, t.bytes.ToArray());
                    buffers.Add((t, path));
                    job.Add($"buffer {path}");
                    break;
                case null: job.Add("null"); break;
                case int i: job.Add($"int {i}"); break;
                case long l: job.Add($"long {l}"); break;
                case float f: job.Add($"float {f.ToString("R", CultureInfo.InvariantCulture)}"); break;
                default: throw new ArgumentException($"kernel argument of type {a.GetType().Name}");
            }
        var jobFile = Path.Combine(dir, "job.txt");
        File.WriteAllLines(jobFile, job);
        var (code, output) = Run(launcher, jobFile);
        if (code != 0) throw new InvalidOperationException($"{kernel} on the CPU launcher failed ({code}): {output}");
        foreach (var (t, path) in buffers) t.bytes = File.ReadAllBytes(path);
    }

    public void Dispose() => Directory.Delete(dir, true);
}

/// <summary>MoTLab's CUDA kernels (kernels.cu) run on the CPU launcher, with the grids their C# callers compute, against
/// libtorch on the CPU in fp64: the MoT and routing kernels within bf16's rounding of the same sums (every input rounded
/// to bf16, each result rounded once), LayerNorm and cross-entropy within their own tolerances. On a GPU `kernels
/// --check` holds them against the libtorch paths.</summary>
public class KernelEmulationTests(KernelLauncher launcher) : IClassFixture<KernelLauncher>
{
    static KernelEmulationTests() => Runtime.TorchRuntime.Initialise();

    static Tensor Bf16Rounded(Tensor t) => t.to_type(ScalarType.BFloat16).to_type(ScalarType.Float64);

    /// <summary>Within one bf16 rounding of the exact sum (2⁻⁸ of it), plus a little for tiny sums.</summary>
    static void AssertRounded(Tensor actual, Tensor exact, string what)
    {
        using var a = actual.to_type(ScalarType.Float64);
        using var bound = exact.abs() * (1.0 / 256) + 1e-6 * exact.abs().max();
        using var excess = ((a - exact).abs() - bound).max();
        Assert.True(excess.item<double>() <= 0, $"{what}: off by {(a - exact).abs().max().item<double>():G3} (more than a bf16 rounding)");
    }

    [Theory]
    [InlineData(5, 7, 16, false)]      // one tile of everything; g not a multiple of 4
    [InlineData(32, 40, 520, true)]    // two expert tiles, two column tiles, the emit's K in two chunks; bf16 tokens
    [InlineData(4, 3, 8, true)]
    public void MoT_merge_emit_and_weight_gradient_equal_their_sums(int g, int experts, int d, bool bf16Tokens)
    {
        const int groups = 2, T = 3;
        long B = groups * g, pairs = groups * T;
        manual_seed(g * 100 + experts);
        var x = randn(B, T, d);
        if (bf16Tokens) x = x.to_type(ScalarType.BFloat16);
        var w = rand(B, T, experts);
        var m = randn(experts, pairs, d).to_type(ScalarType.BFloat16);
        var (xr, wr, mr) = (Bf16Rounded(x).view(groups, g, T, d), Bf16Rounded(w).view(groups, g, T, experts), Bf16Rounded(m).view(experts, groups, T, d));
        int dtype = bf16Tokens ? 1 : 0;

        var merged = empty(experts, pairs, d, dtype: ScalarType.BFloat16);
        launcher.Launch("mot_merge", GpuTokenMixing.MixBlocks(pairs, experts, d), 256, x, dtype, w, merged, T, d, experts, g, groups);
        AssertRounded(merged, einsum("gjte,gjtd->egtd", wr, xr).reshape(experts, pairs, d), "merge");

        foreach (int outBf16 in new[] { 0, 1 })
        {
            var emitted = empty(B, T, d, dtype: outBf16 == 1 ? ScalarType.BFloat16 : ScalarType.Float32);
            launcher.Launch("mot_emit", GpuTokenMixing.MixBlocks(pairs, g, d), 256, m, w, emitted, outBf16, T, d, experts, g, groups);
            var exact = einsum("gjte,egtd->gjtd", wr, mr).reshape(B, T, d);
            AssertRounded(emitted, exact, $"emit to {emitted.dtype}");
            if (outBf16 == 0) Assert.True(emitted.equal(Bf16Rounded(emitted).to_type(ScalarType.Float32)).all().item<bool>(), "an fp32 emit holds bf16 values");
        }

        var dw = empty(B, T, experts);
        launcher.Launch("mot_dots", GpuTokenMixing.DotsBlocks(pairs, experts), 256, x, dtype, m, dw, T, d, experts, g, groups);
        AssertRounded(dw, einsum("gjtc,egtc->gjte", xr, mr).reshape(B, T, experts), "weight gradient");
    }

    /// <summary>Within <paramref name="tolerance"/> of the reference's largest value (sums in another order).</summary>
    static void AssertClose(Tensor actual, Tensor exact, double tolerance, string what)
    {
        double diff = (actual.to_type(ScalarType.Float64) - exact).abs().max().item<double>(), scale = exact.abs().max().item<double>();
        Assert.True(diff <= tolerance * scale, $"{what}: off by {diff:G3} at scale {scale:G3}");
    }

    [Theory]
    [InlineData(40, 200, false)]       // 5 blocks of rows forward, 4 backward (one multiprocessor): a second round of rows
    [InlineData(9, 512, true)]         // the residual add, its sum and both of its gradients; a last block of one row
    public void Layer_norm_forward_and_backward_equal_libtorchs(int rows, int d, bool add)
    {
        manual_seed(rows + d);
        var x = randn(rows, d) * 3 + 1;
        var h = add ? randn(rows, d).to_type(ScalarType.BFloat16) : null;
        var (w, b) = (randn(d) * 0.5 + 1, randn(d) * 0.5);
        var dy = randn(rows, d).to_type(ScalarType.BFloat16);
        var dres = add ? randn(rows, d) : null;
        var u = (h is null ? x : x + h.to_type(ScalarType.Float32)).to_type(ScalarType.Float64).requires_grad_();
        var (w64, b64) = (w.to_type(ScalarType.Float64).requires_grad_(), b.to_type(ScalarType.Float64).requires_grad_());
        var exact = nn.functional.layer_norm(u, [d], w64, b64, 1e-5);
        (exact * dy.to_type(ScalarType.Float64)).sum().backward();
        int variant = FusedLayerNorm.Variant(d);

        var (y, sum, mean, rstd) = (empty(rows, d, dtype: ScalarType.BFloat16), empty(rows, d), empty(rows), empty(rows));
        launcher.Launch($"layer_norm_forward_{variant}", FusedLayerNorm.ForwardBlocks(rows), FusedLayerNorm.Threads,
            x, h, h is null ? 0 : 1, add ? sum : null, w, b, y, mean, rstd, rows, d, 1e-5f, 1);
        AssertRounded(y, exact.detach(), "output");
        if (add) Assert.True(sum.equal(x + h!.to_type(ScalarType.Float32)).all().item<bool>(), "the residual sum is x + h in fp32");

        long blocks = FusedLayerNorm.BackwardBlocks(rows, multiprocessors: 1);
        var (dx, dh, dwPart, dbPart) = (empty(rows, d), add ? empty(rows, d, dtype: ScalarType.BFloat16) : null, empty(blocks, d), empty(blocks, d));
        launcher.Launch($"layer_norm_backward_{variant}", blocks, FusedLayerNorm.Threads,
            dy, 1, add ? sum : x, w, mean, rstd, dres, dx, dh, dh is null ? 0 : 1, dwPart, dbPart, rows, d);
        var (dw, db) = (empty(d), empty(d));
        launcher.Launch("column_sums", FusedLayerNorm.ColumnSumBlocks(d), FusedLayerNorm.Threads, dwPart, dbPart, dw, db, (int)blocks, d);
        var du = u.grad! + (dres is null ? zeros(1, dtype: ScalarType.Float64) : dres.to_type(ScalarType.Float64));
        AssertClose(dx, du, 1e-5, "input gradient");
        if (dh is not null) AssertRounded(dh, du, "branch gradient");
        AssertClose(dw, w64.grad!, 1e-5, "weight gradient");
        AssertClose(db, b64.grad!, 1e-5, "bias gradient");
    }

    [Theory]
    [InlineData(3, 3000, 3008)]        // 512 threads: the block-wide reductions over 16 warps; padding columns
    [InlineData(4, 256, 256)]          // one warp
    public void Cross_entropy_rows_equal_libtorchs_loss_and_softmax_minus_onehot(int rows, int vocab, int padded)
    {
        manual_seed(vocab);
        var z = (randn(rows, padded) * 4).to_type(ScalarType.BFloat16);
        var targets = randint(vocab, [rows], dtype: ScalarType.Int64);
        var logits = z.to_type(ScalarType.Float64)[.., ..vocab];
        var exactLoss = nn.functional.cross_entropy(logits, targets, reduction: nn.Reduction.None);
        var exactGrad = cat([logits.softmax(1) - nn.functional.one_hot(targets, vocab).to_type(ScalarType.Float64),
                             zeros(rows, padded - vocab, dtype: ScalarType.Float64)], 1);
        var loss = empty(rows);
        launcher.Launch("cross_entropy_rows", rows, LinearCrossEntropy.KernelThreads(padded), z, targets, loss, vocab, padded, 1);
        AssertClose(loss, exactLoss, 1e-5, "loss");
        AssertClose(z, exactGrad, 1.0 / 128, "softmax − onehot (bf16)");
    }

    [Fact]
    public void Routing_gathers_segment_sums_and_row_dots_equal_their_sums()
    {
        const int S = 10, R = 24, d = 12;
        manual_seed(7);
        var src = randn(S, d);
        var index = randint(-1, S, [R], dtype: ScalarType.Int64);        // −1: a zero row
        var scale = randn(R);
        var rounded = Bf16Rounded(src);
        var kept = index.ge(0).to_type(ScalarType.Float64).unsqueeze(1);
        var picked = rounded.index_select(0, index.clamp_min(0)) * kept;   // (R, d)

        var gathered = empty(R, d, dtype: ScalarType.BFloat16);
        launcher.Launch("gather_rows", GpuRouting.RowBlocks(R, d), 256, src, 0, index, scale, gathered, 1, (long)R, d);
        AssertRounded(gathered, picked * Bf16Rounded(scale).unsqueeze(1), "scaled gather");
        var plain = empty(R, d);
        launcher.Launch("gather_rows", GpuRouting.RowBlocks(R, d), 256, src, 0, index, null, plain, 0, (long)R, d);
        Assert.True(plain.to_type(ScalarType.Float64).equal(picked).all().item<bool>(), "an unscaled gather copies bf16-rounded rows");

        // five segments over the rows of src, one empty, one with a skipped entry; and the same rows three at a time
        var start = tensor(new long[] { 0, 2, 2, 5, 6, 9 });
        var order = tensor(new long[] { 3, -1, 0, 9, 4, 7, 1, 2, -1 });
        var weights = randn(S);
        Tensor Sums(long[] bounds, bool scaled)
        {
            var sums = zeros(bounds.Length - 1, d, dtype: ScalarType.Float64);
            for (int n = 0; n + 1 < bounds.Length; n++)
                for (long q = bounds[n]; q < bounds[n + 1]; q++)
                    if (order[q].item<long>() is var r and >= 0)
                        sums[n] += rounded[r] * (scaled ? Bf16Rounded(weights[r]) : ones(1, dtype: ScalarType.Float64));
            return sums;
        }
        var segments = empty(5, d);
        launcher.Launch("segment_sum_rows", GpuRouting.RowBlocks(5, d), 256, src, 0, start, 0, order, weights, segments, 0, 5L, d);
        AssertRounded(segments, Sums([0, 2, 2, 5, 6, 9], scaled: true), "segments with starts");
        var triples = empty(3, d, dtype: ScalarType.BFloat16);
        launcher.Launch("segment_sum_rows", GpuRouting.RowBlocks(3, d), 256, src, 0, null, 3, order, null, triples, 1, 3L, d);
        AssertRounded(triples, Sums([0, 3, 6, 9], scaled: false), "segments of three");

        const int rows = 20, width = 260;                                  // rows: not a whole block of warps
        var a = randn(S, width);
        var b = randn(rows, width).to_type(ScalarType.BFloat16);
        var which = index[..rows];
        var dots = empty(rows);
        launcher.Launch("row_dots", GpuRouting.DotBlocks(rows), 256, a, 0, which, b, 1, dots, (long)rows, width);
        var exact = (Bf16Rounded(a).index_select(0, which.clamp_min(0)) * Bf16Rounded(b)).sum(1) * which.ge(0).to_type(ScalarType.Float64);
        AssertRounded(dots, exact, "row dots");
    }
}
