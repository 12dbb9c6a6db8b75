using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace MoTLab.Training.Model.Cpu;

/// <summary>Causal multi-head attention in fp32 on one CPU thread, read straight from the fused QKV projection's output.
/// Per (example, head): the scores, the softmax and the weighted sum over a padded copy of that head (a few tens of KiB
/// at the tiny presets' shapes, so it stays in cache); per query only the log-sum-exp is kept, and the backward
/// recomputes the probabilities from it, as flash attention does. No layout copies around it: q, k and v are read where
/// the projection wrote them, the output is written as (B, T, d), the gradient as (B, T, 3·d). libtorch's CPU flash
/// kernel calls a GEMM per block of 32 queries, which at head size 16 and length 64 costs several times the arithmetic.
/// Used where <see cref="CpuKernels.Supports"/>, no attention dropout is wanted and T ≤ <see cref="MaxLength"/>.</summary>
public sealed unsafe class CpuCausalAttention : SingleTensorFunction<CpuCausalAttention>
{
    const int L = CpuKernels.L;

    /// <summary>Longest sequence it takes: its working memory holds two (T, T) score matrices (8 MiB at 1,024), and at
    /// 1,024 on one thread it is no faster than scaled_dot_product_attention any more.</summary>
    public const int MaxLength = 1024;

    /// <param name="qkv">(B, T, 3·d): q, then k, then v, each H heads of d/H values</param>
    /// <returns>(B, T, d) softmax(q·kᵀ/√(d/H), causal)·v, heads side by side</returns>
    public static Tensor Apply(Tensor qkv, int heads)
    {
        long d3 = qkv.shape[^1];
        if (qkv.dim() != 3 || qkv.dtype != ScalarType.Float32 || heads <= 0 || d3 % (3 * heads) != 0 || d3 / 3 / heads % L != 0 || qkv.shape[1] > MaxLength)
            throw new ArgumentException($"{nameof(CpuCausalAttention)}: needs fp32 (B, T, 3·d), d/heads a multiple of {L}, T ≤ {MaxLength}; " +
                $"got {qkv.dtype} {string.Join('×', qkv.shape)}, {heads} heads");
        return apply(qkv.contiguous(), heads);
    }

