using System.Text.RegularExpressions;
using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using MoTLab.Training.Model.Gpu;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Tests;

/// <summary>What of the fused CUDA kernels can be checked without a GPU: which path each caller takes, that every kernel
/// a caller launches is in the embedded source, and that the libtorch paths beside them compute what they did. Their
/// values and gradients on a GPU are checked by `kernels --check` (docs/benchmarks.md has its output).</summary>
public class GpuKernelTests
{
    static GpuKernelTests() => Runtime.TorchRuntime.Initialise();

    static readonly HashSet<string> SourceKernels =
        Regex.Matches(GpuKernels.Source(), @"extern ""C"" __global__ void (?:__launch_bounds__\([^)]*\)\s*)?(\w+)\(").Select(m => m.Groups[1].Value)
        .Concat(Regex.Matches(GpuKernels.Source(), @"^LAYER_NORM_KERNELS\((\d+)\)", RegexOptions.Multiline)
            .SelectMany(m => new[] { $"layer_norm_forward_{m.Groups[1].Value}", $"layer_norm_backward_{m.Groups[1].Value}" }))

        .ToHashSet();

    [Fact]
    public void The_cpu_takes_the_libtorch_paths_and_says_why()
    {
        Assert.False(GpuKernels.Enabled(CPU));
        Assert.Equal("libtorch (fused kernels are CUDA only)", GpuKernels.Describe(CPU));
        Assert.False(FusedLayerNorm.Supports(randn(4, 512), ScalarType.BFloat16));
        Assert.False(GpuTokenMixing.Supports(randn(4, 8, 512), 2, ScalarType.BFloat16));
        Assert.False(GpuRouting.Supports(randn(4, 512), ScalarType.BFloat16));
    }

    [Fact]
    public void A_tensor_fits_a_kernel_by_its_device_type_and_index_its_layout_and_its_alignment()
    {
        using var a = zeros(64);
        using var b = zeros(8, 8);
        Assert.NotSame(a.device, b.device);                          // a new Device at every call, and Device compares by reference
        Assert.True(GpuKernels.On(a.device, b));
        Assert.True(GpuKernels.Fits(a.device, 16, a, b));
        Assert.False(GpuKernels.Fits(new Device(TorchSharp.DeviceType.CUDA, 0), 16, a));
        using var transposed = b.t();
        Assert.False(GpuKernels.Fits(a.device, 16, transposed));    // not contiguous
        using var fourBytesIn = a.narrow(0, 1, 8);
        using var sixteenBytesIn = a.narrow(0, 4, 8);
        Assert.False(GpuKernels.Fits(a.device, 16, fourBytesIn));
        Assert.True(GpuKernels.Fits(a.device, 16, sixteenBytesIn));
        Assert.True(GpuKernels.Fits(a.device, 4, fourBytesIn));
        using var copied = GpuKernels.AlignedContiguous(fourBytesIn, 16);   // contiguous() alone hands the view itself
        Assert.True(GpuKernels.Fits(a.device, 16, copied));
        Assert.True(copied.equal(fourBytesIn).all().item<bool>());
        using var same = GpuKernels.AlignedContiguous(sixteenBytesIn, 16);
        Assert.Equal(GpuKernels.Pointer(sixteenBytesIn), GpuKernels.Pointer(same));           // no copy where none is needed
    }

    [Fact]
    public void A_kernel_check_passes_on_its_launches_only_when_the_kernel_side_launched_and_the_libtorch_side_did_not()
    {
        Assert.True(new KernelChecks.Result("c", "kernels launched", 0, 0, 0, (3, 0)).Passed);
        Assert.False(new KernelChecks.Result("c", "kernels launched", 0, 0, 0, (0, 0)).Passed);   // both sides took libtorch
        Assert.False(new KernelChecks.Result("c", "kernels launched", 0, 0, 0, (3, 1)).Passed);
        Assert.Contains("FAILED", new KernelChecks.Result("c", "kernels launched", 0, 0, 0, (0, 0)).ToString());
        Assert.True(new KernelChecks.Result("c", "output", 0.01, 1, 1.0 / 64).Passed);
        Assert.False(new KernelChecks.Result("c", "output", 0.02, 1, 1.0 / 64).Passed);
    }

    [Fact]
    public void Every_kernel_a_caller_launches_is_in_the_source()
    {
        Assert.Contains("qkv_pack", SourceKernels);
        Assert.Contains("column_sums", SourceKernels);
        Assert.Contains("cross_entropy_rows", SourceKernels);
        foreach (var name in new[] { "mot_merge", "mot_emit", "mot_dots", "gather_rows", "segment_sum_rows", "row_dots" }) Assert.Contains(name, SourceKernels);
        for (long padded = 64; padded <= 1 << 20; padded += 64)
            Assert.True(LinearCrossEntropy.KernelThreads(padded) is var t && t % 32 == 0 && t is >= 32 and <= 512, $"{padded}: {LinearCrossEntropy.KernelThreads(padded)} threads");
        Assert.Equal(512, LinearCrossEntropy.KernelThreads(50_304));   // GPT-2's vocabulary, padded
        Assert.Equal(32, LinearCrossEntropy.KernelThreads(256));       // bytes
        for (int d = 4; d <= FusedLayerNorm.MaxWidth; d += 4)
        {
            int v = FusedLayerNorm.Variant(d);
            Assert.True(v * 128 >= d, $"variant {v} holds {v * 128} columns, not {d}");
            Assert.Contains($"layer_norm_forward_{v}", SourceKernels);
            Assert.Contains($"layer_norm_backward_{v}", SourceKernels);
        }
        Assert.Equal(4, FusedLayerNorm.Variant(512));
        Assert.Equal(8, FusedLayerNorm.Variant(516));
        Assert.Throws<ArgumentOutOfRangeException>(() => FusedLayerNorm.Variant(FusedLayerNorm.MaxWidth + 4));
    }

