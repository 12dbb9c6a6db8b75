using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace MoTLab.Training.Model.Gpu;

/// <summary>LayerNorm over the last dimension, and the residual add before it, in CUDA kernels (<c>layer_norm_forward_V</c>,
/// <c>layer_norm_backward_V</c> and <c>column_sums</c> in kernels.cu): fp32 input and statistics, the output written
/// straight in the dtype its consumer computes in (bf16 for a matmul's input), a backward that takes that dtype's
/// gradient, adds the gradient arriving along the residual stream, writes the fp32 input gradient (and the branch's
/// copy in its dtype) and sums the weight and bias gradients per block in the same pass. On libtorch the same step is
/// the add, the normalisation, the cast and, backwards, the cast's and the add's kernels and a separate
/// weight-gradient reduction (which alone took 270 µs of a 470 µs backward at (65,536 × 512) on an NVIDIA H200:
/// docs/benchmarks.md).</summary>
public static class FusedLayerNorm
{
    public const int MaxWidth = 1024;
    const int Warps = 8;              // rows per block, a warp each

    /// <summary>x through <paramref name="ln"/>, in <paramref name="output"/> (fp32 or the compute dtype): fused where
    /// the kernels run, else libtorch's LayerNorm and a cast.</summary>
    /// <param name="x">(…, d) fp32</param>
    public static Tensor Apply(LayerNorm ln, Tensor x, ScalarType output) =>
        Supports(x, output) && Affine(ln, x) ? Plain.apply(x, ln.weight!, ln.bias!, output, ln.eps) : ln.forward(x).To(output);

    /// <summary>The norm's weight and bias as the kernels read them: fp32, contiguous, 16-byte aligned, on x's device.</summary>
    static bool Affine(LayerNorm ln, Tensor x) =>
        ln.weight is { } w && ln.bias is { } b && w.dtype == ScalarType.Float32 && b.dtype == ScalarType.Float32
        && GpuKernels.Fits(x.device, 16, w, b);

    /// <summary>The residual stream after adding <paramref name="branch"/> (when given), and that stream through
    /// <paramref name="ln"/> in <paramref name="output"/>: one kernel each way where the kernels run.</summary>
    /// <param name="x">(…, d) fp32 residual stream</param>
    /// <param name="branch">(…, d) a block's output to add (compute dtype or fp32), or null</param>
    /// <returns>(x + branch fp32, ln(x + branch) in <paramref name="output"/>)</returns>
    public static (Tensor Sum, Tensor Normed) AddApply(LayerNorm ln, Tensor x, Tensor? branch, ScalarType output)
    {
        if (branch is null) return (x, Apply(ln, x, output));
        if (Supports(x, output) && Affine(ln, x) && (branch.dtype is ScalarType.Float32 or ScalarType.BFloat16)
            && branch.shape.SequenceEqual(x.shape) && GpuKernels.On(x.device, branch))
        {
            var outputs = Residual.apply(x, branch, ln.weight!, ln.bias!, output, ln.eps);
            return (outputs[0], outputs[1]);
        }
        var sum = x + branch;
        return (sum, Apply(ln, sum, output));
    }

    /// <summary>Where the kernels serve: CUDA with the kernels enabled, fp32 input of at least one row of width d a
    /// multiple of 4 up to <see cref="MaxWidth"/>, output fp32 or bf16. (The kernels read four elements a load: what they
    /// read is made contiguous and aligned (<see cref="GpuKernels.AlignedContiguous"/>), every buffer they write is
    /// fresh, hence aligned; the norm's own weights are checked where it is applied.)</summary>
    public static bool Supports(Tensor x, ScalarType output) =>
        x.dtype == ScalarType.Float32 && (output is ScalarType.Float32 or ScalarType.BFloat16) && x.numel() > 0
        && x.shape[^1] % 4 == 0 && x.shape[^1] <= MaxWidth && GpuKernels.Enabled(x.device);

    /// <summary>The kernels' register width: float4s per lane, the smallest compiled variant that holds a row of d.</summary>
    public static int Variant(long d) => d switch { <= 128 => 1, <= 256 => 2, <= 512 => 4, <= MaxWidth => 8, _ => throw new ArgumentOutOfRangeException(nameof(d), $"LayerNorm width {d} is over {MaxWidth}") };

    /// <summary>The kernels' block: a warp per row.</summary>
    public const int Threads = Warps * 32;

    /// <summary>layer_norm_forward's grid: <see cref="Warps"/> rows a block.</summary>
    public static long ForwardBlocks(long rows) => (rows + Warps - 1) / Warps;

    /// <summary>layer_norm_backward's grid (at most 4 blocks a multiprocessor, each summing its rows' weight and bias
    /// gradients into a partial row) and its shared memory (a row of partials per warp).</summary>
    public static long BackwardBlocks(long rows, int multiprocessors) => Math.Min((rows + Warps - 1) / Warps, 4L * multiprocessors);
    public static int BackwardSharedBytes(long d) => Warps * (int)d * sizeof(float);

    /// <summary>column_sums' grid: 32 columns a block, once for the weight's partials and once for the bias's.</summary>
    public static long ColumnSumBlocks(long d) => 2 * ((d + 31) / 32);

    /// <summary>What a kernel reads: contiguous, four elements a load.</summary>
    static Tensor Aligned(Tensor t) => GpuKernels.AlignedContiguous(t, 4 * (int)t.element_size());

