using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;
using V = System.Runtime.Intrinsics.Vector256<float>;

namespace MoTLab.Training.Model.Cpu;

/// <summary>Mixture of Tokens' merge and emit in fp32 on one CPU thread (<see cref="CpuKernels.Supports"/>), in the
/// layouts around them: tokens stay (B, T, d) and the expert side is (E, G·T, d), the expert bank's input and output,
/// so neither direction copies between layouts. Example b = i·g + j is member j of group i; weights are (B, T, E).
/// For each group i and position t:
///   merge  m[e, i·T + t] = Σ_j w[i·g + j, t, e] · x[i·g + j, t]
///   emit   x[i·g + j, t] = Σ_e w[i·g + j, t, e] · m[e, i·T + t]
/// Each is the other's input gradient; the weight gradient is the dot product of the two sides. libtorch does the same
/// as 256 tiny batched matmuls per layer at the tiny presets' shapes, plus transposes on both sides.</summary>
public static unsafe class CpuTokenMixing
{
    /// <param name="x">(B, T, d) tokens</param>
    /// <param name="w">(B, T, E) merge weights, a distribution over each group's members per expert</param>
    /// <returns>(E, (B/g)·T, d) one mixed token per expert, group and position</returns>
    public static Tensor Merge(Tensor x, Tensor w, int g)
    {
        Check(x, w, g, x.shape[^1]);
        return MergeFunction.apply(x.contiguous(), w.contiguous(), g);
    }

    /// <param name="m">(E, (B/g)·T, d) expert outputs</param>
    /// <param name="w">(B, T, E) emit weights</param>
    /// <returns>(B, T, d) each token's share of its group's expert outputs</returns>
    public static Tensor Emit(Tensor m, Tensor w, int g)
    {
        if (!(m.dim() == 3 && w.dim() == 3 && g > 0 && m.shape[0] == w.shape[2] && m.shape[1] == w.shape[0] / g * w.shape[1]))
            throw new ArgumentException($"MoT emit: needs m (E, (B/g)·T, d) for w (B, T, E); got m {string.Join('×', m.shape)}, w {string.Join('×', w.shape)}, g {g}");
        Check(w, w, g, m.shape[^1]);
        if (m.dtype != ScalarType.Float32) throw new ArgumentException($"MoT emit: needs fp32 expert outputs; got {m.dtype}");
        return EmitFunction.apply(m.contiguous(), w.contiguous(), g);
    }

    /// <summary>The rules both directions' loops rely on: fp32, B a multiple of g, w (B, T, E) beside (B, T, ·), d whole vectors.</summary>
    static void Check(Tensor tokens, Tensor w, int g, long d)
    {
        if (!(tokens.dim() == 3 && w.dim() == 3 && g > 0 && tokens.shape[0] % g == 0 && w.shape[0] == tokens.shape[0]
            && w.shape[1] == tokens.shape[1] && d % CpuKernels.L == 0 && tokens.dtype == ScalarType.Float32 && w.dtype == ScalarType.Float32))
            throw new ArgumentException($"MoT mixing: needs fp32 tokens (B, T, d), d a multiple of {CpuKernels.L}, weights (B, T, E), " +
                $"B a multiple of g; got {tokens.dtype} {string.Join('×', tokens.shape)}, {w.dtype} {string.Join('×', w.shape)}, g {g}, d {d}");
    }