    public override string Name => nameof(CpuCausalAttention);

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (qkv, heads) = ((Tensor)vars[0], (int)vars[1]);
        long B = qkv.shape[0], T = qkv.shape[1], d = qkv.shape[2] / 3;
        var y = empty(B, T, d);                                           // (B, T, d)
        var lse = empty(B, heads, T);                                     // (B, H, T) log Σ exp(score) per query
        new Call(qkv, heads, y, lse).Run(backward: false);
        ctx.save_for_backward([qkv, y, lse]);
        ctx.save_data("heads", heads);
        return y;
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        using var dy = gradOutput.contiguous();                          // (B, T, d)
        var dqkv = empty_like(saved[0]);                                  // (B, T, 3·d) every value written
        new Call(saved[0], (int)ctx.get_data("heads"), saved[1], saved[2], dy, dqkv).Run(backward: true);
        foreach (var t in saved) t.Dispose();
        return [dqkv, null!];
    }

    /// <summary>One forward or backward: the tensors' memory, their shapes, and the work per (example, head).</summary>
    readonly struct Call(Tensor qkv, int heads, Tensor y, Tensor lse, Tensor? dy = null, Tensor? dqkv = null)
    {
        readonly float* qkv = CpuKernels.Ptr(qkv), y = CpuKernels.Ptr(y), lse = CpuKernels.Ptr(lse);
        readonly float* dy = dy is null ? null : CpuKernels.Ptr(dy), dqkv = dqkv is null ? null : CpuKernels.Ptr(dqkv);
        readonly int B = (int)qkv.shape[0], T = (int)qkv.shape[1], D = (int)qkv.shape[2] / 3, H = heads, Hd = (int)qkv.shape[2] / 3 / heads;
        readonly int Row3 = (int)qkv.shape[2], Tp = ((int)qkv.shape[1] + 15) / 16 * 16;  // T rounded up to a multiple of 16
        readonly float Scale = 1 / MathF.Sqrt((int)qkv.shape[2] / 3 / heads);

        public void Run(bool backward)
        {
            var scratch = (float*)NativeMemory.AlignedAlloc((nuint)(Scratch.Floats(Tp, Hd) * sizeof(float)), 64);
            try
            {
                for (int b = 0; b < B; b++)
                    for (int h = 0; h < H; h++)
                        if (backward) Backward(b, h, scratch); else Forward(b, h, scratch);
            }
            finally { NativeMemory.AlignedFree(scratch); }
        }

        float* Row(float* t, int b, int i, int width = 0) => t + ((long)b * T + i) * (width == 0 ? Row3 : width);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Forward(int b, int h, float* scratch)
        {
            int t = T, tp = Tp, hd = Hd;
            var w = new Scratch(scratch, tp, hd);
            float* q0 = Row(qkv, b, 0) + h * hd;                                            // this head's q in row 0
            AttentionKernels.Gather(q0, Row3, t, tp, hd, w.Q);
            AttentionKernels.GatherTransposed(q0 + D, Row3, t, tp, hd, w.Kt);
            AttentionKernels.Gather(q0 + 2 * D, Row3, t, tp, hd, w.V);
            AttentionKernels.RowsTimesColumns(w.Q, w.Kt, hd, tp, t, Scale, w.S);          // (Tp, Tp) scores
            Softmax(w.S, t, tp, w.Lse, w.Normaliser);                                      // S ← exp(S − max), causal
            new Span<float>(w.Lse, t).CopyTo(new Span<float>(lse + ((long)b * H + h) * t, t));
            AttentionKernels.WeightsTimesRows(w.S, tp, w.V, hd, t, w.Out);                    // (Tp, hd) unnormalised
            AttentionKernels.Scatter(w.Out, t, hd, Row(y, b, 0, D) + h * hd, D, w.Normaliser);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Backward(int b, int h, float* scratch)
        {
            int t = T, tp = Tp, hd = Hd;
            var w = new Scratch(scratch, tp, hd);
            float* q0 = Row(qkv, b, 0) + h * hd, dq0 = Row(dqkv, b, 0) + h * hd;
            AttentionKernels.Gather(q0, Row3, t, tp, hd, w.Q);
            AttentionKernels.Gather(q0 + D, Row3, t, tp, hd, w.K);
            AttentionKernels.GatherTransposed(q0 + D, Row3, t, tp, hd, w.Kt);
            AttentionKernels.GatherTransposed(q0 + 2 * D, Row3, t, tp, hd, w.Vt);
            AttentionKernels.Gather(Row(dy, b, 0, D) + h * hd, D, t, tp, hd, w.DO);
            AttentionKernels.RowsTimesColumns(w.Q, w.Kt, hd, tp, t, Scale, w.S);          // scores
            AttentionKernels.RowsTimesColumns(w.DO, w.Vt, hd, tp, t, 1, w.DS);              // dP = dO·vᵀ
            for (int i = 0; i < t; i++) w.Normaliser[i] = CpuKernels.Dot(w.DO + i * hd, Row(y, b, i, D) + h * hd, hd); // dO_i · o_i
            SoftmaxBackward(w.S, w.DS, lse + ((long)b * H + h) * t, w.Normaliser, t, tp, Scale);
            AttentionKernels.WeightsTimesRows(w.DS, tp, w.K, hd, t, w.Out);                   // dq = dS·k
            AttentionKernels.Scatter(w.Out, t, hd, dq0, Row3);
            AttentionKernels.TransposedWeightsTimesRows(w.DS, tp, w.Q, hd, t, w.Out);         // dk = dSᵀ·q
            AttentionKernels.Scatter(w.Out, t, hd, dq0 + D, Row3);
            AttentionKernels.TransposedWeightsTimesRows(w.S, tp, w.DO, hd, t, w.Out);         // dv = Pᵀ·dO
            AttentionKernels.Scatter(w.Out, t, hd, dq0 + 2 * D, Row3);
        }
    }

    /// <summary>s ← exp(s − rowmax) on the causal part (0 past the diagonal); per row the log-sum-exp and 1 / Σ exp.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Softmax(float* s, int t, int tp, float* lse, float* normaliser)
    {
        // the maxima in a pass of their own: they do not depend on each other, so the CPU overlaps them
        for (int i = 0; i < t; i++) lse[i] = RowMax(s + i * tp, i);
        for (int i = 0; i < t; i++)
        {
            float* si = s + i * tp;
            var (m, sum) = (Vector256.Create(lse[i]), Vector256<float>.Zero);
            for (int j = 0; j <= i; j += L)
            {
                var e = CpuKernels.Exp(Causal(si, j, i) - m);
                e.Store(si + j); sum += e;
            }
            normaliser[i] = Vector256.Sum(sum);
        }
        new Span<float>(normaliser + t, tp - t).Fill(1);
        for (int i = 0; i < tp; i += L)
        {
            var l = Vector256.Load(normaliser + i);
            (Vector256.Load(lse + i) + Vector256.Log(l)).Store(lse + i);
            (Vector256<float>.One / l).Store(normaliser + i);
        }
    }

    /// <summary>From the scores s and dP = dO·vᵀ: s ← P = exp(s − lse) and dP ← dS·scale = P∘(dP − d)·scale, causal.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void SoftmaxBackward(float* s, float* dp, float* lse, float* d, int t, int tp, float scale)
    {
        for (int i = 0; i < t; i++)
        {
            float* si = s + i * tp, dpi = dp + i * tp;
            var (li, di) = (Vector256.Create(lse[i]), Vector256.Create(d[i]));
            for (int j = 0; j <= i; j += L)
            {
                var p = CpuKernels.Exp(Causal(si, j, i) - li);                         // 0 past i
                p.Store(si + j);
                (p * (Vector256.Load(dpi + j) - di) * scale).Store(dpi + j);
            }
        }
    }

    /// <summary>row[j…j+8) with the keys after query i set to −∞.</summary>
    static Vector256<float> Causal(float* row, int j, int i)
    {
        var v = Vector256.Load(row + j);
        if (j + L <= i + 1) return v;
        var future = Vector256.GreaterThan(Vector256.Create(j) + Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(i));
        return Vector256.ConditionalSelect(future.AsSingle(), Vector256.Create(float.NegativeInfinity), v);
    }

    /// <summary>max of row[0…i].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float RowMax(float* row, int i)
    {
        var m = Vector256.Create(float.NegativeInfinity);
        for (int j = 0; j <= i; j += L) m = Vector256.Max(m, Causal(row, j, i));
        return CpuKernels.HorizontalMax(m);
    }

    /// <summary>Working memory for one head: padded rows (Tp, hd) of q, k, v, dO and an output; k and v transposed
    /// (hd, Tp); scores or probabilities and their gradient (Tp, Tp); two values per query.</summary>
    readonly struct Scratch(float* m, int tp, int hd)
    {
        public readonly float* Q = m, K = m + tp * hd, V = m + 2 * tp * hd, DO = m + 3 * tp * hd, Out = m + 4 * tp * hd,
            Kt = m + 5 * tp * hd, Vt = m + 6 * tp * hd, S = m + 7 * tp * hd, DS = m + 7 * tp * hd + tp * tp,
            Lse = m + 7 * tp * hd + 2 * tp * tp, Normaliser = m + 7 * tp * hd + 2 * tp * tp + tp;
        public static long Floats(int tp, int hd) => 7L * tp * hd + 2L * tp * tp + 2L * tp;
    }


}