    /// <summary>y (and mean, rstd) of x, or of x + h into sum when h is given.</summary>
    static (Tensor Y, Tensor Mean, Tensor Rstd) Forward(Tensor x, Tensor? h, Tensor? sum, Tensor weight, Tensor bias, ScalarType output, double eps)
    {
        long d = x.shape[^1], rows = x.numel() / d;
        var y = empty(x.shape, dtype: output, device: x.device);
        var mean = empty(rows, dtype: ScalarType.Float32, device: x.device);
        var rstd = empty(rows, dtype: ScalarType.Float32, device: x.device);
        GpuKernels.Launch(x.device, $"layer_norm_forward_{Variant(d)}", ForwardBlocks(rows), Threads, 0,
            GpuKernels.Ptr(x), h is null ? 0 : GpuKernels.Ptr(h), h is null ? 0 : GpuKernels.Bf16(h.dtype), sum is null ? 0 : GpuKernels.Ptr(sum),
            GpuKernels.Ptr(weight), GpuKernels.Ptr(bias), GpuKernels.Ptr(y), GpuKernels.Ptr(mean), GpuKernels.Ptr(rstd),
            GpuKernels.Int(rows), GpuKernels.Int(d), GpuKernels.Float(eps), GpuKernels.Bf16(output));
        return (y, mean, rstd);
    }

    /// <summary>dx (fp32; plus dres, and copied into dh when given), and the weight and bias gradients.</summary>
    static (Tensor Dx, Tensor Dw, Tensor Db) Backward(Tensor dy, Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor? dres, Tensor? dh)
    {
        long d = x.shape[^1], rows = x.numel() / d;
        var dx = empty(x.shape, dtype: ScalarType.Float32, device: x.device);
        long blocks = BackwardBlocks(rows, GpuKernels.Multiprocessors(x.device));
        using var dwPart = empty(blocks, d, dtype: ScalarType.Float32, device: x.device);
        using var dbPart = empty(blocks, d, dtype: ScalarType.Float32, device: x.device);
        GpuKernels.Launch(x.device, $"layer_norm_backward_{Variant(d)}", blocks, Threads, BackwardSharedBytes(d),
            GpuKernels.Ptr(dy), GpuKernels.Bf16(dy.dtype), GpuKernels.Ptr(x), GpuKernels.Ptr(weight), GpuKernels.Ptr(mean), GpuKernels.Ptr(rstd),
            dres is null ? 0 : GpuKernels.Ptr(dres), GpuKernels.Ptr(dx), dh is null ? 0 : GpuKernels.Ptr(dh), dh is null ? 0 : GpuKernels.Bf16(dh.dtype),
            GpuKernels.Ptr(dwPart), GpuKernels.Ptr(dbPart), GpuKernels.Int(rows), GpuKernels.Int(d));
        var dw = empty(d, dtype: ScalarType.Float32, device: x.device);
        var db = empty(d, dtype: ScalarType.Float32, device: x.device);
        GpuKernels.Launch(x.device, "column_sums", ColumnSumBlocks(d), Threads, 0,
            GpuKernels.Ptr(dwPart), GpuKernels.Ptr(dbPart), GpuKernels.Ptr(dw), GpuKernels.Ptr(db), GpuKernels.Int(blocks), GpuKernels.Int(d));
        return (dx, dw, db);
    }

    /// <summary>y = ln(x): inputs x, weight, bias, output dtype, ε.</summary>
    public sealed class Plain : SingleTensorFunction<Plain>
    {
        public override string Name => "FusedLayerNorm";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var (x, weight, bias, output, eps) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (ScalarType)vars[3], (double)vars[4]);
            var xc = Aligned(x);
            var (y, mean, rstd) = Forward(xc, null, null, weight, bias, output, eps);
            ctx.save_for_backward([xc, weight, mean, rstd]);
            return y;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
        {
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            using var dy = Aligned(gradOutput);
            var (dx, dw, db) = Backward(dy, saved[0], saved[1], saved[2], saved[3], null, null);
            foreach (var s in saved) s.Dispose();
            return GradientHandoff.Return([gradOutput], dx, dw, db, null, null);
        }
    }

    /// <summary>(u, y) = (x + h, ln(x + h)): inputs x, h, weight, bias, output dtype, ε. The gradient reaching u along the
    /// stream joins the normalisation's in the backward kernel, which writes it for x (fp32) and h (h's dtype).</summary>
    public sealed class Residual : MultiTensorFunction<Residual>
    {
        public override string Name => "FusedAddLayerNorm";

        public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
        {
            var (x, h, weight, bias, output, eps) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3], (ScalarType)vars[4], (double)vars[5]);
            using var xc = Aligned(x);
            using var hc = Aligned(h);
            var sum = empty(x.shape, dtype: ScalarType.Float32, device: x.device);
            var (y, mean, rstd) = Forward(xc, hc, sum, weight, bias, output, eps);
            ctx.save_for_backward([sum, weight, mean, rstd]);
            ctx.save_data("branch", h.dtype);
            return [sum, y];
        }

        public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grads)
        {
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            using var dres = Aligned(grads[0]);
            using var dy = Aligned(grads[1]);
            var dh = empty(saved[0].shape, dtype: (ScalarType)ctx.get_data("branch"), device: dy.device);
            var (dx, dw, db) = Backward(dy, saved[0], saved[1], saved[2], saved[3], dres, dh);
            foreach (var s in saved) s.Dispose();
            return GradientHandoff.Return(grads, dx, dh, dw, db, null, null);
        }
    }
}
