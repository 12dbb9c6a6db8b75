using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;
using V = System.Runtime.Intrinsics.Vector256<float>;

namespace MoTLab.Training.Model.Cpu;

/// <summary>Token-choice and expert-choice routing in fp32 on one CPU thread (<see cref="CpuKernels.Supports"/>), for
/// E a multiple of 8: each token's E router logits fit in whole vectors, so the (N, d)·(d, E) product, the softmax over
/// experts and their backward run in registers. libtorch takes a GEMM with 8 output columns (under 20 GFLOP/s) and a
/// slow path for a softmax over fewer than 16 values (docs/benchmarks.md, CPU). <see cref="Slots"/> replaces the dozen
/// small integer operations of the capacity assignment with one pass.</summary>
public static unsafe class CpuRouting
{
    const int L = CpuKernels.L;

    /// <summary><see cref="CpuKernels.Supports"/> over the experts: the width vectorised is E, any d works.</summary>
    public static bool Supports(Tensor x, int experts, int threads) => CpuKernels.Supports(x.device_type, x.dtype, experts, threads);

    /// <param name="x">(N, d) tokens</param>
    /// <param name="router">(d, E) router weight</param>
    /// <returns>(N, E) softmax over experts of x·router</returns>
    public static Tensor Probabilities(Tensor x, Tensor router)
    {
        if (!(x.dim() == 2 && router.dim() == 2 && x.shape[1] == router.shape[0] && router.shape[1] % L == 0
            && x.dtype == ScalarType.Float32 && router.dtype == ScalarType.Float32))
            throw new ArgumentException($"router softmax: needs fp32 x (N, d) and router (d, E), E a multiple of {L}; got {x.dtype} {string.Join('×', x.shape)}, {router.dtype} {string.Join('×', router.shape)}");
        return ProbabilitiesFunction.apply(x.contiguous(), router.contiguous());
    }

    /// <summary>Capacity assignment of token-choice: assignment a (first choices of all tokens, then second choices, …,
    /// in token order) takes the next free slot of its expert, or is dropped when the expert holds C already.</summary>
    /// <param name="choice">(N, k) int64 chosen experts per token</param>
    /// <returns>slot (k·N) int64, e·C + position or E·C when dropped; counts (E) fp32, assignments per expert before dropping
    /// (counted in int64)</returns>
    public static (Tensor Slot, Tensor Counts) Slots(Tensor choice, int experts, int capacity)
    {
        if (choice.dim() != 2 || choice.dtype != ScalarType.Int64)
            throw new ArgumentException($"capacity slots: needs int64 choices (N, k); got {choice.dtype} {string.Join('×', choice.shape)}");
        using var c = choice.contiguous();
        long n = c.shape[0], k = c.shape[1];
        var slot = empty(k * n, dtype: ScalarType.Int64);
        var counts = zeros(experts, dtype: ScalarType.Int64);
        long* pc = CpuKernels.Ptr<long>(c), ps = CpuKernels.Ptr<long>(slot), pn = CpuKernels.Ptr<long>(counts);
        for (long r = 0; r < k; r++)
            for (long t = 0; t < n; t++)
            {
                long e = pc[t * k + r];
                if (e < 0 || e >= experts) throw new ArgumentException($"capacity slots: expert {e} chosen, but there are {experts}");
                ps[r * n + t] = pn[e] < capacity ? e * capacity + pn[e] : (long)experts * capacity;
                pn[e]++;
            }
        return (slot, counts.to_type(ScalarType.Float32));
    }

