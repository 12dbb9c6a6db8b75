using System.Diagnostics;
using System.Globalization;
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
            var stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, stdout + stderr.GetAwaiter().GetResult());
        }
    }

    /// <summary>Launches <paramref name="kernel"/> with a 1-D grid. Arguments: a CPU tensor (its bytes are the kernel's
    /// buffer, written back after the launch), null (a null pointer), int (32-bit) or long (64-bit).</summary>
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

/// <summary>MoTLab's MoT and routing kernels (kernels.cu) run on the CPU launcher, with the grids their C# callers
/// compute, against the same sums in libtorch on the CPU in bf16's rounding: every input rounded to bf16, sums in fp32
/// (here fp64), each result rounded to bf16 once. On a GPU `kernels --check` holds them against the libtorch paths.</summary>
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
