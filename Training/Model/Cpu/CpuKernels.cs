using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;
using V = System.Runtime.Intrinsics.Vector256<float>;

namespace MoTLab.Training.Model.Cpu;

/// <summary>What MoTLab's hand-written CPU kernels (<see cref="CpuCausalAttention"/>, <see cref="CpuTokenMixing"/>,
/// <see cref="CpuRouting"/>) share: when they stand in for libtorch's operations, and the raw memory they work on. They exist for the small
/// shapes of CPU training, where libtorch's eager kernels spend more on calls, GEMM packing and layout copies than on
/// arithmetic (docs/benchmarks.md, CPU). Their loops are marked AggressiveOptimization: compiled optimised at the first
/// call, since tier-0 code would not inline the vector operations. Their loops do not check bounds, so each public
/// entry point checks the shapes it relies on and throws, naming the kernel, rather than read or write past a tensor.</summary>
public static unsafe class CpuKernels
{
    public const int L = 8; // floats per vector

    /// <summary>fp32 on an x86 CPU with AVX2 and FMA, libtorch on one thread, and the width a kernel vectorises over (a
    /// head, a token, the experts) a whole number of vectors. libtorch's own kernels spread over its thread pool, these
    /// run on the calling thread (a .NET parallel loop beside libtorch's spinning OpenMP threads did not scale on 2
    /// cores).</summary>
    public static bool Supports(DeviceType device, ScalarType dtype, int rowWidth, int threads) =>
        device == DeviceType.CPU && dtype == ScalarType.Float32 && rowWidth % L == 0 && threads == 1
        && Avx2.IsSupported && Fma.IsSupported;

    /// <summary>The first element of a contiguous CPU tensor of T (libtorch's memory: it does not move).</summary>
    public static T* Ptr<T>(Tensor t) where T : unmanaged
    {
        if (t.device_type != DeviceType.CPU || t.element_size() != sizeof(T))
            throw new ArgumentException($"a CPU kernel needs a CPU tensor of {typeof(T).Name}, got {t.dtype} on {t.device}");
        return (T*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));
    }

    public static float* Ptr(Tensor t) => Ptr<float>(t);

    /// <summary>a · b over n floats, n a whole number of vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(float* a, float* b, int n)
    {
        var acc = V.Zero;
        for (int c = 0; c < n; c += L) acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + c), Vector256.Load(b + c), acc);
        return Vector256.Sum(acc);
    }

    /// <summary>The largest of a vector's 8 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HorizontalMax(V v)
    {
        var half = Vector128.Max(v.GetLower(), v.GetUpper());
        half = Vector128.Max(half, Vector128.Shuffle(half, Vector128.Create(2, 3, 0, 1)));
        return MathF.Max(half.ToScalar(), half[1]);
    }

    /// <summary>eˣ lane by lane (Cephes' single-precision polynomial, about 1 ulp); 0 for x below −87.3, −∞ included.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Exp(V x)
    {
        var low = Vector256.LessThan(x, Vector256.Create(-87.3f));
        x = Vector256.Min(x, Vector256.Create(88.3f));
        var n = Vector256.Round(x * 1.44269504088896341f);                          // x = n·ln 2 + r
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-0.693359375f), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(2.12194440e-4f), r);
        var p = Vector256.Create(1.9875691500e-4f);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.3981999507e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(8.3334519073e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(4.1665795894e-2f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.6666665459e-1f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(5.0000001201e-1f));
        p = Vector256.FusedMultiplyAdd(p * r, r, r) + Vector256.Create(1f);           // 1 + r + r²·P(r)
        var scale = (Vector256.ConvertToInt32(n) + Vector256.Create(127)) << 23;      // 2ⁿ as float bits
        return Vector256.ConditionalSelect(low, V.Zero, p * scale.AsSingle());
    }
}
