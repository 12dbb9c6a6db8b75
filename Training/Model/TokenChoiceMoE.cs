using MoTLab.Training.Model.Cpu;
using MoTLab.Training.Model.Gpu;
using MoTLab.Shared.Config;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Model;

/// <summary>Token-choice MoE (Switch / top-k), docs/architecture.md, "Token-choice MoE". Each token picks its top-k experts by router
/// probability; each expert takes at most C = min(floor(cf·N·k/E), N) assignments in order (all first
/// choices before second choices, then token order); the rest are dropped and the residual carries the
/// token through. Outputs are scaled by the gate probability. No host sync in forward.</summary>
public sealed class TokenChoiceMoE : RoutedMoE, ISparseFfnModule
{
    public static IReadOnlyList<FfnKind> Builds => [FfnKind.TokenChoice];
    public static SparseFeedForward Create(ModelConfig m, WeightInit weights, ScalarType compute) => new TokenChoiceMoE(m.DModel, m.Ffn, m.DenseMultiplier, weights, compute);
    public override FfnKind Kind => FfnKind.TokenChoice;

    public TokenChoiceMoE(int dModel, FfnConfig cfg, int denseMultiplier, WeightInit weights, ScalarType compute)
        : base(nameof(TokenChoiceMoE), dModel, cfg, denseMultiplier, weights, compute) { }

    /// <param name="x">(B, T, d)</param>
    public override Tensor forward(Tensor x)
    {
        long B = x.shape[0], T = x.shape[1], d = x.shape[2], N = B * T, E = Experts;
        int k = cfg.TopK, C = ModelSize.TokenChoiceCapacity(cfg, N);
        var flat = x.reshape(N, d);                                        // (N, d)
        bool cpu = CpuRouting.Supports(flat, (int)E, get_num_threads());
        var logits = cpu ? null : flat.matmul(router);                     // (N, E) fp32
        var probs = cpu ? CpuRouting.Probabilities(flat, router) : functional.softmax(logits!, 1); // (N, E)
        var (gate, choice) = probs.topk(k, 1);                             // (N, k) each
        var (slot, frac) = cpu ? AssignOnCpu(choice, E, C) : Assign(choice, E, C); // (k·N) slot or E·C when dropped, (E) load
        var kept = slot.lt(E * C);                                         // (k·N) within capacity

        // Slots and assignments each know the other, so both directions gather: a slot's token fills it and owns its
        // gradient. Off the kernels (RowGather) an empty slot holds token 0 and a dropped assignment reads slot 0, both
        // only to have a valid index: the empty slot's output is never read and the dropped assignment is masked out.
        using var filler = full(E * C + 1, -1L, dtype: ScalarType.Int64, device: x.device)
            .scatter_(0, slot, arange(k * N, dtype: ScalarType.Int64, device: x.device))[..(int)(E * C)]; // (E·C) assignment in each slot, −1 empty (row E·C: the dropped)
        if (cfg.StraightThroughGate) gate = gate / gate.detach();         // (N, k) value 1, gradient of the gate
        var weight = gate.t().reshape(k * N) * kept.to_type(gate.dtype);  // (k·N) gate, 0 when dropped
        var assigned = where(kept, slot, -1L);                             // (k·N) slot, −1 when dropped
        Tensor outFlat;                                                    // (N, d)
        if (GpuRouting.Supports(flat, compute))
        {
            var perToken = new GpuRouting.Segments(null, k, assigned.view(k, N).t().reshape(N * k)); // token n: its k slots
            var filled = filler.ge(0);                                     // (E·C)
            var owner = where(filled, filler.remainder(N), -1L);           // (E·C) token in each slot, −1 empty
            var y = experts.forward(GpuRouting.Gather(flat, owner, perToken).view(E, C, d)).reshape(E * C, d); // (E·C, d)
            var scale = where(filled, weight.gather(0, filler.clamp_min(0)), 0.0); // (E·C) the slot's gate
            outFlat = GpuRouting.Combine(y, scale, perToken, owner);
        }
        else
        {
            // the tokens gathered in their own dtype (fp32): the experts cast them, and a token's k gradients add in fp32
            var tokens = RowGather.Apply(flat, filler.clamp_min(0).remainder(N), assigned.view(k, N)); // (E·C, d)
            var y = experts.forward(tokens.view(E, C, d)).reshape(E * C, d); // (E·C, d)
            var shares = RowGather.Apply(y, where(kept, slot, 0L), filler.unsqueeze(0))
                .masked_fill(kept.logical_not().unsqueeze(1), 0)           // a dropped assignment adds 0, whatever slot 0 holds
                * weight.unsqueeze(1).to_type(y.dtype);                    // (k·N, d)
            outFlat = k == 1 ? shares : shares.view(k, N, d).sum(0L);
        }

        // Switch balance loss α·E·Σ_e mean_p_e·frac_e (frac over all assignments, before dropping); = α when uniform.
        BalanceLoss = cfg.BalanceLoss > 0 ? cfg.BalanceLoss * E * (probs.mean([0]) * frac).sum() : null;
        ZLoss = cfg.ZLoss > 0 ? cfg.ZLoss * (logits ?? flat.matmul(router)).logsumexp(1).square().mean() : null;
        Record(probs, kept, frac);
        return outFlat.view(B, T, d);
    }

