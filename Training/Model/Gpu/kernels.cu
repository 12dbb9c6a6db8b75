// MoTLab's fused CUDA kernels, compiled at run time by NVRTC for the GPU's architecture (GpuKernels.cs). No headers:
// bf16 is handled as its bits (the top half of an fp32) and rounded to nearest even, as libtorch rounds it.
// Every kernel is extern "C" so that GpuKernels finds it by name; the C# caller checks shapes, dtypes and alignment.

typedef unsigned short bf16;
typedef long long i64;
#define FULL_MASK 0xffffffffu
#define NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float bf2f(bf16 h) { return __uint_as_float(((unsigned)h) << 16); }

__device__ __forceinline__ bf16 f2bf(float f)
{
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x40u);   // NaN stays a (quiet) NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16)(u >> 16);
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

// Two fp32 values rounded to bf16 and packed (lo in the low half): one instruction from sm_80 on.
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi)
{
#if __CUDA_ARCH__ >= 800
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#else
    return (unsigned)f2bf(lo) | ((unsigned)f2bf(hi) << 16);
#endif
}

// The max (is_max) or the sum of v over the block; red holds 32 floats. Every thread gets the result.
__device__ __forceinline__ float block_reduce(float v, bool is_max, float* red)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1)
    {
        const float other = __shfl_xor_sync(FULL_MASK, v, o);
        v = is_max ? fmaxf(v, other) : v + other;
    }
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        v = lane < warps ? red[lane] : (is_max ? NEG_INF : 0.f);
        for (int o = 16; o > 0; o >>= 1)
        {
            const float other = __shfl_xor_sync(FULL_MASK, v, o);
            v = is_max ? fmaxf(v, other) : v + other;
        }
        if (lane == 0) red[0] = v;
    }
    __syncthreads();
    const float r = red[0];
    __syncthreads();                                         // red is free again
    return r;
}

// ---------------------------------------------------------------------------------------------------------------
// Cross-entropy of one chunk of logits, a row per block. z: (rows, ld) bf16, columns from `vocab` on are padding.
//   loss[row] = logsumexp(z[row, :vocab]) − z[row, target]          (fp32, max first: M + log Σ exp(z − M))
//   grad != 0: z[row] ← softmax(z[row]) − onehot(target), 0 in the padding   (the logits' gradient, unscaled)
// The row is read once from global memory into shared memory (ld·2 bytes of dynamic shared memory: 100 KB at GPT-2's
// vocabulary, so two blocks share a multiprocessor and one streams while the other reduces) and written once.

// The 8 logits of one 16-byte vector, as fp32, those at columns ≥ vocab as −∞.
__device__ __forceinline__ void unpack8(const uint4& q, int c0, int vocab, float* x)
{
    const unsigned* w = reinterpret_cast<const unsigned*>(&q);
#pragma unroll
    for (int j = 0; j < 4; j++)
    {
        x[2 * j] = __uint_as_float(w[j] << 16);
        x[2 * j + 1] = __uint_as_float(w[j] & 0xffff0000u);
    }
    if (c0 + 8 > vocab)
#pragma unroll
        for (int j = 0; j < 8; j++)
            if (c0 + j >= vocab) x[j] = NEG_INF;
}