    sealed class ProbabilitiesFunction : SingleTensorFunction<ProbabilitiesFunction>
    {
        public override string Name => "RouterSoftmax";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var (x, w) = ((Tensor)vars[0], (Tensor)vars[1]);
            int n = (int)x.shape[0], d = (int)x.shape[1], e = (int)w.shape[1];
            var p = empty(n, e);
            Forward(CpuKernels.Ptr(x), CpuKernels.Ptr(w), n, d, e, CpuKernels.Ptr(p));
            ctx.save_for_backward([x, w, p]);
            return p;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var (x, w, p) = (saved[0], saved[1], saved[2]);
            int n = (int)x.shape[0], d = (int)x.shape[1], e = (int)w.shape[1];
            using var dp = gradOutput.contiguous();
            var (dx, dw) = (empty_like(x), empty_like(w));
            using var g = empty_like(p);                                      // (N, E) gradient of the logits
            using var wt = w.t().contiguous();                                // (E, d)
            Backward(CpuKernels.Ptr(x), CpuKernels.Ptr(wt), CpuKernels.Ptr(p), CpuKernels.Ptr(dp), n, d, e, CpuKernels.Ptr(g), CpuKernels.Ptr(dx), CpuKernels.Ptr(dw));
            foreach (var t in saved) t.Dispose();
            return [dx, dw];
        }
    }

    /// <summary>p = softmax(x·w) over each row: the product four tokens at a time (independent FMA chains), then the
    /// softmax of each token's E/8 vectors in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Forward(float* x, float* w, int n, int d, int e, float* p)
    {
        for (int t0 = 0; t0 < n; t0 += 4)
        {
            int rows = Math.Min(4, n - t0);
            float* x0 = x + (long)t0 * d, x1 = x0 + (rows > 1 ? d : 0), x2 = x0 + (rows > 2 ? 2 * d : 0), x3 = x0 + (rows > 3 ? 3 * d : 0);
            for (int v = 0; v < e; v += L)
            {
                V a0 = default, a1 = default, a2 = default, a3 = default;
                for (int c = 0; c < d; c++)
                {
                    var wc = Vector256.Load(w + c * e + v);
                    a0 = Vector256.FusedMultiplyAdd(Vector256.Create(x0[c]), wc, a0); a1 = Vector256.FusedMultiplyAdd(Vector256.Create(x1[c]), wc, a1);
                    a2 = Vector256.FusedMultiplyAdd(Vector256.Create(x2[c]), wc, a2); a3 = Vector256.FusedMultiplyAdd(Vector256.Create(x3[c]), wc, a3);
                }
                float* o = p + (long)t0 * e + v;
                a0.Store(o);
                if (rows > 1) a1.Store(o + e);
                if (rows > 2) a2.Store(o + 2 * e);
                if (rows > 3) a3.Store(o + 3 * e);
            }
        }
        for (int t = 0; t < n; t++)
        {
            float* pt = p + (long)t * e;
            var max = Vector256.Load(pt);
            for (int v = L; v < e; v += L) max = Vector256.Max(max, Vector256.Load(pt + v));
            var (m, sum) = (Vector256.Create(CpuKernels.HorizontalMax(max)), V.Zero);
            for (int v = 0; v < e; v += L) { var z = CpuKernels.Exp(Vector256.Load(pt + v) - m); z.Store(pt + v); sum += z; }
            var inverse = Vector256.Create(1 / Vector256.Sum(sum));
            for (int v = 0; v < e; v += L) (Vector256.Load(pt + v) * inverse).Store(pt + v);
        }
    }

    /// <summary>g = p∘(dp − p·dp) per token (the logits' gradient), then dx = g·wᵀ token by token from w transposed
    /// (wt, (E, d)), and dw = xᵀ·g four rows of w at a time over all tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Backward(float* x, float* wt, float* p, float* dp, int n, int d, int e, float* g, float* dx, float* dw)
    {
        for (int t = 0; t < n; t++)
        {
            float* pt = p + (long)t * e, dpt = dp + (long)t * e, gt = g + (long)t * e;
            var s = Vector256.Create(CpuKernels.Dot(pt, dpt, e));
            for (int v = 0; v < e; v += L) (Vector256.Load(pt + v) * (Vector256.Load(dpt + v) - s)).Store(gt + v);
            float* dxt = dx + (long)t * d;
            int c = 0;
            for (; c + L <= d; c += L)                                          // dx[t, c…c+8) = Σ_e g[t, e]·wt[e, c…c+8)
            {
                var acc = V.Zero;
                for (int j = 0; j < e; j++) acc = Vector256.FusedMultiplyAdd(Vector256.Create(gt[j]), Vector256.Load(wt + j * d + c), acc);
                acc.Store(dxt + c);
            }
            for (; c < d; c++)
            {
                float acc = 0;
                for (int j = 0; j < e; j++) acc += gt[j] * wt[j * d + c];
                dxt[c] = acc;
            }
        }
        for (int c0 = 0; c0 < d; c0 += 4)                                      // dw[c] = Σ_t x[t, c]·g[t]
            for (int v = 0; v < e; v += L)
            {
                int rows = Math.Min(4, d - c0);
                V a0 = default, a1 = default, a2 = default, a3 = default;
                for (int t = 0; t < n; t++)
                {
                    float* xt = x + (long)t * d + c0;
                    var gt = Vector256.Load(g + (long)t * e + v);
                    a0 = Vector256.FusedMultiplyAdd(Vector256.Create(xt[0]), gt, a0);
                    if (rows > 1) a1 = Vector256.FusedMultiplyAdd(Vector256.Create(xt[1]), gt, a1);
                    if (rows > 2) a2 = Vector256.FusedMultiplyAdd(Vector256.Create(xt[2]), gt, a2);
                    if (rows > 3) a3 = Vector256.FusedMultiplyAdd(Vector256.Create(xt[3]), gt, a3);
                }
                float* o = dw + c0 * e + v;
                a0.Store(o);
                if (rows > 1) a1.Store(o + e);
                if (rows > 2) a2.Store(o + 2 * e);
                if (rows > 3) a3.Store(o + 3 * e);
            }
    }
}
