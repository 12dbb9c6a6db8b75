using MoTLab.Training.Model.Cpu;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Model;

/// <summary>Multi-head causal self-attention: one fused QKV projection, then scaled_dot_product_attention (flash /
/// memory-efficient kernels where libtorch has them) or, in fp32 on one CPU thread, <see cref="CpuCausalAttention"/>.</summary>
public sealed class CausalSelfAttention : Module<Tensor, Tensor>
{
    private readonly Parameter qkv;   // (3d, d)
    private readonly Parameter proj;  // (d, d)
    private readonly Dropout residDropout;
    private readonly int heads;
    private readonly double dropout;
    private readonly ScalarType compute;

    public CausalSelfAttention(int dModel, int heads, double dropout, WeightInit weights, ScalarType compute) : base(nameof(CausalSelfAttention))
    {
        this.heads = heads; this.dropout = dropout; this.compute = compute;
        qkv = Parameter(empty(3 * dModel, dModel));
        proj = Parameter(empty(dModel, dModel));
        residDropout = Dropout(dropout);
        weights.Fill(qkv, fanIn: dModel); weights.Fill(proj, fanIn: dModel, residualOut: true);
        RegisterComponents();
    }

    /// <param name="x">(B, T, d)</param>
    public override Tensor forward(Tensor x)
    {
        long B = x.shape[0], T = x.shape[1], d = x.shape[2], hd = d / heads;
        var qkvOut = functional.linear(x.To(compute), qkv.To(compute));   // (B, T, 3d)
        if (UsesCpuKernel(x.device_type, compute, (int)hd, T, training ? dropout : 0))
            return Project(CpuCausalAttention.Apply(qkvOut, heads));       // (B, T, d)
        // unbind, not three selects: its backward stacks the three grads in one write, where each select's
        // backward would zero-fill a buffer the size of all three and autograd would then add them up
        var qkvParts = qkvOut.view(B, T, 3, heads, hd).permute(2, 0, 3, 1, 4).unbind(0); // 3 × (B, H, T, hd)
        var y = functional.scaled_dot_product_attention(qkvParts[0], qkvParts[1], qkvParts[2],
            p: training ? dropout : 0, is_casual: true);                   // (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, d);                            // (B, T, d)
        return Project(y);
    }

    /// <summary>Whether attention runs on <see cref="CpuCausalAttention"/> rather than scaled_dot_product_attention:
    /// where the CPU kernels run, without attention dropout, and up to <see cref="CpuCausalAttention.MaxLength"/>.</summary>
    public static bool UsesCpuKernel(DeviceType device, ScalarType compute, int headSize, long length, double dropout) =>
        dropout == 0 && length <= CpuCausalAttention.MaxLength && CpuKernels.Supports(device, compute, headSize, get_num_threads());

    Tensor Project(Tensor y)
    {
        var o = functional.linear(y, proj.To(compute));                   // (B, T, d)
        return dropout > 0 ? residDropout.forward(o) : o;
    }
}