extern "C" __global__ void __launch_bounds__(512, 2) cross_entropy_rows(
    bf16* z, const i64* targets, float* loss, int vocab, int ld, int grad)
{
    extern __shared__ uint4 row_cache[];                     // (ld / 8)
    __shared__ float red[32];
    const i64 row = blockIdx.x;
    uint4* zr = reinterpret_cast<uint4*>(z + row * (i64)ld);
    const int vecs = ld >> 3;
    float x[8];

    float m = NEG_INF;
    for (int v = threadIdx.x; v < vecs; v += blockDim.x)
    {
        const uint4 q = zr[v];
        row_cache[v] = q;
        unpack8(q, v * 8, vocab, x);
#pragma unroll
        for (int j = 0; j < 8; j++) m = fmaxf(m, x[j]);
    }
    m = block_reduce(m, true, red);                          // its barriers also publish row_cache
    float s = 0.f;
    for (int v = threadIdx.x; v < vecs; v += blockDim.x)
    {
        unpack8(row_cache[v], v * 8, vocab, x);
#pragma unroll
        for (int j = 0; j < 8; j++) s += __expf(x[j] - m);   // exp(−∞) = 0 in the padding
    }
    s = block_reduce(s, false, red);
    const float lse = m + logf(s);
    const i64 t = targets[row];
    if (threadIdx.x == 0) loss[row] = (t >= 0 && t < vocab) ? lse - bf2f(z[row * (i64)ld + t]) : __int_as_float(0x7fc00000);
    if (!grad) return;
    __syncthreads();                                         // thread 0 has read z[t] before anyone overwrites it
    for (int v = threadIdx.x; v < vecs; v += blockDim.x)
    {
        const int c0 = v * 8;
        unpack8(row_cache[v], c0, vocab, x);
        uint4 q;
        unsigned* w = reinterpret_cast<unsigned*>(&q);
#pragma unroll
        for (int j = 0; j < 4; j++)
        {
            float lo = __expf(x[2 * j] - lse), hi = __expf(x[2 * j + 1] - lse);
            if (c0 + 2 * j == t) lo -= 1.f;
            if (c0 + 2 * j + 1 == t) hi -= 1.f;
            w[j] = pack_bf16x2(lo, hi);
        }
        zr[v] = q;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// LayerNorm over the last dimension, a row per warp, fp32 statistics, with the residual add before it fused in. x:
// (rows, d) fp32, d a multiple of 4 and at most 128·V; lane l holds the float4s l, l + 32, … of its row in registers
// (V of them).
//   forward:  u = x + h when h is given (h in bf16 when h_bf16, else fp32; u written to sum), else u = x;
//             y = (u − μ)·ρ·w + b, in bf16 (y_bf16) or fp32; μ and ρ = 1/√(σ² + ε) (biased σ²) kept per row
//   backward: du = ρ·(g − mean(g) − û·mean(g·û)) + dres, g = dy·w, û = (u − μ)·ρ, dres the gradient that reaches u
//             along the residual stream (when given); du is written to dx (fp32) and, when dh is given, to dh as
//             well (in bf16 when dh_bf16): the gradients of the add's two inputs. dy in bf16 when dy_bf16.
//             Each block also sums dy·û and dy over its rows into dw_part[block] and db_part[block] (d each), which
//             column_sums adds up (a fixed order: the result does not depend on scheduling).

__device__ __forceinline__ float4 load4(const void* p, i64 i, int is_bf16)
{
    if (!is_bf16) return reinterpret_cast<const float4*>(p)[i];
    uint2 q = reinterpret_cast<const uint2*>(p)[i];
    return make_float4(__uint_as_float(q.x << 16), __uint_as_float(q.x & 0xffff0000u),
                       __uint_as_float(q.y << 16), __uint_as_float(q.y & 0xffff0000u));
}

__device__ __forceinline__ void store4(void* p, i64 i, float4 v, int is_bf16)
{
    if (!is_bf16) { reinterpret_cast<float4*>(p)[i] = v; return; }
    reinterpret_cast<uint2*>(p)[i] = make_uint2(pack_bf16x2(v.x, v.y), pack_bf16x2(v.z, v.w));
}

template <int V>
__device__ __forceinline__ void layer_norm_forward(const float* x, const void* h, int h_bf16, float* sum,
    const float* w, const float* b, void* y, float* mean, float* rstd, int rows, int d, float eps, int y_bf16)
{
    const int row = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31, n4 = d >> 2;
    if (row >= rows) return;                                 // whole warps: the shuffles below see full warps
    const i64 base = (i64)row * n4;
    float4 v[V];
    float total = 0.f;
#pragma unroll
    for (int i = 0; i < V; i++)
    {
        const int k = lane + 32 * i;
        v[i] = make_float4(0.f, 0.f, 0.f, 0.f);
        if (k < n4)
        {
            v[i] = reinterpret_cast<const float4*>(x)[base + k];
            if (h)
            {
                const float4 hv = load4(h, base + k, h_bf16);
                v[i].x += hv.x; v[i].y += hv.y; v[i].z += hv.z; v[i].w += hv.w;
                reinterpret_cast<float4*>(sum)[base + k] = v[i];
            }
        }
        total += (v[i].x + v[i].y) + (v[i].z + v[i].w);
    }
    const float mu = warp_sum(total) / d;
    float sq = 0.f;
#pragma unroll
    for (int i = 0; i < V; i++)
        if (lane + 32 * i < n4)
        {
            float a = v[i].x - mu, c = v[i].y - mu, e = v[i].z - mu, f = v[i].w - mu;
            sq += (a * a + c * c) + (e * e + f * f);
        }
    const float r = rsqrtf(warp_sum(sq) / d + eps);
    if (lane == 0) { mean[row] = mu; rstd[row] = r; }
#pragma unroll
    for (int i = 0; i < V; i++)
    {
        const int k = lane + 32 * i;
        if (k >= n4) break;
        const float4 wk = reinterpret_cast<const float4*>(w)[k], bk = reinterpret_cast<const float4*>(b)[k];
        store4(y, base + k, make_float4((v[i].x - mu) * r * wk.x + bk.x, (v[i].y - mu) * r * wk.y + bk.y,
                                        (v[i].z - mu) * r * wk.z + bk.z, (v[i].w - mu) * r * wk.w + bk.w), y_bf16);
    }
}

template <int V>
__device__ __forceinline__ void layer_norm_backward(const void* dy, int dy_bf16, const float* x, const float* w,
    const float* mean, const float* rstd, const float* dres, float* dx, void* dh, int dh_bf16,
    float* dw_part, float* db_part, int rows, int d)
{
    extern __shared__ float partial[];                       // (warps, d)
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5, n4 = d >> 2;
    float4 aw[V], ab[V];
#pragma unroll
    for (int i = 0; i < V; i++) { aw[i] = make_float4(0.f, 0.f, 0.f, 0.f); ab[i] = aw[i]; }

    for (int row = blockIdx.x * warps + warp; row < rows; row += gridDim.x * warps)
    {
        const i64 base = (i64)row * n4;
        const float mu = mean[row], r = rstd[row];
        float4 xh[V], g[V];
        float sg = 0.f, sgx = 0.f;
#pragma unroll
        for (int i = 0; i < V; i++)
        {
            const int k = lane + 32 * i;
            if (k < n4)
            {
                const float4 xv = reinterpret_cast<const float4*>(x)[base + k], dv = load4(dy, base + k, dy_bf16);
                const float4 wk = reinterpret_cast<const float4*>(w)[k];
                xh[i] = make_float4((xv.x - mu) * r, (xv.y - mu) * r, (xv.z - mu) * r, (xv.w - mu) * r);
                g[i] = make_float4(dv.x * wk.x, dv.y * wk.y, dv.z * wk.z, dv.w * wk.w);
                sg += (g[i].x + g[i].y) + (g[i].z + g[i].w);
                sgx += (g[i].x * xh[i].x + g[i].y * xh[i].y) + (g[i].z * xh[i].z + g[i].w * xh[i].w);
                aw[i].x += dv.x * xh[i].x; aw[i].y += dv.y * xh[i].y; aw[i].z += dv.z * xh[i].z; aw[i].w += dv.w * xh[i].w;
                ab[i].x += dv.x; ab[i].y += dv.y; ab[i].z += dv.z; ab[i].w += dv.w;
            }
        }
        sg = warp_sum(sg) / d;
        sgx = warp_sum(sgx) / d;
#pragma unroll
        for (int i = 0; i < V; i++)
        {
            const int k = lane + 32 * i;
            if (k >= n4) break;
            float4 o = make_float4(r * (g[i].x - sg - xh[i].x * sgx), r * (g[i].y - sg - xh[i].y * sgx),
                                   r * (g[i].z - sg - xh[i].z * sgx), r * (g[i].w - sg - xh[i].w * sgx));
            if (dres)
            {
                const float4 rv = reinterpret_cast<const float4*>(dres)[base + k];
                o.x += rv.x; o.y += rv.y; o.z += rv.z; o.w += rv.w;
            }
            reinterpret_cast<float4*>(dx)[base + k] = o;
            if (dh) store4(dh, base + k, o, dh_bf16);
        }
    }
    // this block's column sums, dw then db: each warp's registers into shared memory, then summed over the warps
    for (int pass = 0; pass < 2; pass++)
    {
#pragma unroll
        for (int i = 0; i < V; i++)
        {
            const int k = lane + 32 * i;
            if (k < n4) reinterpret_cast<float4*>(partial + warp * d)[k] = pass == 0 ? aw[i] : ab[i];
        }
        __syncthreads();
        float* out = (pass == 0 ? dw_part : db_part) + (i64)blockIdx.x * d;
        for (int c = threadIdx.x; c < d; c += blockDim.x)
        {
            float t = 0.f;
            for (int j = 0; j < warps; j++) t += partial[j * d + c];
            out[c] = t;
        }
        __syncthreads();
    }
}

#define LAYER_NORM_KERNELS(V)                                                                                        \
    extern "C" __global__ void layer_norm_forward_##V(const float* x, const void* h, int h_bf16, float* sum,         \
        const float* w, const float* b, void* y, float* mean, float* rstd, int rows, int d, float eps, int y_bf16) \
    { layer_norm_forward<V>(x, h, h_bf16, sum, w, b, y, mean, rstd, rows, d, eps, y_bf16); }                         \
    extern "C" __global__ void layer_norm_backward_##V(const void* dy, int dy_bf16, const float* x, const float* w,   \
        const float* mean, const float* rstd, const float* dres, float* dx, void* dh, int dh_bf16,                 \
        float* dw_part, float* db_part, int rows, int d)                                                           \
    { layer_norm_backward<V>(dy, dy_bf16, x, w, mean, rstd, dres, dx, dh, dh_bf16, dw_part, db_part, rows, d); }