    sealed class MergeFunction : SingleTensorFunction<MergeFunction>
    {
        public override string Name => "MoTMerge";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var (x, w, g) = ((Tensor)vars[0], (Tensor)vars[1], (int)vars[2]);
            var m = empty(w.shape[2], x.shape[0] / g * x.shape[1], x.shape[2]);   // (E, G·T, d)
            new Shape(x, w, g).Merge(CpuKernels.Ptr(w), CpuKernels.Ptr(x), CpuKernels.Ptr(m));
            ctx.save_for_backward([x, w]); ctx.save_data("g", g);
            return m;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor dm)
        {
            var saved = ctx.get_saved_variables();
            var (x, w, g) = (saved[0], saved[1], (int)ctx.get_data("g"));
            using var grad = dm.contiguous();
            var (dx, dw) = (empty_like(x), empty_like(w));
            var s = new Shape(x, w, g);
            float* pg = CpuKernels.Ptr(grad), pw = CpuKernels.Ptr(w);
            s.Emit(pw, pg, CpuKernels.Ptr(dx));                                     // dx = emit(dm)
            s.Dots(CpuKernels.Ptr(x), pg, CpuKernels.Ptr(dw));                      // dw = x · dm
            foreach (var t in saved) t.Dispose();
            return [dx, dw, null!];
        }
    }

    sealed class EmitFunction : SingleTensorFunction<EmitFunction>
    {
        public override string Name => "MoTEmit";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var (m, w, g) = ((Tensor)vars[0], (Tensor)vars[1], (int)vars[2]);
            var x = empty(w.shape[0], w.shape[1], m.shape[2]);                   // (B, T, d)
            new Shape(x, w, g).Emit(CpuKernels.Ptr(w), CpuKernels.Ptr(m), CpuKernels.Ptr(x));
            ctx.save_for_backward([m, w]); ctx.save_data("g", g);
            return x;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor dx)
        {
            var saved = ctx.get_saved_variables();
            var (m, w, g) = (saved[0], saved[1], (int)ctx.get_data("g"));
            using var grad = dx.contiguous();
            var (dm, dw) = (empty_like(m), empty_like(w));
            var s = new Shape(grad, w, g);
            float* pg = CpuKernels.Ptr(grad), pw = CpuKernels.Ptr(w);
            s.Merge(pw, pg, CpuKernels.Ptr(dm));                                    // dm = merge(dx)
            s.Dots(pg, CpuKernels.Ptr(m), CpuKernels.Ptr(dw));                      // dw = dx · m
            foreach (var t in saved) t.Dispose();
            return [dm, dw, null!];
        }
    }

    enum Op { Merge, Emit, Dots }

    /// <summary>Sizes of one call and the loop over (group, position) pairs. Per pair: the group's g tokens in x, T·d
    /// floats apart; their weights in w, T·E apart; the E expert slots in m, G·T·d apart.</summary>
    readonly struct Shape(Tensor x, Tensor w, int g)
    {
        readonly int T = (int)x.shape[1], D = (int)x.shape[2], E = (int)w.shape[2], G = g, Groups = (int)x.shape[0] / g;

        public void Merge(float* w, float* x, float* m) => Run(Op.Merge, w, x, m);
        public void Emit(float* w, float* m, float* x) => Run(Op.Emit, w, x, m);
        public void Dots(float* x, float* m, float* dw) => Run(Op.Dots, dw, x, m);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Run(Op op, float* w, float* x, float* m)
        {
            var p = new Pair(D, E, G, (long)T * D, (long)T * E, (long)Groups * T * D);
            for (int i = 0; i < Groups; i++)
                for (int t = 0; t < T; t++)
                {
                    long token = (long)i * G * T + t;
                    float* x0 = x + token * D, w0 = w + token * E, m0 = m + ((long)i * T + t) * D;
                    if (op == Op.Merge) p.Merge(w0, x0, m0);
                    else if (op == Op.Emit) p.Emit(w0, m0, x0);
                    else p.Dots(x0, m0, w0);
                }
        }
    }

    /// <summary>One (group, position) pair: g tokens xs apart, their weights ws apart, E slots ms apart.</summary>
    readonly struct Pair(int d, int e, int g, long xs, long ws, long ms)
    {
        /// <summary>m[e] = Σ_j w[j, e]·x[j].</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Merge(float* w, float* x, float* m)
        {
            for (int k = 0; k < e; k++)
                for (int c = 0; c < d; c += CpuKernels.L)
                {
                    var acc = V.Zero;
                    float* xp = x + c, wp = w + k;
                    for (int j = 0; j < g; j++, xp += xs, wp += ws)
                        acc = Vector256.FusedMultiplyAdd(Vector256.Create(*wp), Vector256.Load(xp), acc);
                    acc.Store(m + k * ms + c);
                }
        }

        /// <summary>x[j] = Σ_e w[j, e]·m[e].</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Emit(float* w, float* m, float* x)
        {
            for (int j = 0; j < g; j++)
                for (int c = 0; c < d; c += CpuKernels.L)
                {
                    var acc = V.Zero;
                    float* mp = m + c, wj = w + j * ws;
                    for (int k = 0; k < e; k++, mp += ms)
                        acc = Vector256.FusedMultiplyAdd(Vector256.Create(wj[k]), Vector256.Load(mp), acc);
                    acc.Store(x + j * xs + c);
                }
        }

        /// <summary>dw[j, e] = x[j] · m[e]: the weight gradient of either direction.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Dots(float* x, float* m, float* dw)
        {
            for (int j = 0; j < g; j++)
                for (int k = 0; k < e; k++)
                    dw[j * ws + k] = CpuKernels.Dot(x + j * xs, m + k * ms, d);
        }
    }
}
