using MoTLab.Training.Model.Cpu;
using System.Diagnostics;
using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using MoTLab.Training.Runtime;
using TorchSharp;
using static TorchSharp.torch;

// Forward + backward of each module of a preset's step, and of the small operations around them, on one CPU thread
// (so the modules take MoTLab's CPU kernels): where the CPU share of matmul is lost. Each line: µs per call, and
// GFLOP/s where the FLOPs are counted as `bench` counts them. Usage: dotnet run --project tests/benchmarks/CpuOps -c Release [-- PRESET (default tiny-mot)]
TorchRuntime.SetThreads(1);
var name = args.Length > 0 ? args[0] : "tiny-mot";
var preset = Presets.Find(name) ?? throw new ArgumentException($"unknown preset '{name}'");
var m = preset.Config.Model;
int B = preset.Config.Train.BatchSize, T = m.SeqLen, d = m.DModel, H = m.Heads, E = Math.Max(m.Ffn.EffectiveExperts, 8);
long N = (long)B * T;
const ScalarType f32 = ScalarType.Float32;
Console.WriteLine($"{name}: batch {B} × seq {T}, d {d}, one thread; plain 512² matmul {TorchRuntime.MeasureMatmulFlops(CPU, 512, 0.5) / 1e9:F1} GFLOP/s");

var x = randn(B, T, d).requires_grad_();                                          // (B, T, d)
Time("LayerNorm", 0, [x], nn.LayerNorm(d).forward);
var attention = new CausalSelfAttention(d, H, 0, new WeightInit(new ModelConfig()), f32);
var path = CausalSelfAttention.UsesCpuKernel(DeviceType.CPU, f32, d / H, T, 0) ? "CPU kernel" : "SDPA";
Time($"attention (QKV, {path}, projection)", 2 * 4 * d * d + 2 * 2 * T * d, [x], attention.forward);
var qkv = randn(B, T, 3 * d).requires_grad_();                                    // (B, T, 3d) as the projection writes it
Time("  scaled_dot_product_attention alone", 2 * 2 * T * d, [qkv], _ =>
{
    var parts = qkv.view(B, T, 3, H, d / H).permute(2, 0, 3, 1, 4).unbind(0);     // 3 × (B, H, T, hd)
    return nn.functional.scaled_dot_product_attention(parts[0], parts[1], parts[2], is_casual: true).transpose(1, 2).reshape(B, T, d);
});
Time("  CpuCausalAttention alone", 2 * 2 * T * d, [qkv], _ => CpuCausalAttention.Apply(qkv, H));
Time("dense FFN", 2 * 2 * d * m.DenseMultiplier * d, [x], new DenseFeedForward(d, m.DenseMultiplier * d, new WeightInit(new ModelConfig()), f32).forward);
if (new Gpt(m).SparseLayers.FirstOrDefault().Ffn is { } sparse)
    Time($"{FfnKinds.Of(sparse.Kind).Label} FFN", ModelSize.SparseFlopsPerToken(m, B), [x], sparse.forward);
var (h, head, targets) = (randn(N, d).requires_grad_(), randn(m.VocabSize, d).requires_grad_(), randint(0, m.VocabSize, [N]));
Time("head + cross-entropy (fused)", 2 * d * m.VocabSize, [h, head], _ => LinearCrossEntropy.Loss(h, head, targets, f32));
Time("head + cross-entropy (plain)", 2 * d * m.VocabSize, [h, head], _ => nn.functional.cross_entropy(nn.functional.linear(h, head), targets));
var router = randn(d, E).requires_grad_();
Time($"router GEMM ({N} × {d})·({d} × {E})", 2 * d * E, [h, router], _ => h.matmul(router));
var logits = randn(N, E).requires_grad_();
Time($"softmax over the last dim of ({N}, {E})", 0, [logits], _ => logits.softmax(1));
Time($"  the same along dim 0 of the transpose", 0, [logits], _ => logits.t().softmax(0).t());
Time($"router GEMM + softmax, CpuRouting.Probabilities", 2 * d * E, [h, router], _ => CpuRouting.Probabilities(h, router));

/// Times forward + backward (a fixed random output gradient; a scalar output backpropagates 1) after a warm-up.
void Time(string label, double forwardFlopsPerToken, Tensor[] leaves, Func<Tensor, Tensor> forward, int calls = 500)
{
    Tensor? gradient = null;
    void Call()
    {
        using var scope = NewDisposeScope();
        var y = forward(x);
        if (y.numel() == 1) y.backward();
        else y.backward([gradient ??= randn_like(y).DetachFromDisposeScope()]);
        foreach (var leaf in leaves) leaf.grad = null;
    }
    for (int i = 0; i < 50; i++) Call();
    var clock = Stopwatch.StartNew();
    for (int i = 0; i < calls; i++) Call();
    double us = clock.Elapsed.TotalMicroseconds / calls;
    var rate = forwardFlopsPerToken > 0 ? $"{3 * forwardFlopsPerToken * N / us / 1e3,8:F1} GFLOP/s" : "";
    Console.WriteLine($"{label,-48} {us,9:F1} µs {rate}");
}
