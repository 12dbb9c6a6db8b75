using MoTLab.Shared.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Model;

/// <summary>A frozen dense FFN, relu(x·W1)·W2, with soft-merged lightweight experts (Zadouri et al.; docs/architecture.md).
/// A router gives each token a softmax p over E experts; the experts are merged with p, so there is no dropping.
/// MoV: E (IA)³ vectors scale the hidden activation, h ⊙ Σ_e p_e·l_e, every l_e starting at 1.
/// MoLoRA: E LoRA adapters beside each of the two projections, W·x + (α/r)·Σ_e p_e·B_e·A_e·x, every B_e starting at 0.
/// Only the router and the experts train; W1 and W2 keep the dense checkpoint's names, so it loads as it is.</summary>
public sealed class LightweightExperts : SparseFeedForward, ISparseFfnModule
{
    private readonly Parameter w1;        // (d, h) frozen
    private readonly Parameter w2;        // (h, d) frozen
    private readonly Parameter router;    // (d, E)
    private readonly Parameter? movDelta; // (E, h) MoV: l_e − 1, so weight decay pulls towards the identity scaling
    private readonly Parameter? loraA1;   // (d, E·r) MoLoRA, beside W1
    private readonly Parameter? loraB1;   // (E·r, h)
    private readonly Parameter? loraA2;   // (h, E·r) MoLoRA, beside W2
    private readonly Parameter? loraB2;   // (E·r, d)
    private readonly FfnConfig cfg;
    private readonly ScalarType compute;

    public static IReadOnlyList<FfnKind> Builds => [FfnKind.MoV, FfnKind.MoLoRA];
    public static SparseFeedForward Create(ModelConfig m, WeightInit weights, ScalarType compute) => new LightweightExperts(m.DModel, m.DenseMultiplier * m.DModel, m.Ffn, weights, compute);
    public override FfnKind Kind => cfg.Kind;
    public override int Experts => cfg.Experts;

    /// <summary>Names (last segment) of the weights this module adds to a dense FFN: they start from their
    /// initial values, not from the checkpoint, and they are the only ones that train.</summary>
    public static bool IsAdapterWeight(string name) => AdapterWeights.Contains(name[(name.LastIndexOf('.') + 1)..]);
    static readonly HashSet<string> AdapterWeights = ["router", "movDelta", "loraA1", "loraB1", "loraA2", "loraB2"];

    public LightweightExperts(int dModel, int hidden, FfnConfig cfg, WeightInit weights, ScalarType compute) : base(nameof(LightweightExperts))
    {
        this.cfg = cfg; this.compute = compute;
        int e = cfg.Experts, r = cfg.Rank;
        w1 = Parameter(empty(dModel, hidden), requires_grad: false);
        w2 = Parameter(empty(hidden, dModel), requires_grad: false);
        router = Parameter(empty(dModel, e));
        using (no_grad())
        {
            weights.Fill(w1, fanIn: dModel); weights.Fill(w2, fanIn: hidden, residualOut: true); weights.Fill(router, fanIn: dModel);
            if (cfg.Kind == FfnKind.MoV) movDelta = Parameter(zeros(e, hidden));
            else
            {
                // A as Kaiming-uniform (LoRA's choice), B zero: each adapter adds exactly nothing at the start
                loraA1 = Parameter(empty(dModel, e * r)); init.kaiming_uniform_(loraA1, Math.Sqrt(5));
                loraB1 = Parameter(zeros(e * r, hidden));
                loraA2 = Parameter(empty(hidden, e * r)); init.kaiming_uniform_(loraA2, Math.Sqrt(5));
                loraB2 = Parameter(zeros(e * r, dModel));
            }
        }
        RegisterComponents();
    }

    /// <param name="x">(B, T, d)</param>
    public override Tensor forward(Tensor x)
    {
        long B = x.shape[0], T = x.shape[1], d = x.shape[2], N = B * T;
        var flat = x.reshape(N, d);                                          // (N, d) fp32
        var p = functional.softmax(flat.matmul(router), 1);                 // (N, E) fp32
        var xc = flat.To(compute);
        var pre = xc.matmul(w1.To(compute));                                 // (N, h)
        if (loraA1 is not null) pre = pre + Lora(xc, p, loraA1, loraB1!);   // (N, h)
        var h = functional.relu(pre);                                        // (N, h)
        if (movDelta is not null) h = h * (p.matmul(movDelta) + 1).To(compute); // (N, h) ⊙ Σ_e p_e·l_e = 1 + Σ_e p_e·(l_e − 1)
        var y = h.matmul(w2.To(compute));                                    // (N, d)
        if (loraA2 is not null) y = y + Lora(h, p, loraA2, loraB2!);        // (N, d)

        if (Stats != StatsLevel.None)
        {
            using var _ = no_grad();
            LastStats = new LayerStats
            {
                Entropy = NormalisedEntropy(p.detach(), 1),
                Load = Stats == StatsLevel.Full ? p.detach().mean([0]) : null, // (E) mean router weight per expert
            };
        }
        return y.view(B, T, d);
    }

    /// <summary>(α/r)·Σ_e p_e·B_e·A_e·x as two matmuls: x·[A_1 … A_E] gives every adapter's rank-r code at once.</summary>
    /// <param name="x">(N, k)</param> <param name="p">(N, E)</param> <param name="a">(k, E·r)</param> <param name="b">(E·r, m)</param>
    Tensor Lora(Tensor x, Tensor p, Tensor a, Tensor b)
    {
        long n = x.shape[0]; int e = cfg.Experts, r = cfg.Rank;
        var code = x.matmul(a.To(compute)).view(n, e, r);                    // (N, E, r)
        var mixed = (code * p.To(compute).unsqueeze(2)).view(n, e * r);      // (N, E·r) each code weighted by p_e
        return mixed.matmul(b.To(compute)) * (cfg.LoraAlpha / r);           // (N, m)
    }
}