    /// <summary>Each assignment's slot (first choices of all tokens before second choices, then token order; E·C when its
    /// expert is full) and each expert's share of the assignments, with tensor operations that stay on the device.</summary>
    /// <param name="choice">(N, k) chosen experts per token</param>
    /// <returns>(k·N) slot, (E) share of the assignments</returns>
    public static (Tensor Slot, Tensor Frac) Assign(Tensor choice, long E, int C)
    {
        long N = choice.shape[0]; int k = (int)choice.shape[1];
        var order = choice.t().reshape(k * N);                             // (k·N) first choices first
        // slot within the chosen expert = how many assignments up to this one chose it: a running count per expert,
        // scanned along the innermost dimension (a scan over the outer dimension of a (k·N, E) one-hot took 13 ms per
        // layer on an H200). One-hot by scatter: functional.one_hot range-checks its input, which waits for the GPU.
        using var one = ones(1, k * N, dtype: ScalarType.Int32, device: choice.device);
        var mask = zeros(E, k * N, dtype: ScalarType.Int32, device: choice.device)
            .scatter_(0, order.unsqueeze(0), one);                         // (E, k·N)
        var position = mask.cumsum(1, ScalarType.Int32).gather(0, order.unsqueeze(0))
            .squeeze(0).to_type(ScalarType.Int64) - 1;                     // (k·N) slot within the chosen expert
        var slot = where(position.lt(C), order * C + position, E * C);     // (k·N) dropped → spare row E·C
        return (slot, mask.to_type(ScalarType.Float32).mean([1]));         // (E) share of the assignments
    }

    /// <summary><see cref="Assign"/> in one pass over the choices (<see cref="CpuRouting.Slots"/>).</summary>
    public static (Tensor Slot, Tensor Frac) AssignOnCpu(Tensor choice, long E, int C)
    {
        var (slot, counts) = CpuRouting.Slots(choice, (int)E, C);
        return (slot, counts / choice.numel());
    }

    void Record(Tensor probs, Tensor kept, Tensor frac)
    {
        if (Stats == StatsLevel.None) { LastStats = null; return; }
        using var _ = no_grad();
        LastStats = new LayerStats
        {
            Entropy = NormalisedEntropy(probs.detach(), 1),
            Dropped = 1 - kept.to_type(ScalarType.Float32).mean(),
            Load = Stats == StatsLevel.Full ? frac.detach().clone() : null,
        };
    }
}
