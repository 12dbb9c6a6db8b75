using MoTLab.Training.Model.Cpu;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using V = System.Runtime.Intrinsics.Vector256<float>;

namespace MoTLab.Training.Model;

/// <summary>The three small matrix products of one attention head on the CPU (<see cref="CpuCausalAttention"/>), on
/// padded row-major scratch: Tp rows (a multiple of 16, padding rows zero) of hd values (a multiple of 8). Each keeps a
/// 4-row block of its output in registers, so the operands are read once per block and the FMA chains stay independent.
/// Only the causal part is computed: row i of a score matrix needs columns 0…i.</summary>
static unsafe class AttentionKernels
{
    const int L = CpuKernels.L;

    /// <summary>c[i, j] = scale·Σ_c a[i, c]·bt[c, j] for every 4-row block i0 &lt; t and 16 columns at a time up to
    /// i0 + 4 (the causal part, rounded up). a: (Tp, k) rows; bt: (k, Tp) columns; c: (Tp, Tp).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RowsTimesColumns(float* a, float* bt, int k, int tp, int t, float scale, float* c)
    {
        for (int i0 = 0; i0 < t; i0 += 4)
            for (int j0 = 0; j0 < i0 + 4; j0 += 2 * L)
            {
                V c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
                float* ar = a + i0 * k;
                for (int x = 0; x < k; x++)
                {
                    float* b = bt + x * tp + j0;
                    V b0 = Vector256.Load(b), b1 = Vector256.Load(b + L), a0 = Vector256.Create(ar[x]), a1 = Vector256.Create(ar[k + x]);
                    c00 = Vector256.FusedMultiplyAdd(a0, b0, c00); c01 = Vector256.FusedMultiplyAdd(a0, b1, c01);
                    c10 = Vector256.FusedMultiplyAdd(a1, b0, c10); c11 = Vector256.FusedMultiplyAdd(a1, b1, c11);
                    V a2 = Vector256.Create(ar[2 * k + x]), a3 = Vector256.Create(ar[3 * k + x]);
                    c20 = Vector256.FusedMultiplyAdd(a2, b0, c20); c21 = Vector256.FusedMultiplyAdd(a2, b1, c21);
                    c30 = Vector256.FusedMultiplyAdd(a3, b0, c30); c31 = Vector256.FusedMultiplyAdd(a3, b1, c31);
                }
                float* o = c + i0 * tp + j0;
                (c00 * scale).Store(o); (c01 * scale).Store(o + L); o += tp;
                (c10 * scale).Store(o); (c11 * scale).Store(o + L); o += tp;
                (c20 * scale).Store(o); (c21 * scale).Store(o + L); o += tp;
                (c30 * scale).Store(o); (c31 * scale).Store(o + L);
            }
    }

    /// <summary>output[i] = Σ_{j &lt; i0+4} w[i, j]·rows[j] for every 4-row block i0 &lt; t (w is zero past the diagonal).
    /// w: (Tp, Tp); rows, output: (Tp, hd).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void WeightsTimesRows(float* w, int tp, float* rows, int hd, int t, float* output)
    {
        for (int i0 = 0; i0 < t; i0 += 4)
        {
            float* w0 = w + i0 * tp;
            for (int c = 0; c < hd; c += 2 * L)
            {
                bool two = c + L < hd;                                       // a second vector of columns
                V c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
                for (int j = 0; j < i0 + 4; j++)
                {
                    float* r = rows + j * hd + c;
                    V r0 = Vector256.Load(r), r1 = two ? Vector256.Load(r + L) : default;
                    V x0 = Vector256.Create(w0[j]), x1 = Vector256.Create(w0[tp + j]), x2 = Vector256.Create(w0[2 * tp + j]), x3 = Vector256.Create(w0[3 * tp + j]);
                    c00 = Vector256.FusedMultiplyAdd(x0, r0, c00); c01 = Vector256.FusedMultiplyAdd(x0, r1, c01);
                    c10 = Vector256.FusedMultiplyAdd(x1, r0, c10); c11 = Vector256.FusedMultiplyAdd(x1, r1, c11);
                    c20 = Vector256.FusedMultiplyAdd(x2, r0, c20); c21 = Vector256.FusedMultiplyAdd(x2, r1, c21);
                    c30 = Vector256.FusedMultiplyAdd(x3, r0, c30); c31 = Vector256.FusedMultiplyAdd(x3, r1, c31);
                }
                Store4(output + i0 * hd + c, hd, two, c00, c01, c10, c11, c20, c21, c30, c31);
            }
        }
    }

