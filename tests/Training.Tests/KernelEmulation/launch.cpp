// Runs one of MoTLab's CUDA kernels on the CPU (emulate.h), for KernelEmulationTests:
//   launch KERNELS_CU JOB
// JOB is a text file: the kernel's name, its grid and block, then one line per argument: "buffer PATH" (the file's
// bytes, read before the launch and written back after it: the kernel's pointer), "null", "int V", "long V" or
// "float V". The kernels are compiled in from KERNELS_CU at build time (see KernelEmulationTests), so this file only
// maps each name to its signature.
#include "emulate.h"
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include KERNELS_SOURCE

// the kernels' dynamic shared memory (kernels.cu declares each extern inside its kernel; one per kernel), 256 KB each
alignas(16) float4 smem4[16384];
alignas(16) uint4 row_cache[16384];
alignas(16) float partial[65536];

struct Arg { std::string kind, path; std::vector<unsigned char> bytes; long long value = 0; float f = 0; };

static void* P(std::vector<Arg>& a, int i) { return a[i].kind == "null" ? nullptr : a[i].bytes.data(); }
static int I(std::vector<Arg>& a, int i) { return (int)a[i].value; }
static long long L(std::vector<Arg>& a, int i) { return a[i].value; }
static float F(std::vector<Arg>& a, int i) { return a[i].f; }

#define LAYER_NORM_LAUNCHES(V)                                                                                       \
    {"layer_norm_forward_" #V, [&] { layer_norm_forward_##V((const float*)P(a, 0), P(a, 1), I(a, 2), (float*)P(a, 3), \
        (const float*)P(a, 4), (const float*)P(a, 5), P(a, 6), (float*)P(a, 7), (float*)P(a, 8), I(a, 9), I(a, 10),  \
        F(a, 11), I(a, 12)); }},                                                                                     \
    {"layer_norm_backward_" #V, [&] { layer_norm_backward_##V(P(a, 0), I(a, 1), (const float*)P(a, 2),               \
        (const float*)P(a, 3), (const float*)P(a, 4), (const float*)P(a, 5), (const float*)P(a, 6), (float*)P(a, 7),  \
        P(a, 8), I(a, 9), (float*)P(a, 10), (float*)P(a, 11), I(a, 12), I(a, 13)); }},

int main(int argc, char** argv)
{
    if (argc != 2) { std::cerr << "usage: launch JOB\n"; return 2; }
    std::ifstream job(argv[1]);
    std::string name; unsigned grid, block;
    job >> name >> grid >> block;
    std::vector<Arg> a;
    for (std::string kind; job >> kind;)
    {
        Arg arg{kind};
        if (kind == "buffer")
        {
            job >> arg.path;
            std::ifstream f(arg.path, std::ios::binary);
            arg.bytes.assign(std::istreambuf_iterator<char>(f), {});
            arg.bytes.resize(arg.bytes.size() + 16);   // the kernels read whole 16-byte vectors
        }
        else if (kind == "int" || kind == "long") job >> arg.value;
        else if (kind == "float") job >> arg.f;
        else if (kind != "null") { std::cerr << "unknown argument kind " << kind << "\n"; return 2; }
        a.push_back(std::move(arg));
    }
    std::map<std::string, std::function<void()>> kernels = {
        {"mot_merge", [&] { mot_merge(P(a, 0), I(a, 1), (const float*)P(a, 2), (bf16*)P(a, 3), I(a, 4), I(a, 5), I(a, 6), I(a, 7), I(a, 8)); }},
        {"mot_emit", [&] { mot_emit((const bf16*)P(a, 0), (const float*)P(a, 1), P(a, 2), I(a, 3), I(a, 4), I(a, 5), I(a, 6), I(a, 7), I(a, 8)); }},
        {"mot_dots", [&] { mot_dots(P(a, 0), I(a, 1), (const bf16*)P(a, 2), (float*)P(a, 3), I(a, 4), I(a, 5), I(a, 6), I(a, 7), I(a, 8)); }},
        {"gather_rows", [&] { gather_rows(P(a, 0), I(a, 1), (const i64*)P(a, 2), (const float*)P(a, 3), P(a, 4), I(a, 5), L(a, 6), I(a, 7)); }},
        {"segment_sum_rows", [&] { segment_sum_rows(P(a, 0), I(a, 1), (const i64*)P(a, 2), I(a, 3), (const i64*)P(a, 4), (const float*)P(a, 5), P(a, 6), I(a, 7), L(a, 8), I(a, 9)); }},
        {"row_dots", [&] { row_dots(P(a, 0), I(a, 1), (const i64*)P(a, 2), P(a, 3), I(a, 4), (float*)P(a, 5), L(a, 6), I(a, 7)); }},
        LAYER_NORM_LAUNCHES(1) LAYER_NORM_LAUNCHES(2) LAYER_NORM_LAUNCHES(4) LAYER_NORM_LAUNCHES(8)
        {"column_sums", [&] { column_sums((const float*)P(a, 0), (const float*)P(a, 1), (float*)P(a, 2), (float*)P(a, 3), I(a, 4), I(a, 5)); }},
        {"cross_entropy_rows", [&] { cross_entropy_rows((bf16*)P(a, 0), (const i64*)P(a, 1), (float*)P(a, 2), I(a, 3), I(a, 4), I(a, 5)); }},
    };
    auto k = kernels.find(name);
    if (k == kernels.end()) { std::cerr << "no kernel " << name << " in the launcher\n"; return 2; }
    emulate_launch(grid, block, k->second);
    for (auto& arg : a)
        if (arg.kind == "buffer")
        {
            std::ofstream f(arg.path, std::ios::binary | std::ios::trunc);
            f.write((const char*)arg.bytes.data(), (std::streamsize)arg.bytes.size() - 16);
        }
    return 0;
}
