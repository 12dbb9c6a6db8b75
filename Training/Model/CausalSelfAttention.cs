using MoTLab.Training.Model.Cpu;
using MoTLab.Training.Model.Gpu;
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
        var qkvParts = QkvSplit.apply(qkvOut, heads);                      // 3 × (B, H, T, hd) views of qkvOut
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

    /// <summary>q, k and v as (B, H, T, hd) views of the fused projection's (B, T, 3·d) output, with a backward that
    /// writes their three gradients straight into that output's layout: one pass, where autograd's own path (the
    /// views' permute and unbind) stacked them (B, H, T, hd)-major and then copied the stack into the projection's
    /// order: 0.68 ms a layer at medium on an NVIDIA H200 (docs/benchmarks.md). The pass is the <c>qkv_pack</c>
    /// kernel where the fused kernels run and hd is a multiple of 8, else three strided copies.</summary>
    public sealed class QkvSplit : autograd.MultiTensorFunction<QkvSplit>
    {
        public override string Name => nameof(QkvSplit);

        public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (qkv, heads) = ((Tensor)vars[0], (int)vars[1]);
            long B = qkv.shape[0], T = qkv.shape[1], d = qkv.shape[2] / 3;
            ctx.save_data("shape", (B, T, heads, d / heads));
            return [.. qkv.view(B, T, 3, heads, d / heads).permute(2, 0, 3, 1, 4).unbind(0)];   // 3 × (B, H, T, hd)
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads)
        {
            using var scope = NewDisposeScope();
            var (B, T, H, hd) = ((long, long, int, long))ctx.get_data("shape");
            Tensor dq = grads[0], dk = grads[1], dv = grads[2];                        // (B, H, T, hd) each
            var dqkv = empty([B, T, 3, H, hd], dtype: dq.dtype, device: dq.device);        // (B, T, 3, H, hd)
            long[] strides = dq.stride();
            if (GpuKernels.Enabled(dq.device) && dq.element_size() == 2 && hd % 8 == 0 && dqkv.numel() < int.MaxValue
                && strides[3] == 1 && strides.Take(3).All(s => s % 8 == 0) && dk.stride().SequenceEqual(strides) && dv.stride().SequenceEqual(strides)
                && new[] { dq, dk, dv }.All(g => GpuKernels.On(dq.device, g) && GpuKernels.Pointer(g) % 16 == 0))
                GpuKernels.Launch(dq.device, "qkv_pack", Math.Min((dqkv.numel() / 8 + 255) / 256, 32L * GpuKernels.Multiprocessors(dq.device)), 256, 0,
                    GpuKernels.Ptr(dq), GpuKernels.Ptr(dk), GpuKernels.Ptr(dv), GpuKernels.Ptr(dqkv), B, H, T, hd / 8, strides[0], strides[1], strides[2]);
            else
            {
                Tensor[] parts = [dq, dk, dv];
                for (int s = 0; s < 3; s++)
                {
                    using var slot = dqkv.select(2, s);                                        // (B, T, H, hd)
                    using var source = parts[s].transpose(1, 2);                               // (B, T, H, hd)
                    slot.copy_(source);
                }
            }
            return GradientHandoff.Return(grads, dqkv.view(B, T, 3 * H * hd), null);
        }
    }
}
