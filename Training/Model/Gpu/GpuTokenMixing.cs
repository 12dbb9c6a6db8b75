using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace MoTLab.Training.Model.Gpu;

/// <summary>Mixture of Tokens' merge and emit on the fused CUDA kernels (<c>mot_merge</c>, <c>mot_emit</c>,
/// <c>mot_dots</c> in kernels.cu), in the layouts of <see cref="Cpu.CpuTokenMixing"/>: tokens stay (B, T, d), weights
/// are (B, T, E) fp32 and the expert side is (E, G·T, d) bf16, the expert bank's input and output. Example b = i·g + j
/// is member j of group i:
///   merge  m[e, i·T + t] = Σ_j w[i·g + j, t, e] · x[i·g + j, t]
///   emit   x[i·g + j, t] = Σ_e w[i·g + j, t, e] · m[e, i·T + t]
/// Each is the other's input gradient and the weight gradient is the dot product of the two sides, so the three kernels
/// make both directions. libtorch does the same as batched matmuls over (T, G) after transposing the tokens to
/// (T, B, d), casting them and the weights to bf16, and transposing the result back: on medium-mot on an NVIDIA H200,
/// 0.39 ms of copies, casts and matmuls around each layer's experts in the forward alone. The kernels round what they
/// read to bf16 and sum in fp32, as the bf16 matmuls do.</summary>
public static class GpuTokenMixing
{
    const int MaxGroup = 32;         // mot_dots holds a pair's members in one 32-row tile

    /// <summary>Whether the kernels take tokens <paramref name="x"/> (B, T, d) in groups of <paramref name="g"/> for
    /// experts computing in <paramref name="compute"/>: on a device where the kernels run, bf16 experts, fp32 or bf16
    /// tokens, d a multiple of 8 and g at most 32.</summary>
    public static bool Supports(Tensor x, int g, ScalarType compute) =>
        compute == ScalarType.BFloat16 && x.dim() == 3 && GpuKernels.Enabled(x.device)
        && (x.dtype == ScalarType.Float32 || x.dtype == ScalarType.BFloat16) && x.shape[0] % g == 0 && g <= MaxGroup
        && x.shape[2] % 8 == 0 && MixSharedBytes <= GpuKernels.MaxSharedBytes(x.device);

    /// <param name="x">(B, T, d) tokens, fp32 or bf16</param>
    /// <param name="w">(B, T, E) fp32 merge weights</param>
    /// <returns>(E, (B/g)·T, d) bf16, one mixed token per expert, group and position</returns>
    public static Tensor Merge(Tensor x, Tensor w, int g) => MergeFunction.apply(x, w, g);

    /// <param name="m">(E, (B/g)·T, d) bf16 expert outputs</param>
    /// <param name="w">(B, T, E) fp32 emit weights</param>
    /// <returns>(B, T, d) bf16, each token's share of its group's expert outputs</returns>
    public static Tensor Emit(Tensor m, Tensor w, int g) => EmitFunction.apply(m, w, g);

    static Tensor Ready(Tensor t) => GpuKernels.AlignedContiguous(t, 16);

    /// <summary>mot_merge's and mot_emit's grid (blocks of 256 threads, <see cref="MixSharedBytes"/> of shared memory):
    /// a block per pair, 32 rows of the result (experts for the merge, members for the emit) and 512 columns.</summary>
    public static long MixBlocks(long pairs, long rows, long d) => pairs * ((rows + 31) / 32) * ((d + 511) / 512);

    /// <summary>mot_dots's grid (blocks of 256 threads): a block per pair and 32 experts.</summary>
    public static long DotsBlocks(long pairs, long experts) => pairs * ((experts + 31) / 32);

    /// <summary>The dynamic shared memory mot_merge and mot_emit ask for.</summary>
    public const int MixSharedBytes = 32 * 36 * 4 + 32 * 512 * 4;   // A's chunk (32 × 36 floats), B's (32 × 512)

