using MoTLab.Training.Model.Gpu;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace MoTLab.Training.Model;

/// <summary>The output head and the mean next-token cross-entropy in one autograd function: mean over rows of
/// −log softmax(x Wᵀ)[target], the softmax computed in fp32. It never keeps the (N, V) logits: rows go through in chunks,
/// and when gradients are wanted each chunk's (softmax − onehot) is multiplied out into dx and dW right away, so the
/// backward only scales those by the incoming gradient. The vocabulary is padded to a multiple of 64 inside (the
/// padded logits are −∞): with V = 50,257 the unpadded matmuls fall back to slow unaligned kernels on CUDA.</summary>
public sealed class LinearCrossEntropy : SingleTensorFunction<LinearCrossEntropy>
{
    public const long DefaultChunkElements = 1L << 30;   // logits per chunk: 2 GiB in bf16, and as much for their softmax
    public override string Name => nameof(LinearCrossEntropy);

    /// <param name="x">(N, d) hidden states, any float dtype</param>
    /// <param name="weight">(V, d) head weight</param>
    /// <param name="targets">(N) int64 token ids</param>
    /// <param name="compute">dtype of the matmuls</param>
    /// <param name="chunkElements">at most this many logits exist at once (rows per chunk: a multiple of 128 when ≥ 128)</param>
    /// <returns>0-d fp32 mean cross-entropy, differentiable in x and weight</returns>
    public static Tensor Loss(Tensor x, Tensor weight, Tensor targets, ScalarType compute, long chunkElements = DefaultChunkElements) =>
        apply(x, weight, targets, compute, is_grad_enabled(), chunkElements);

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (x, weight, targets, compute, grad) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (ScalarType)vars[3], (bool)vars[4]);
        long chunkElements = (long)vars[5];
        bool needX = grad && x.requires_grad, needW = grad && weight.requires_grad;
        long n = x.shape[0], d = x.shape[1], vocab = weight.shape[0], padded = (vocab + 63) / 64 * 64;
        long chunk = Math.Max(1, chunkElements / padded);
        if (chunk >= 128) chunk = chunk / 128 * 128;

        using var scope = NewDisposeScope();
        var w = weight.to_type(compute);                                             // (V, d)
        if (padded > vocab) w = cat([w, zeros(padded - vocab, d, dtype: compute, device: w.device)]);   // (Vp, d)
        var xc = x.to_type(compute);                                                 // (N, d)
        var nll = zeros(Array.Empty<long>(), dtype: ScalarType.Float32, device: x.device);
        var dx = needX ? empty(n, d, dtype: compute, device: x.device) : null;     // (N, d)
        var dw = needW ? zeros(padded, d, dtype: ScalarType.Float32, device: x.device) : null;   // (Vp, d) fp32 sum

        for (long start = 0; start < n; start += chunk)
        {
            using var inner = NewDisposeScope();
            long rows = Math.Min(chunk, n - start);
            var xi = xc.narrow(0, start, rows);                                     // (n, d)
            var ti = targets.narrow(0, start, rows);                                // (n)
            var z = xi.mm(w.t());                                                   // (n, Vp) logits
            var p = SoftmaxMinusOneHot(z, ti, vocab, dx is not null || dw is not null, nll);   // (n, Vp) or null
            if (p is null) continue;
            dx?.narrow(0, start, rows).copy_(p.mm(w));                              // (n, d)
            dw?.add_(p.t().mm(xi));                                                 // (Vp, d)
        }
        double scale = 1.0 / n;
        var loss = nll.mul_(scale).MoveToOuterDisposeScope();
        var saved = new List<Tensor>();
        if (dx is not null) saved.Add(dx.mul_(scale).to_type(x.dtype).MoveToOuterDisposeScope());
        if (dw is not null) saved.Add(dw.narrow(0, 0, vocab).mul_(scale).to_type(weight.dtype).MoveToOuterDisposeScope());
        ctx.save_for_backward(saved);
        ctx.save_data("has", (dx is not null, dw is not null));
        return loss;
    }

    /// <summary>One chunk: adds its summed cross-entropy to <paramref name="nll"/> and, when <paramref name="wantGradient"/>,
    /// returns the logits' gradient softmax(z) − onehot(target) (zero in the padding). Where the fused kernels run and z
    /// is bf16, the kernel <c>cross_entropy_rows</c> does it in one read of z and one write over it, with the exact fp32
    /// log-sum-exp (on an NVIDIA H200 at GPT-2's vocabulary, about 0.9 ms for a chunk of 21,248 rows by the step's
    /// difference, where libtorch's max and softmax alone took 2.7 ms: docs/benchmarks.md); else libtorch does, with
    /// the log-sum-exp from the most likely token's probability.</summary>
    /// <param name="z">(n, Vp) logits, columns from <paramref name="vocab"/> on are padding; overwritten</param>
    /// <param name="targets">(n) int64</param>
    static Tensor? SoftmaxMinusOneHot(Tensor z, Tensor targets, long vocab, bool wantGradient, Tensor nll)
    {
        long rows = z.shape[0], padded = z.shape[1];
        if (rows > 0 && GpuKernels.Enabled(z.device) && z.dtype == ScalarType.BFloat16 && padded % 8 == 0 && targets.dtype == ScalarType.Int64
            && padded * 2 + StaticSharedBytes <= GpuKernels.MaxSharedBytes(z.device) && GpuKernels.Fits(z.device, 16, z) && GpuKernels.Fits(z.device, 8, targets))
        {
            var rowLoss = empty(rows, dtype: ScalarType.Float32, device: z.device);   // (n)
            GpuKernels.Launch(z.device, "cross_entropy_rows", rows, KernelThreads(padded), (int)(padded * 2), GpuKernels.Ptr(z), GpuKernels.Ptr(targets),
                GpuKernels.Ptr(rowLoss), GpuKernels.Int(vocab), GpuKernels.Int(padded), wantGradient ? 1 : 0);
            nll.add_(rowLoss.sum());
            return wantGradient ? z : null;
        }
        var ti = targets.unsqueeze(1);                                              // (n, 1)
        if (padded > vocab) z.narrow(1, vocab, padded - vocab).fill_(double.NegativeInfinity);
        var (zMax, argMax) = z.max(1, keepdim: true);                               // (n, 1) each
        var p = z.softmax(1);                                                       // (n, Vp) softmax in fp32, stored in z's dtype
        // log-sum-exp from the most likely token's probability (≥ 1/V, so it never underflows): one read of z
        // instead of an fp32 log-softmax over it. Stored in bf16, that probability adds at most 2⁻⁹ nats to a
        // token's loss, less than rounding its logits to bf16 already does (2⁻⁹ of their size); fp32 is exact.
        var lse = zMax.to_type(ScalarType.Float32) - p.gather(1, argMax).to_type(ScalarType.Float32).log();   // (n, 1)
        nll.add_((lse - z.gather(1, ti).to_type(ScalarType.Float32)).sum());
        z.Dispose();
        if (!wantGradient) return null;
        p.scatter_add_(1, ti, full(rows, 1, -1.0, dtype: p.dtype, device: p.device));
        return p;
    }

    const int StaticSharedBytes = 1024;   // the kernel's own shared memory (its reductions' 128 bytes), with room to spare

    /// <summary>The kernel's block for rows of <paramref name="padded"/> logits: a thread per 8 logits, from one warp up
    /// to 512 threads (two such blocks share a multiprocessor).</summary>
    public static int KernelThreads(long padded) =>
        (int)Math.Clamp(System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)Math.Max(padded / 8, 1)), 32, 512);

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var scope = NewDisposeScope();
        var (hasX, hasW) = ((bool, bool))ctx.get_data("has");
        var saved = ctx.get_saved_variables();
        Tensor? gx = hasX ? saved[0] * gradOutput : null;                        // (N, d)
        Tensor? gw = hasW ? saved[hasX ? 1 : 0] * gradOutput : null;             // (V, d)
        foreach (var s in saved) s.Dispose();
        return GradientHandoff.Return([gradOutput], gx, gw, null, null, null, null);
    }
}
