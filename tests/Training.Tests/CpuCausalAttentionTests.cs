using MoTLab.Training.Model.Cpu;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

public class CpuCausalAttentionTests
{
    /// <summary>libtorch's attention on the same (B, T, 3·d) projection output, as the module called it before.</summary>
    static Tensor Reference(Tensor qkv, int heads)
    {
        long B = qkv.shape[0], T = qkv.shape[1], d = qkv.shape[2] / 3;
        var parts = qkv.view(B, T, 3, heads, d / heads).permute(2, 0, 3, 1, 4).unbind(0);    // 3 × (B, H, T, hd)
        return nn.functional.scaled_dot_product_attention(parts[0], parts[1], parts[2], is_casual: true)
            .transpose(1, 2).reshape(B, T, d);
    }

    [Theory]
    [InlineData(2, 5, 2, 8)]      // shorter than one vector of keys
    [InlineData(3, 17, 2, 16)]    // T neither a multiple of 4 nor of 8
    [InlineData(16, 64, 4, 16)]   // the tiny presets' shape
    [InlineData(1, 33, 1, 64)]    // wide heads
    [InlineData(2, 20, 3, 24)]    // head size an odd number of vectors
    [InlineData(2, 1, 2, 8)]      // one position: each query sees only itself
    [InlineData(1, 1024, 1, 8)]   // the longest sequence it takes
    public void Output_and_gradient_equal_scaled_dot_product_attention(int batch, int length, int heads, int headSize)
    {
        if (!CpuKernelTests.KernelsRun()) return;
        manual_seed(11);
        var qkv = (randn(batch, length, 3 * heads * headSize) * 2).requires_grad_();   // scores of a few units: a peaked softmax
        var outputGradient = randn(batch, length, heads * headSize);

        var kernel = CpuCausalAttention.Apply(qkv, heads);
        kernel.backward([outputGradient]);
        var kernelGradient = qkv.grad!.clone();
        qkv.grad = null;
        var reference = Reference(qkv, heads);
        reference.backward([outputGradient]);

        Assert.Equal(reference.shape, kernel.shape);
        Assert.True(kernel.allclose(reference, rtol: 1e-4, atol: 1e-5), $"output differs by {(kernel - reference).abs().max().item<float>()}");
        // a key's gradient sums over every later query, in another order than libtorch's SDPA (whose CPU kernels differ
        // by processor): fp32 rounding grows as √T, 2.9e-5 at T = 1,024 on one Xeon
        double atol = 1e-5 * Math.Max(1, Math.Sqrt(length / 64.0));
        Assert.True(kernelGradient.allclose(qkv.grad!, rtol: 1e-4, atol: atol), $"gradient differs by {(kernelGradient - qkv.grad!).abs().max().item<float>()}");
    }

    [Fact]
    public void A_query_never_sees_a_later_position()
    {
        if (!CpuKernelTests.KernelsRun()) return;
        var qkv = randn(1, 12, 3 * 16);
        var changed = qkv.clone();
        changed[0, 7..] = randn(5, 3 * 16);                                     // positions 7… rewritten
        var (before, after) = (CpuCausalAttention.Apply(qkv, 2), CpuCausalAttention.Apply(changed, 2));
        Assert.True(before[0, ..7].eq(after[0, ..7]).all().item<bool>(), "positions 0–6 moved when later ones changed");
        Assert.False(before[0, 7..].allclose(after[0, 7..]));
    }
}