    /// <summary>The sizes of one call, checked: w (B, T, E) fp32 beside tokens (B, T, d), m (E, (B/g)·T, d) bf16.</summary>
    readonly record struct Shape(long B, long T, long D, long E, int G)
    {
        public long Groups => B / G;
        public static Shape Of(Tensor tokens, Tensor w, Tensor? m, int g)
        {
            var s = new Shape(tokens.shape[0], tokens.shape[1], tokens.shape[2], w.shape[2], g);
            bool ok = tokens.dim() == 3 && (tokens.dtype == ScalarType.Float32 || tokens.dtype == ScalarType.BFloat16) && w.dim() == 3 && w.shape[0] == s.B && w.shape[1] == s.T && w.dtype == ScalarType.Float32
                && s.B % g == 0 && g <= MaxGroup && s.D % 8 == 0
                && (m is null || (m.dim() == 3 && m.shape[0] == s.E && m.shape[1] == s.Groups * s.T && m.shape[2] == s.D && m.dtype == ScalarType.BFloat16));
            if (!ok)
                throw new ArgumentException($"MoT mixing kernels: need tokens (B, T, d) with d a multiple of 8, fp32 weights (B, T, E), " +
                    $"expert side (E, (B/g)·T, d) bf16, B a multiple of g ≤ {MaxGroup}; got tokens {string.Join('×', tokens.shape)}, " +
                    $"{w.dtype} weights {string.Join('×', w.shape)}, {(m is null ? "" : $"{m.dtype} expert side {string.Join('×', m.shape)}, ")}g {g}");
            return s;
        }

        public void Merge(Tensor tokens, Tensor w, Tensor m) => GpuKernels.Launch(tokens.device, "mot_merge", MixBlocks(Groups * T, E, D), 256,
            MixSharedBytes, [GpuKernels.Ptr(tokens), GpuKernels.Bf16(tokens.dtype), GpuKernels.Ptr(w), GpuKernels.Ptr(m), .. Sizes]);

        public void Emit(Tensor m, Tensor w, Tensor tokens) => GpuKernels.Launch(tokens.device, "mot_emit", MixBlocks(Groups * T, G, D), 256,
            MixSharedBytes, [GpuKernels.Ptr(m), GpuKernels.Ptr(w), GpuKernels.Ptr(tokens), GpuKernels.Bf16(tokens.dtype), .. Sizes]);

        public void Dots(Tensor tokens, Tensor m, Tensor dw) => GpuKernels.Launch(tokens.device, "mot_dots", DotsBlocks(Groups * T, E), 256,
            0, [GpuKernels.Ptr(tokens), GpuKernels.Bf16(tokens.dtype), GpuKernels.Ptr(m), GpuKernels.Ptr(dw), .. Sizes]);

        /// <summary>The sizes every MoT kernel takes last: T, d, E, g, groups (32-bit each).</summary>
        long[] Sizes => [GpuKernels.Int(T), GpuKernels.Int(D), GpuKernels.Int(E), G, GpuKernels.Int(Groups)];
    }

    sealed class MergeFunction : SingleTensorFunction<MergeFunction>
    {
        public override string Name => "MoTMergeKernel";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var (x, w, g) = (Ready((Tensor)vars[0]), Ready((Tensor)vars[1]), (int)vars[2]);
            var s = Shape.Of(x, w, null, g);
            var m = empty(s.E, s.Groups * s.T, s.D, dtype: ScalarType.BFloat16, device: x.device);
            s.Merge(x, w, m);
            ctx.save_for_backward([x, w]); ctx.save_data("g", g);
            return m;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
        {
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            var (x, w, g) = (saved[0], saved[1], (int)ctx.get_data("g"));
            var dm = Ready(gradOutput.To(ScalarType.BFloat16));
            var s = Shape.Of(x, w, dm, g);
            var (dx, dw) = (empty_like(x), empty_like(w));
            s.Emit(dm, w, dx);                                                      // dx = emit(dm)
            s.Dots(x, dm, dw);                                                      // dw = x · dm
            foreach (var t in saved) t.Dispose();
            return GradientHandoff.Return([gradOutput], dx, dw, null);
        }
    }

    sealed class EmitFunction : SingleTensorFunction<EmitFunction>
    {
        public override string Name => "MoTEmitKernel";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var (m, w, g) = (Ready((Tensor)vars[0]), Ready((Tensor)vars[1]), (int)vars[2]);
            var x = empty(w.shape[0], w.shape[1], m.shape[2], dtype: ScalarType.BFloat16, device: m.device);
            var s = Shape.Of(x, w, m, g);
            s.Emit(m, w, x);
            ctx.save_for_backward([m, w]); ctx.save_data("g", g);
            return x;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
        {
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            var (m, w, g) = (saved[0], saved[1], (int)ctx.get_data("g"));
            var dx = Ready(gradOutput);
            var s = Shape.Of(dx, w, m, g);
            var (dm, dw) = (empty_like(m), empty_like(w));
            s.Merge(dx, w, dm);                                                     // dm = merge(dx)
            s.Dots(dx, m, dw);                                                      // dw = dx · m
            foreach (var t in saved) t.Dispose();
            return GradientHandoff.Return([gradOutput], dm, dw, null);
        }
    }
}