LAYER_NORM_KERNELS(1)
LAYER_NORM_KERNELS(2)
LAYER_NORM_KERNELS(4)
LAYER_NORM_KERNELS(8)

// The two column sums of layer_norm_backward's per-block partials: out_w[c] = Σ_j part_w[j, c] from the first half of
// the grid's blocks and out_b likewise from the second; 32 columns a block, its 8 warps over the rows, then over the
// warps.
extern "C" __global__ void column_sums(const float* part_w, const float* part_b, float* out_w, float* out_b, int parts, int d)
{
    __shared__ float red[8][33];
    const int half = gridDim.x >> 1, second = blockIdx.x >= half;
    const float* part = second ? part_b : part_w;
    float* out = second ? out_b : out_w;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, c = (blockIdx.x - (second ? half : 0)) * 32 + lane;
    float t = 0.f;
    if (c < d)
        for (int j = warp; j < parts; j += 8) t += part[(i64)j * d + c];
    red[warp][lane] = t;
    __syncthreads();
    if (warp == 0 && c < d)
    {
        float u = 0.f;
        for (int j = 0; j < 8; j++) u += red[j][lane];
        out[c] = u;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The gradients of attention's q, k and v, each (B, H, T, hd) with element strides sb, sh, st (the same for the three,
// innermost 1: the layout attention's backward hands them in), written as one contiguous (B, T, 3, H, hd) gradient of
// the fused QKV projection's output: 2-byte elements, 8 at a time (hd8 = hd / 8; strides multiples of 8). One thread
// per 16 bytes of the output, in its order (the writes are coalesced; each read is a run of hd contiguous elements).

extern "C" __global__ void qkv_pack(const bf16* dq, const bf16* dk, const bf16* dv, uint4* out,
    unsigned B, unsigned H, unsigned T, unsigned hd8, i64 sb, i64 sh, i64 st)
{
    const unsigned total = B * T * 3u * H * hd8;
    for (unsigned o = blockIdx.x * blockDim.x + threadIdx.x; o < total; o += gridDim.x * blockDim.x)
    {
        unsigned r = o / hd8;
        const unsigned e = o - r * hd8;
        const unsigned h = r % H; r /= H;
        const unsigned s = r % 3u; r /= 3u;
        const unsigned t = r % T, b = r / T;
        const bf16* src = s == 0 ? dq : (s == 1 ? dk : dv);
        out[o] = *reinterpret_cast<const uint4*>(src + b * sb + h * sh + t * st + e * 8);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Mixture of Tokens' merge, emit and weight gradient (GpuTokenMixing.cs), in the layouts around them: tokens (B, T, d),
// weights (B, T, E) fp32, the expert side (E, G·T, d) bf16. Example b = i·g + j is member j of group i; the pair
// p = i·T + t is group i at position t, and member j of it is token row (i·g + j)·T + t.
//   mot_merge  m[e, p] = Σ_j w[row_j, e] · x[row_j]            (merge; the emit's input gradient)
//   mot_emit   x[row_j] = Σ_e w[row_j, e] · m[e, p]            (emit; the merge's input gradient)
//   mot_dots   dw[row_j, e] = Σ_c a[row_j, c] · m[e, p, c]     (either's weight gradient)
// As libtorch computes them in bf16: every input is rounded to bf16, products are summed in fp32, each result is
// rounded to bf16 once (written as fp32 where the caller's tensor is fp32). merge and emit are one product per pair,
// C[m] = Σ_k A[k][m] · B[k] over rows of d columns (mot_mix), a block per (pair, 32 rows of C, 512 columns), K in
// chunks of 32 through shared memory; each thread sums an 8 × 8 tile of C (8 rows; columns 4·u … and 256 + 4·u …), so
// 64 multiply-adds take four 16-byte shared-memory reads.
//   merge: k = member j, rows of C = experts e, A[j][e] = w[row_j, e], B[j] = x[row_j], C[e] = m[e, p]
//   emit:  k = expert e, rows of C = members j, A[e][j] = w[row_j, e], B[e] = m[e, p], C[j] = out[row_j]

__device__ __forceinline__ float round_bf16(float f) { return bf2f(f2bf(f)); }

__device__ __forceinline__ float4 load4_bf16_rounded(const void* p, i64 i, int is_bf16)
{
    float4 v = load4(p, i, is_bf16);
    if (!is_bf16) { v.x = round_bf16(v.x); v.y = round_bf16(v.y); v.z = round_bf16(v.z); v.w = round_bf16(v.w); }
    return v;
}

__device__ __forceinline__ void store4_bf16_rounded(void* p, i64 i, float4 v, int is_bf16)
{
    if (!is_bf16) { v.x = round_bf16(v.x); v.y = round_bf16(v.y); v.z = round_bf16(v.z); v.w = round_bf16(v.w); }
    store4(p, i, v, is_bf16);
}

template <int MERGE>
__device__ __forceinline__ void mot_mix(const void* b, int b_bf16, const float* w, void* c, int c_bf16, int T, int d, int E, int g, int groups)
{
    extern __shared__ float4 smem4[];
    float* as = reinterpret_cast<float*>(smem4);             // (32 k, 36): A's chunk, k-major
    float4* bs = smem4 + 32 * 36 / 4;                        // (32 k, 128 float4): B's chunk, 512 columns
    const int M = MERGE ? E : g, K = MERGE ? g : E, d4 = d >> 2;
    const int m_tiles = (M + 31) >> 5, c_tiles = (d + 511) >> 9;
    int blk = blockIdx.x;
    const int ct = blk % c_tiles; blk /= c_tiles;
    const int mt = blk % m_tiles, p = blk / m_tiles, i = p / T, t = p - i * T;
    const i64 row0 = (i64)i * g * T + t, slots = (i64)groups * T;
    const int m0 = mt * 32, c4_0 = ct * 128, ty = threadIdx.x >> 6, tx = threadIdx.x & 63;
    float acc[8][8];
#pragma unroll
    for (int r = 0; r < 8; r++)
#pragma unroll
        for (int q = 0; q < 8; q++) acc[r][q] = 0.f;
    for (int k0 = 0; k0 < K; k0 += 32)
    {
        for (int q = threadIdx.x; q < 32 * 32; q += blockDim.x)
        {
            // consecutive threads read consecutive experts of one token row of w
            const int kk = MERGE ? q >> 5 : q & 31, mm = MERGE ? q & 31 : q >> 5;
            const int k = k0 + kk, m = m0 + mm, j = MERGE ? k : m, e = MERGE ? m : k;
            as[kk * 36 + mm] = k < K && m < M ? round_bf16(w[(row0 + (i64)j * T) * E + e]) : 0.f;
        }
        for (int q = threadIdx.x; q < 32 * 128; q += blockDim.x)
        {
            const int kk = q >> 7, v = q & 127, k = k0 + kk, col4 = c4_0 + v;
            float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
            if (k < K && col4 < d4)
            {
                const i64 row = MERGE ? row0 + (i64)k * T : (i64)k * slots + p;
                x = load4_bf16_rounded(b, row * d4 + col4, b_bf16);
            }
            bs[kk * 128 + v] = x;
        }
        __syncthreads();
#pragma unroll 4
        for (int kk = 0; kk < 32; kk++)
        {
            const float4 a0 = reinterpret_cast<const float4*>(as + kk * 36)[2 * ty];
            const float4 a1 = reinterpret_cast<const float4*>(as + kk * 36)[2 * ty + 1];
            const float4 u = bs[kk * 128 + tx], v = bs[kk * 128 + 64 + tx];
            const float a[8] = { a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w };
#pragma unroll
            for (int r = 0; r < 8; r++)
            {
                acc[r][0] += a[r] * u.x; acc[r][1] += a[r] * u.y; acc[r][2] += a[r] * u.z; acc[r][3] += a[r] * u.w;
                acc[r][4] += a[r] * v.x; acc[r][5] += a[r] * v.y; acc[r][6] += a[r] * v.z; acc[r][7] += a[r] * v.w;
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < 8; r++)
    {
        const int m = m0 + ty * 8 + r;
        const i64 row = MERGE ? (i64)m * slots + p : row0 + (i64)m * T;
        if (m >= M) continue;
        if (c4_0 + tx < d4) store4_bf16_rounded(c, row * d4 + c4_0 + tx, make_float4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]), c_bf16);
        if (c4_0 + 64 + tx < d4) store4_bf16_rounded(c, row * d4 + c4_0 + 64 + tx, make_float4(acc[r][4], acc[r][5], acc[r][6], acc[r][7]), c_bf16);
    }
}

extern "C" __global__ void __launch_bounds__(256) mot_merge(const void* x, int x_bf16, const float* w, bf16* m,
    int T, int d, int E, int g, int groups)
{ mot_mix<1>(x, x_bf16, w, m, 1, T, d, E, g, groups); }

extern "C" __global__ void __launch_bounds__(256) mot_emit(const bf16* m, const float* w, void* out, int out_bf16,
    int T, int d, int E, int g, int groups)
{ mot_mix<0>(m, 1, w, out, out_bf16, T, d, E, g, groups); }

// mot_dots: a block per (pair, 32 experts), 256 threads in four quarters, each quarter over a quarter of each 64
// columns of shared memory (rows padded to 68 floats: a quarter-warp's 16-byte reads of 8 rows fall in distinct banks).
// Thread u of a quarter sums the 16 outputs (j = u / 8 + 8k, e = u % 8 + 8l; k, l < 4) over its columns; the quarters'
// sums meet in shared memory at the end. d a multiple of 8.
extern "C" __global__ void __launch_bounds__(256) mot_dots(const void* a, int a_bf16, const bf16* m, float* dw,
    int T, int d, int E, int g, int groups)
{
    __shared__ float4 as4[32 * 17], ms4[32 * 17];            // (32, 68) floats each
    const int tiles = (E + 31) >> 5, p = blockIdx.x / tiles, e0 = (blockIdx.x - p * tiles) * 32;
    const int i = p / T, t = p - i * T;
    const i64 row0 = (i64)i * g * T + t, slots = (i64)groups * T;
    const int quarter = threadIdx.x >> 6, u = threadIdx.x & 63, jr = u >> 3, er = u & 7;
    float acc[4][4];
#pragma unroll
    for (int k = 0; k < 4; k++)
#pragma unroll
        for (int l = 0; l < 4; l++) acc[k][l] = 0.f;
    for (int c0 = 0; c0 < d; c0 += 64)
    {
        // 32 rows × 64 columns of each side: thread → row r = tid / 8, columns 8·(tid % 8) … + 7
        const int r = threadIdx.x >> 3, cc = (threadIdx.x & 7) * 8, col = c0 + cc;
        float va[8], vm[8];
#pragma unroll
        for (int k = 0; k < 8; k++) { va[k] = 0.f; vm[k] = 0.f; }
        if (r < g && col < d)
        {
            const i64 at = (row0 + (i64)r * T) * d + col;
            if (a_bf16)
            {
                const uint4 q = *reinterpret_cast<const uint4*>(reinterpret_cast<const bf16*>(a) + at);
                const unsigned* h = reinterpret_cast<const unsigned*>(&q);
#pragma unroll
                for (int k = 0; k < 4; k++) { va[2 * k] = __uint_as_float(h[k] << 16); va[2 * k + 1] = __uint_as_float(h[k] & 0xffff0000u); }
            }
            else
            {
                const float4 q0 = *reinterpret_cast<const float4*>(reinterpret_cast<const float*>(a) + at);
                const float4 q1 = *reinterpret_cast<const float4*>(reinterpret_cast<const float*>(a) + at + 4);
                va[0] = round_bf16(q0.x); va[1] = round_bf16(q0.y); va[2] = round_bf16(q0.z); va[3] = round_bf16(q0.w);
                va[4] = round_bf16(q1.x); va[5] = round_bf16(q1.y); va[6] = round_bf16(q1.z); va[7] = round_bf16(q1.w);
            }
        }
        if (e0 + r < E && col < d)
        {
            const uint4 q = *reinterpret_cast<const uint4*>(m + ((i64)(e0 + r) * slots + p) * d + col);
            const unsigned* h = reinterpret_cast<const unsigned*>(&q);
#pragma unroll
            for (int k = 0; k < 4; k++) { vm[2 * k] = __uint_as_float(h[k] << 16); vm[2 * k + 1] = __uint_as_float(h[k] & 0xffff0000u); }
        }
        as4[r * 17 + (cc >> 2)] = make_float4(va[0], va[1], va[2], va[3]);
        as4[r * 17 + (cc >> 2) + 1] = make_float4(va[4], va[5], va[6], va[7]);
        ms4[r * 17 + (cc >> 2)] = make_float4(vm[0], vm[1], vm[2], vm[3]);
        ms4[r * 17 + (cc >> 2) + 1] = make_float4(vm[4], vm[5], vm[6], vm[7]);
        __syncthreads();
#pragma unroll
        for (int c4 = quarter * 4; c4 < quarter * 4 + 4; c4++)
        {
            float4 av[4], mv[4];
#pragma unroll
            for (int k = 0; k < 4; k++) { av[k] = as4[(jr + 8 * k) * 17 + c4]; mv[k] = ms4[(er + 8 * k) * 17 + c4]; }
#pragma unroll
            for (int k = 0; k < 4; k++)
#pragma unroll
                for (int l = 0; l < 4; l++)
                    acc[k][l] += av[k].x * mv[l].x + av[k].y * mv[l].y + av[k].z * mv[l].z + av[k].w * mv[l].w;
        }
        __syncthreads();
    }
    // the four quarters' sums: quarters 2 and 3 hand theirs to 0 and 1 through shared memory, then 1 to 0, which writes
    float* red[2] = { reinterpret_cast<float*>(as4), reinterpret_cast<float*>(ms4) };   // 1,024 floats each used
    for (int round = 0; round < 2; round++)
    {
        const bool gives = round == 0 ? quarter >= 2 : quarter == 1, takes = round == 0 ? quarter < 2 : quarter == 0;
        float* buf = red[round == 0 ? (quarter & 1) : 0];
        if (gives)
#pragma unroll
            for (int k = 0; k < 4; k++)
#pragma unroll
                for (int l = 0; l < 4; l++) buf[(jr + 8 * k) * 32 + er + 8 * l] = acc[k][l];
        __syncthreads();
        if (takes)
#pragma unroll
            for (int k = 0; k < 4; k++)
#pragma unroll
                for (int l = 0; l < 4; l++) acc[k][l] += buf[(jr + 8 * k) * 32 + er + 8 * l];
        __syncthreads();
    }
    if (quarter == 0)
#pragma unroll
        for (int k = 0; k < 4; k++)
#pragma unroll
            for (int l = 0; l < 4; l++)
            {
                const int j = jr + 8 * k, e = e0 + er + 8 * l;
                if (j < g && e < E) dw[(row0 + (i64)j * T) * E + e] = round_bf16(acc[k][l]);
            }
}

// ---------------------------------------------------------------------------------------------------------------
// Token-choice and expert-choice routing (GpuRouting.cs): rows gathered into expert slots and summed back, both ways
// without atomics. Rows are d wide, d a multiple of 4, bf16 or fp32 (src_bf16, out_bf16, …). As libtorch's bf16 ops
// compute them: inputs and scales rounded to bf16, sums in fp32, each bf16 result rounded once; gather_rows' and
// row_dots' fp32 results hold bf16 values (libtorch's product and dot are bf16), segment_sum_rows' fp32 sums are kept
// as they are (libtorch adds a token's bf16 gradients in fp32).
//   gather_rows       out[r] = scale[r] · src[index[r]]                      (index < 0: a zero row; no scale: 1)
//   segment_sum_rows  out[n] = Σ_{q ∈ segment n} scale[order[q]] · src[order[q]]   (order < 0: skipped)
//                     segment n is [start[n], start[n + 1]), or [n·k, n·k + k) without start
//   row_dots          out[r] = Σ_c a[ia[r], c] · b[r, c]                      (ia < 0: 0)
// One thread per 4 columns of an output row (the dots: a warp per row).

extern "C" __global__ void gather_rows(const void* src, int src_bf16, const i64* index, const float* scale,
    void* out, int out_bf16, i64 rows, int d)
{
    const int d4 = d >> 2;
    for (i64 o = blockIdx.x * (i64)blockDim.x + threadIdx.x; o < rows * d4; o += (i64)gridDim.x * blockDim.x)
    {
        const i64 r = o / d4, s = index[r];
        const int c = (int)(o - r * d4);
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (s >= 0)
        {
            v = load4_bf16_rounded(src, s * d4 + c, src_bf16);
            if (scale) { const float f = round_bf16(scale[r]); v.x *= f; v.y *= f; v.z *= f; v.w *= f; }
        }
        store4_bf16_rounded(out, o, v, out_bf16);
    }
}

extern "C" __global__ void segment_sum_rows(const void* src, int src_bf16, const i64* start, int k, const i64* order,
    const float* scale, void* out, int out_bf16, i64 rows, int d)
{
    const int d4 = d >> 2;
    for (i64 o = blockIdx.x * (i64)blockDim.x + threadIdx.x; o < rows * d4; o += (i64)gridDim.x * blockDim.x)
    {
        const i64 n = o / d4, q0 = start ? start[n] : n * k, q1 = start ? start[n + 1] : q0 + k;
        const int c = (int)(o - n * d4);
        float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
        for (i64 q = q0; q < q1; q++)
        {
            const i64 r = order[q];
            if (r < 0) continue;
            const float4 v = load4_bf16_rounded(src, r * d4 + c, src_bf16);
            const float f = scale ? round_bf16(scale[r]) : 1.f;
            a.x += f * v.x; a.y += f * v.y; a.z += f * v.z; a.w += f * v.w;
        }
        store4(out, o, a, out_bf16);
    }
}

extern "C" __global__ void row_dots(const void* a, int a_bf16, const i64* ia, const void* b, int b_bf16, float* out, i64 rows, int d)
{
    const i64 r = (blockIdx.x * (i64)blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31, d4 = d >> 2;
    if (r >= rows) return;                                   // whole warps: the shuffles below see full warps
    const i64 s = ia[r];
    float t = 0.f;
    if (s >= 0)
        for (int c = lane; c < d4; c += 32)
        {
            const float4 u = load4_bf16_rounded(a, s * d4 + c, a_bf16), v = load4_bf16_rounded(b, r * d4 + c, b_bf16);
            t += (u.x * v.x + u.y * v.y) + (u.z * v.z + u.w * v.w);
        }
    t = warp_sum(t);
    if (lane == 0) out[r] = round_bf16(t);
}
