using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace MoTLab.Training.Model.Gpu;

/// <summary>Token-choice and expert-choice MoE's dispatch into expert slots and combine back, on the fused CUDA kernels
/// (<c>gather_rows</c>, <c>segment_sum_rows</c>, <c>row_dots</c> in kernels.cu), both directions gathers: libtorch's
/// index_copy, index_add and index_select backward scatter with atomic adds, which in bf16 are compare-and-swap loops
/// (medium-moe on an NVIDIA H200: 0.54 ms for the index_copy of a layer's forward and 1.1 ms for an index_select's
/// backward; medium-ec: 0.25 ms for each fp32 index_add). Every row a segment sums is listed once in its
/// <see cref="Segments"/>, so the sums need no atomics, and the order of each sum is fixed. The kernels round what they
/// read to bf16 and sum in fp32, as libtorch's bf16 ops do; a bf16 result is rounded once, an fp32 sum (a token's
/// gradient over its slots) is kept as it is.</summary>
public static class GpuRouting
{
    /// <summary>Rows grouped into segments, one per output row: segment n lists the rows <c>order[q]</c> for q in
    /// [start[n], start[n + 1]), or in [n·k, n·k + k) when <paramref name="Start"/> is null; an order of −1 is skipped.</summary>
    /// <param name="Start">(N + 1) int64, or null for k rows each</param>
    /// <param name="Order">(Σ lengths) int64</param>
    public sealed record Segments(Tensor? Start, int K, Tensor Order)
    {
        public long Count => Start is null ? Order.shape[0] / K : Start.shape[0] - 1;

        /// <summary>The layout the kernel reads: contiguous 1-D int64 arrays, and k rows each without starts.</summary>
        public void Check(string what)
        {
            static bool Indices(Tensor t) => t.dim() == 1 && t.dtype == ScalarType.Int64 && t.is_contiguous();
            if (!(Indices(Order) && (Start is null ? K > 0 && Order.shape[0] % K == 0 : Indices(Start) && Start.shape[0] > 0)))
                throw new ArgumentException($"routing kernels, {what}: segments need contiguous 1-D int64 order and starts (or k > 0 dividing " +
                    $"the order's length); got order {Order.dtype} {string.Join('×', Order.shape)}, " +
                    $"{(Start is null ? $"k {K}" : $"starts {Start.dtype} {string.Join('×', Start.shape)}")}");
        }
    }

    /// <summary>Whether the kernels take rows of <paramref name="x"/> (·, d) for experts computing in
    /// <paramref name="compute"/>: on a device where the kernels run, bf16 experts, fp32 or bf16 rows, d a multiple of 4.</summary>
    public static bool Supports(Tensor x, ScalarType compute) =>
        compute == ScalarType.BFloat16 && GpuKernels.Enabled(x.device) && (x.dtype == ScalarType.Float32 || x.dtype == ScalarType.BFloat16)
        && x.shape[^1] % 4 == 0;

    /// <summary>Dispatch: out[r] = src[index[r]] in bf16 (index −1: a zero row). Backward: src's gradient at row n is the
    /// sum of the output's gradient over segment n of <paramref name="back"/>, which must list every r with index[r] = n.</summary>
    /// <param name="src">(N, d) fp32 or bf16</param>
    /// <param name="index">(R) int64</param>
    /// <returns>(R, d) bf16</returns>
    public static Tensor Gather(Tensor src, Tensor index, Segments back) => GatherFunction.apply(src, index, back);

    /// <summary>Combine: out[n] = Σ over segment n of scale[r] · src[r] in bf16. Backward: src's gradient at row r is
    /// scale[r] times the output's gradient at owner[r] (the segment r is in, −1: none), scale's is their dot product.</summary>
    /// <param name="src">(R, d) bf16 expert outputs</param>
    /// <param name="scale">(R) fp32 weight of each</param>
    /// <param name="owner">(R) int64</param>
    /// <returns>(N, d) bf16</returns>
    public static Tensor Combine(Tensor src, Tensor scale, Segments segments, Tensor owner) => CombineFunction.apply(src, scale, segments, owner);

    static Tensor Rows(Tensor t) => GpuKernels.AlignedContiguous(t, 16);
    /// <summary>gather_rows' and segment_sum_rows' grid: blocks of 256 threads, a thread per 4 columns of an output row
    /// (the kernels stride over the rest past int.MaxValue blocks).</summary>
    public static long RowBlocks(long rows, long d) => Math.Max(1, Math.Min((rows * (d / 4) + 255) / 256, int.MaxValue));

    /// <summary>row_dots' grid: blocks of 256 threads, a warp per row.</summary>
    public static long DotBlocks(long rows) => Math.Max(1, (rows * 32 + 255) / 256);