    [Fact]
    public void Layer_norm_off_the_kernels_is_libtorch_cast_to_the_consumer_dtype()
    {
        var ln = LayerNorm(64);
        using (no_grad()) { ln.weight!.normal_(1, 0.3); ln.bias!.normal_(0, 0.3); }
        var x = TestUtil.Randn(1, 8, 64).requires_grad_();
        var y = FusedLayerNorm.Apply(ln, x, ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        Assert.True(y.equal(ln.forward(x).to_type(ScalarType.BFloat16)).all().item<bool>());
        y.to_type(ScalarType.Float32).sum().backward();
        Assert.NotNull(x.grad);
        Assert.NotNull(ln.weight!.grad);
    }

    /// <summary>The split's own backward (three strided copies off the GPU) against autograd's path through the views'
    /// permute and unbind, which it replaced: the same gradients, bit for bit.</summary>
    [Fact]
    public void Qkv_split_backward_equals_autograds_unbind_path()
    {
        const int B = 2, T = 8, H = 4, hd = 8, d = H * hd;
        var qkv = TestUtil.Randn(2, B, T, 3 * d).requires_grad_();
        var upstream = TestUtil.Randn(3, B, H, T, hd);
        Tensor Grad(Func<Tensor, IList<Tensor>> split)
        {
            qkv.grad?.zero_();
            var parts = split(qkv);
            var y = functional.scaled_dot_product_attention(parts[0], parts[1], parts[2], is_casual: true);
            (y * upstream).sum().backward();
            return qkv.grad!.clone();
        }
        var expected = Grad(t => t.view(B, T, 3, H, hd).permute(2, 0, 3, 1, 4).unbind(0));
        var actual = Grad(t => CausalSelfAttention.QkvSplit.apply(t, H));
        Assert.True(actual.equal(expected).all().item<bool>(), $"gradients differ by {(actual - expected).abs().max().item<float>()}");
        Assert.True(expected.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void A_model_off_the_kernels_still_trains_in_bf16_on_the_cpu()
    {
        var cfg = TestUtil.TinyModel(new FfnConfig()) with { DModel = 32, Heads = 2 };
        var model = new Gpt(cfg, ScalarType.BFloat16);
        var idx = randint(cfg.VocabSize, [4, cfg.SeqLen], dtype: ScalarType.Int64);
        var (objective, ce, _) = model.Loss(idx, idx);
        objective.backward();
        Assert.InRange(ce.item<float>(), 2.0, 5.0);   // ln 32 ≈ 3.47 at initialisation
        Assert.All(model.parameters(), p => Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0));
    }
}

/// <summary>The count of live tensor handles is process-wide: this runs alone (the collection that runs without
/// parallel tests), or other tests' tensors would be counted.</summary>
[Collection(nameof(LibtorchThreads))]
public class GradientHandoffTests
{
    /// <summary>A backward that leaves a handle behind holds that tensor's memory until a garbage collection (on a GPU,
    /// a whole step's worth of gradients every step: the H200 bench of medium-mot held 82 GiB where it had held 25). Each custom
    /// backward here runs in a dispose scope of its own and hands its gradients out once; the handles left after
    /// the backward of a step must not grow from step to step.</summary>
    [Theory]
    [InlineData(FfnKind.Dense)]
    [InlineData(FfnKind.TokenChoice)]
    public void Custom_backwards_leave_no_tensor_handles_behind(FfnKind ffn)
    {
        var cfg = TestUtil.TinyModel(new FfnConfig { Kind = ffn, Experts = 4 }) with { DModel = 32, Heads = 2 };
        var model = new Gpt(cfg, ScalarType.BFloat16);   // bf16 on the CPU: attention through QkvSplit and SDPA, token choice through RowGather
        var idx = randint(cfg.VocabSize, [4, cfg.SeqLen], dtype: ScalarType.Int64);
        var left = new List<long>();
        for (int step = 0; step < 4; step++)
        {
            Tensor loss;
            using (NewDisposeScope()) loss = model.Loss(idx, idx).Objective.MoveToOuterDisposeScope();
            long before = Tensor.TotalCount;
            loss.backward();
            left.Add(Tensor.TotalCount - before);
            loss.Dispose();
        }
        Assert.All(left.Skip(1), n => Assert.Equal(0, n));   // the first step's hand-off is disposed by the second's
    }
}
