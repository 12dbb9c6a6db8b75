using MoTLab.Training.Model.Cpu;
using System.Runtime.Intrinsics.X86;
using MoTLab.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

/// <summary>When MoTLab's CPU kernels are used, and MoT's mixing and MoE routing on them against the libtorch
/// formulations the layers use elsewhere: values and gradients. (The attention kernel has its own tests.)</summary>
public class CpuKernelTests
{
    /// <summary>Whether this machine has what the kernels need (AVX2 and FMA); where not, no layer may pick them.</summary>
    internal static bool KernelsRun()
    {
        bool simd = Avx2.IsSupported && Fma.IsSupported;
        if (!simd) Assert.False(CpuKernels.Supports(DeviceType.CPU, ScalarType.Float32, 16, threads: 1));
        return simd;
    }

    [Fact]
    public void Kernels_stand_in_only_for_fp32_on_one_CPU_thread_with_rows_of_whole_vectors()
    {
        bool simd = Avx2.IsSupported && Fma.IsSupported;
        Assert.Equal(simd, CpuKernels.Supports(DeviceType.CPU, ScalarType.Float32, 16, threads: 1));
        Assert.False(CpuKernels.Supports(DeviceType.CPU, ScalarType.Float32, 16, threads: 2));   // libtorch's pool
        Assert.False(CpuKernels.Supports(DeviceType.CPU, ScalarType.Float32, 12, threads: 1));   // not whole vectors
        Assert.False(CpuKernels.Supports(DeviceType.CPU, ScalarType.BFloat16, 16, threads: 1));
        Assert.False(CpuKernels.Supports(DeviceType.CUDA, ScalarType.Float32, 16, threads: 1));
        Assert.False(CausalSelfAttention.UsesCpuKernel(DeviceType.CPU, ScalarType.Float32, 16, 64, dropout: 0.1));
        Assert.False(CausalSelfAttention.UsesCpuKernel(DeviceType.CPU, ScalarType.Float32, 16, CpuCausalAttention.MaxLength + 1, dropout: 0));
    }

    static void Close(Tensor expected, Tensor actual, string what) =>
        Assert.True(actual.allclose(expected, rtol: 1e-4, atol: 1e-5), $"{what} differs by {(actual - expected).abs().max().item<float>()}");

    [Theory]
    [InlineData(8, 5, 16, 3, 4)]     // E not a multiple of anything
    [InlineData(4, 3, 8, 8, 2)]
    [InlineData(16, 64, 64, 8, 4)]   // tiny-mot's shape
    public void MoT_merge_and_emit_equal_the_grouped_matmuls(int batch, int length, int width, int experts, int group)
    {
        if (!KernelsRun()) return;
        manual_seed(5);
        int G = batch / group;
        var x = randn(batch, length, width).requires_grad_();
        var w = randn(batch, length, experts).softmax(2).requires_grad_();          // (B, T, E)
        var outputGradient = randn(batch, length, width);

        // kernel: merge, a per-expert transform, emit with the same weights
        var scale = randn(experts, 1, width);
        var kernel = CpuTokenMixing.Emit(CpuTokenMixing.Merge(x, w, group) * scale, w, group);
        kernel.backward([outputGradient]);
        var (kx, kw) = (x.grad!.clone(), w.grad!.clone());
        x.grad = null; w.grad = null;

        // reference: the layout MixtureOfTokens uses with libtorch, (T, G, g, ·)
        var xg = x.transpose(0, 1).reshape(length, G, group, width);                 // (T, G, g, d)
        var wg = w.view(G, group, length, experts).permute(2, 0, 1, 3);               // (T, G, g, E)
        var merged = wg.transpose(2, 3).matmul(xg);                                   // (T, G, E, d)
        var expertMajor = merged.permute(2, 1, 0, 3).reshape(experts, G * length, width); // (E, G·T, d)
        Close(expertMajor, CpuTokenMixing.Merge(x, w, group), "merge");
        var y = (expertMajor * scale).view(experts, G, length, width).permute(2, 1, 0, 3); // (T, G, E, d)
        var reference = wg.matmul(y).reshape(length, batch, width).transpose(0, 1);   // (B, T, d)
        reference.backward([outputGradient]);

        Close(reference, kernel, "emit");
        Close(x.grad!, kx, "token gradient");
        Close(w.grad!, kw, "weight gradient");
    }

    [Theory]
    [InlineData(7, 12, 8)]           // fewer tokens than a block of four, a width that is not whole vectors
    [InlineData(1024, 64, 8)]        // tiny-moe's router
    [InlineData(33, 16, 16)]
    public void Router_probabilities_equal_softmax_of_the_logits(int tokens, int width, int experts)
    {
        if (!KernelsRun()) return;
        manual_seed(6);
        var x = randn(tokens, width).requires_grad_();
        var router = (randn(width, experts) * 0.5).requires_grad_();
        var outputGradient = randn(tokens, experts);

        var kernel = CpuRouting.Probabilities(x, router);
        kernel.backward([outputGradient]);
        var (kx, kr) = (x.grad!.clone(), router.grad!.clone());
        x.grad = null; router.grad = null;
        var reference = x.matmul(router).softmax(1);
        reference.backward([outputGradient]);

        Close(reference, kernel, "probabilities");
        Close(x.grad!, kx, "token gradient");
        Close(router.grad!, kr, "router gradient");
    }

    [Theory]
    [InlineData(50, 1, 8, 6)]        // most tokens dropped
    [InlineData(50, 2, 8, 20)]       // second choices queue behind all first choices
    [InlineData(16, 1, 4, 16)]       // nothing dropped
    public void Capacity_slots_equal_the_tensor_assignment(int tokens, int k, int experts, int capacity)
    {
        manual_seed(7);
        var choice = rand(tokens, experts).topk(k, 1).indexes;                     // (N, k) distinct experts per token
        var (slot, frac) = TokenChoiceMoE.Assign(choice, experts, capacity);
        var (cpuSlot, cpuFrac) = TokenChoiceMoE.AssignOnCpu(choice, experts, capacity);
        Assert.Equal(slot.data<long>().ToArray(), cpuSlot.data<long>().ToArray());
        Close(frac, cpuFrac, "load");
        var dropped = cpuSlot.data<long>().Count(s => s == experts * capacity);
        var overflow = frac.data<float>().Sum(f => Math.Max(0, (int)Math.Round(f * tokens * k) - capacity)); // from the tensor path
        Assert.Equal(overflow, dropped);                                            // exactly what exceeds each expert's C
    }
}