    static void Check(Tensor rows, Tensor? index, string what)
    {
        if (!(rows.dim() == 2 && rows.shape[1] % 4 == 0 && (rows.dtype == ScalarType.Float32 || rows.dtype == ScalarType.BFloat16)
              && (index is null || (index.dim() == 1 && index.dtype == ScalarType.Int64))))
            throw new ArgumentException($"routing kernels, {what}: need fp32 or bf16 rows (·, d) with d a multiple of 4 and an int64 index (·); " +
                $"got {rows.dtype} rows {string.Join('×', rows.shape)}{(index is null ? "" : $", {index.dtype} index {string.Join('×', index.shape)}")}");
    }

    static void GatherRows(Tensor src, Tensor index, Tensor? scale, Tensor output)
    {
        long rows = output.shape[0], d = output.shape[1];
        GpuKernels.Launch(src.device, "gather_rows", RowBlocks(rows, d), 256, 0, GpuKernels.Ptr(src), GpuKernels.Bf16(src.dtype), GpuKernels.Ptr(index),
            scale is null ? 0 : GpuKernels.Ptr(scale), GpuKernels.Ptr(output), GpuKernels.Bf16(output.dtype), rows, GpuKernels.Int(d));
    }

    static void SegmentSums(Tensor src, Segments s, Tensor? scale, Tensor output)
    {
        long rows = output.shape[0], d = output.shape[1];
        GpuKernels.Launch(src.device, "segment_sum_rows", RowBlocks(rows, d), 256, 0, GpuKernels.Ptr(src), GpuKernels.Bf16(src.dtype),
            s.Start is null ? 0 : GpuKernels.Ptr(s.Start), s.K, GpuKernels.Ptr(s.Order), scale is null ? 0 : GpuKernels.Ptr(scale),
            GpuKernels.Ptr(output), GpuKernels.Bf16(output.dtype), rows, GpuKernels.Int(d));
    }

    sealed class GatherFunction : SingleTensorFunction<GatherFunction>
    {
        public override string Name => "RoutingGather";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var (src, index, back) = (Rows((Tensor)vars[0]), ((Tensor)vars[1]).contiguous(), (Segments)vars[2]);
            Check(src, index, "gather");
            back.Check("gather");
            if (back.Count != src.shape[0]) throw new ArgumentException($"routing kernels, gather: {back.Count} segments for {src.shape[0]} rows");
            var output = empty(index.shape[0], src.shape[1], dtype: ScalarType.BFloat16, device: src.device);
            GatherRows(src, index, null, output);
            // the segments' tensors live in the caller's dispose scope, which (the training step's) outlasts the backward
            ctx.save_data("back", back); ctx.save_data("dtype", src.dtype);
            return output;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
        {
            using var scope = NewDisposeScope();
            var back = (Segments)ctx.get_data("back");
            var dout = Rows(gradOutput);
            var dsrc = empty(back.Count, dout.shape[1], dtype: (ScalarType)ctx.get_data("dtype"), device: dout.device);
            SegmentSums(dout, back, null, dsrc);
            return GradientHandoff.Return([gradOutput], dsrc, null, null);
        }
    }

    sealed class CombineFunction : SingleTensorFunction<CombineFunction>
    {
        public override string Name => "RoutingCombine";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var (src, scale, segments, owner) = (Rows((Tensor)vars[0]), ((Tensor)vars[1]).contiguous(), (Segments)vars[2], ((Tensor)vars[3]).contiguous());
            Check(src, owner, "combine");
            segments.Check("combine");
            if (!(scale.dtype == ScalarType.Float32 && scale.shape.SequenceEqual([src.shape[0]]) && owner.shape[0] == src.shape[0]))
                throw new ArgumentException($"routing kernels, combine: need an fp32 scale and an owner per row of {src.shape[0]}; " +
                    $"got {scale.dtype} scale {string.Join('×', scale.shape)}, owner {string.Join('×', owner.shape)}");
            var output = empty(segments.Count, src.shape[1], dtype: ScalarType.BFloat16, device: src.device);
            SegmentSums(src, segments, scale, output);
            ctx.save_for_backward([src, scale, owner]);
            return output;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
        {
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            var (src, scale, owner) = (saved[0], saved[1], saved[2]);
            var dout = Rows(gradOutput);
            var dsrc = empty_like(src);
            GatherRows(dout, owner, scale, dsrc);                                   // dsrc[r] = scale[r] · dout[owner[r]]
            var dscale = empty_like(scale);
            long rows = src.shape[0];
            GpuKernels.Launch(src.device, "row_dots", DotBlocks(rows), 256, 0, GpuKernels.Ptr(dout), GpuKernels.Bf16(dout.dtype), GpuKernels.Ptr(owner),
                GpuKernels.Ptr(src), GpuKernels.Bf16(src.dtype), GpuKernels.Ptr(dscale), rows, GpuKernels.Int(src.shape[1]));   // dscale[r] = dout[owner[r]] · src[r]
            foreach (var t in saved) t.Dispose();
            return GradientHandoff.Return([gradOutput], dsrc, dscale, null, null);
        }
    }
}