    /// <summary>output[j] = Σ_{j ≤ i &lt; t} w[i, j]·rows[i] for every 4-row block j0 &lt; t (w is zero past the diagonal):
    /// the transposed product, without transposing w. w: (Tp, Tp); rows, output: (Tp, hd).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TransposedWeightsTimesRows(float* w, int tp, float* rows, int hd, int t, float* output)
    {
        for (int j0 = 0; j0 < t; j0 += 4)
            for (int c = 0; c < hd; c += 2 * L)
            {
                bool two = c + L < hd;
                V c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
                for (int i = j0; i < t; i++)
                {
                    float* r = rows + i * hd + c, wi = w + i * tp + j0;
                    V r0 = Vector256.Load(r), r1 = two ? Vector256.Load(r + L) : default;
                    V x0 = Vector256.Create(wi[0]), x1 = Vector256.Create(wi[1]), x2 = Vector256.Create(wi[2]), x3 = Vector256.Create(wi[3]);
                    c00 = Vector256.FusedMultiplyAdd(x0, r0, c00); c01 = Vector256.FusedMultiplyAdd(x0, r1, c01);
                    c10 = Vector256.FusedMultiplyAdd(x1, r0, c10); c11 = Vector256.FusedMultiplyAdd(x1, r1, c11);
                    c20 = Vector256.FusedMultiplyAdd(x2, r0, c20); c21 = Vector256.FusedMultiplyAdd(x2, r1, c21);
                    c30 = Vector256.FusedMultiplyAdd(x3, r0, c30); c31 = Vector256.FusedMultiplyAdd(x3, r1, c31);
                }
                Store4(output + j0 * hd + c, hd, two, c00, c01, c10, c11, c20, c21, c30, c31);
            }
    }

    static void Store4(float* o, int hd, bool two, V c00, V c01, V c10, V c11, V c20, V c21, V c30, V c31)
    {
        c00.Store(o); c10.Store(o + hd); c20.Store(o + 2 * hd); c30.Store(o + 3 * hd);
        if (!two) return;
        c01.Store(o + L); c11.Store(o + hd + L); c21.Store(o + 2 * hd + L); c31.Store(o + 3 * hd + L);
    }

    /// <summary>(t rows `stride` apart, hd) → (Tp, hd) rows, padding rows zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Gather(float* source, long stride, int t, int tp, int hd, float* rows)
    {
        for (int i = 0; i < t; i++)
            for (int c = 0; c < hd; c += L) Vector256.Load(source + i * stride + c).Store(rows + i * hd + c);
        new Span<float>(rows + t * hd, (tp - t) * hd).Clear();
    }

    /// <summary>(t, hd) rows → t rows `stride` apart, each times its scale (or 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scatter(float* rows, int t, int hd, float* destination, long stride, float* scales = null)
    {
        for (int i = 0; i < t; i++)
        {
            var scale = Vector256.Create(scales is null ? 1 : scales[i]);
            for (int c = 0; c < hd; c += L) (Vector256.Load(rows + i * hd + c) * scale).Store(destination + i * stride + c);
        }
    }


    /// <summary>(t rows `stride` apart, hd) → (hd, Tp) columns, padding columns zero; 8 × 8 blocks in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GatherTransposed(float* source, long stride, int t, int tp, int hd, float* columns)
    {
        int full = t / L * L;
        for (int i = 0; i < full; i += L)
            for (int c = 0; c < hd; c += L)
            {
                float* r = source + i * stride + c;
                V t0 = Avx.UnpackLow(Avx.LoadVector256(r), Avx.LoadVector256(r + stride));
                V t1 = Avx.UnpackHigh(Avx.LoadVector256(r), Avx.LoadVector256(r + stride));
                V t2 = Avx.UnpackLow(Avx.LoadVector256(r + 2 * stride), Avx.LoadVector256(r + 3 * stride));
                V t3 = Avx.UnpackHigh(Avx.LoadVector256(r + 2 * stride), Avx.LoadVector256(r + 3 * stride));
                V t4 = Avx.UnpackLow(Avx.LoadVector256(r + 4 * stride), Avx.LoadVector256(r + 5 * stride));
                V t5 = Avx.UnpackHigh(Avx.LoadVector256(r + 4 * stride), Avx.LoadVector256(r + 5 * stride));
                V t6 = Avx.UnpackLow(Avx.LoadVector256(r + 6 * stride), Avx.LoadVector256(r + 7 * stride));
                V t7 = Avx.UnpackHigh(Avx.LoadVector256(r + 6 * stride), Avx.LoadVector256(r + 7 * stride));
                V u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
                V u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE), u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
                float* o = columns + c * tp + i;
                Avx.Permute2x128(u0, u4, 0x20).Store(o); Avx.Permute2x128(u1, u5, 0x20).Store(o + tp);
                Avx.Permute2x128(u2, u6, 0x20).Store(o + 2 * tp); Avx.Permute2x128(u3, u7, 0x20).Store(o + 3 * tp);
                Avx.Permute2x128(u0, u4, 0x31).Store(o + 4 * tp); Avx.Permute2x128(u1, u5, 0x31).Store(o + 5 * tp);
                Avx.Permute2x128(u2, u6, 0x31).Store(o + 6 * tp); Avx.Permute2x128(u3, u7, 0x31).Store(o + 7 * tp);
            }
        for (int c = 0; c < hd; c++)
        {
            for (int i = full; i < t; i++) columns[c * tp + i] = source[i * stride + c];
            new Span<float>(columns + c * tp + t, tp - t).Clear();
        }
    }
}
