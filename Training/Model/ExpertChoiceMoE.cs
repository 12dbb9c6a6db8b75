using MoTLab.Training.Model.Cpu;
using MoTLab.Training.Model.Gpu;
using MoTLab.Shared.Config;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Model;

/// <summary>Expert-choice MoE (Zhou et al.), docs/architecture.md, "Expert-choice MoE". Router scores s = softmax over experts; each
/// expert takes its top C = round(capacity·N/E) tokens of the batch by score, so load is balanced by
/// construction and a token may be processed by several experts or none. Note: the choice looks at the
/// whole batch, including later positions, so unlike MoT it is not causal across positions.</summary>
public sealed class ExpertChoiceMoE : RoutedMoE, ISparseFfnModule
{
    public static IReadOnlyList<FfnKind> Builds => [FfnKind.ExpertChoice];
    public static SparseFeedForward Create(ModelConfig m, WeightInit weights, ScalarType compute) => new ExpertChoiceMoE(m.DModel, m.Ffn, m.DenseMultiplier, weights, compute);
    public override FfnKind Kind => FfnKind.ExpertChoice;

    public ExpertChoiceMoE(int dModel, FfnConfig cfg, int denseMultiplier, WeightInit weights, ScalarType compute)
        : base(nameof(ExpertChoiceMoE), dModel, cfg, denseMultiplier, weights, compute) { }

    /// <param name="x">(B, T, d)</param>
    public override Tensor forward(Tensor x)
    {
        long B = x.shape[0], T = x.shape[1], d = x.shape[2], N = B * T, E = Experts;
        int C = ModelSize.ExpertChoiceCapacity(cfg, N);
        var flat = x.reshape(N, d);                                        // (N, d)
        // scores expert-major, the layout the choice reads; the softmax over experts is along dim 0 of the transposed
        // logits: libtorch's CPU softmax over a last dimension of < 16 values is slow (1,024 × 8, forward and backward:
        // 210 µs, against 45 µs this way; tests/benchmarks/CpuOps)
        var scoresT = CpuRouting.Supports(flat, (int)E, get_num_threads())
            ? CpuRouting.Probabilities(flat, router).t().contiguous()     // (E, N) over experts, in one pass
            : functional.softmax(flat.matmul(router).t(), 0);              // (E, N) over experts
        var (gate, index) = scoresT.topk(C, 1);                            // (E, C) each expert's tokens
        var chosen = index.reshape(E * C);                                 // (E·C) token of each expert slot
        Tensor outFlat;                                                    // (N, d) sum over the choosing experts
        if (GpuRouting.Supports(flat, compute))
        {
            // each token's slots, in token order: the segments both directions sum without atomics
            using var counts = zeros(N + 1, dtype: ScalarType.Int64, device: x.device).scatter_add_(0, chosen + 1, ones_like(chosen));
            var perToken = new GpuRouting.Segments(counts.cumsum(0), 0, chosen.sort(stable: true).Indices); // (N + 1), (E·C)
            var y = experts.forward(GpuRouting.Gather(flat, chosen, perToken).view(E, C, d)).reshape(E * C, d); // (E·C, d)
            outFlat = GpuRouting.Combine(y, gate.reshape(E * C), perToken, chosen);
        }
        else
        {
            var y = experts.forward(flat.index_select(0, chosen).view(E, C, d)); // (E, C, d)
            var scaled = (y * gate.unsqueeze(2).to_type(y.dtype)).reshape(E * C, d); // (E·C, d) scaled by score
            outFlat = zeros(N, d, dtype: y.dtype, device: y.device).index_add(0, chosen, scaled, 1);
        }
        BalanceLoss = null; ZLoss = null;
        Record(scoresT.t(), index, N);
        return outFlat.view(B, T, d);
    }

    void Record(Tensor scores, Tensor index, long n)
    {
        if (Stats == StatsLevel.None) { LastStats = null; return; }
        using var _ = no_grad();
        var s = new LayerStats { Entropy = NormalisedEntropy(scores.detach(), 1) };
        if (Stats == StatsLevel.Full)
        {
            var perToken = bincount(index.reshape(-1), minlength: (int)n);      // (N) experts that chose each token
            s.ExpertsPerToken = bincount(perToken, minlength: Experts + 1).to_type(ScalarType.Float32) / n; // (E+1)
            s.Load = scores.detach().mean([0]);                                // (E) mean router score
        }
        LastStats = s;
    }
}
