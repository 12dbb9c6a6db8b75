// CUDA's device-side vocabulary on the CPU, enough to run MoTLab's kernels (Training/Model/Gpu/kernels.cu) block by
// block: each block's threads are std::threads, __syncthreads a barrier among them, __shared__ arrays function
// statics (one block runs at a time), and a warp shuffle a write, a barrier of the warp's threads and a read (a thread
// that returns leaves both barriers: the kernels return by whole warps). The launcher
// (launch.cpp) defines each kernel's dynamic shared memory array. Slow and exact: for checking index arithmetic, not
// speed. bf16 packing takes the kernels' portable path (__CUDA_ARCH__ 700, no inline PTX).
#pragma once
#include <algorithm>
#include <barrier>
#include <memory>
#include <cmath>
#include <math.h>
#include <cstring>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __CUDA_ARCH__ 700
#define asm(...) ((void)0)

struct dim3u { unsigned x, y, z; };
inline thread_local dim3u threadIdx;
inline dim3u blockIdx, blockDim, gridDim;
struct float4 { float x, y, z, w; };
struct float2 { float x, y; };
struct uint4 { unsigned x, y, z, w; };
struct uint2 { unsigned x, y; };
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline float2 make_float2(float a, float b) { return {a, b}; }
inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __expf(float x) { return std::exp(x); }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }

inline std::barrier<>* block_barrier;
inline std::vector<std::unique_ptr<std::barrier<>>>* warp_barriers;
inline float shuffle_slots[1024];
inline void __syncthreads() { block_barrier->arrive_and_wait(); }
inline float __shfl_xor_sync(unsigned, float v, int lane_mask)
{
    auto& warp = *(*warp_barriers)[threadIdx.x / 32];
    shuffle_slots[threadIdx.x] = v;
    warp.arrive_and_wait();
    const float r = shuffle_slots[threadIdx.x ^ lane_mask];
    warp.arrive_and_wait();
    return r;
}

template <class Kernel>
void emulate_launch(unsigned grid, unsigned block, Kernel kernel)
{
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    for (unsigned b = 0; b < grid; b++)
    {
        blockIdx = {b, 0, 0};
        std::barrier<> barrier((std::ptrdiff_t)block);
        std::vector<std::unique_ptr<std::barrier<>>> warps;
        for (unsigned w = 0; w < (block + 31) / 32; w++)
            warps.push_back(std::make_unique<std::barrier<>>((std::ptrdiff_t)std::min(32u, block - 32 * w)));
        block_barrier = &barrier;
        warp_barriers = &warps;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block; t++)
            threads.emplace_back([&, t]
            {
                threadIdx = {t, 0, 0};
                kernel();
                barrier.arrive_and_drop();
                warps[t / 32]->arrive_and_drop();
            });
        for (auto& th : threads) th.join();
    }
}
