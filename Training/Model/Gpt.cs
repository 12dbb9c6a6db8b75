using MoTLab.Shared.Config;
using MoTLab.Training.Model.Gpu;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Model;

/// <summary>GPT decoder (pre-norm, learned positions) whose feed-forwards are dense, or sparse in the
/// configured blocks (the later half by default). forward(idx) gives logits; Loss adds the aux losses.</summary>
public sealed class Gpt : Module<Tensor, Tensor>
{
    private readonly Embedding wte;      // (V, d)
    private readonly Embedding wpe;      // (T, d)
    private readonly Dropout drop;
    private readonly ModuleList<Block> blocks;
    private readonly LayerNorm lnF;
    private readonly Parameter? head;    // (V, d) only when untied
    private readonly ScalarType compute;

    public ModelConfig Config { get; }
    public IReadOnlyList<(int Layer, SparseFeedForward Ffn)> SparseLayers { get; }

    public Gpt(ModelConfig cfg, ScalarType compute = ScalarType.Float32) : base(nameof(Gpt))
    {
        Config = cfg; this.compute = compute;
        var weights = new WeightInit(cfg);
        wte = Embedding(cfg.VocabSize, cfg.DModel);
        wpe = Embedding(cfg.SeqLen, cfg.DModel);
        drop = Dropout(cfg.Dropout);
        var sparse = cfg.SparseBlockIndices().ToHashSet();
        var list = new List<Block>(); var sparseLayers = new List<(int, SparseFeedForward)>();
        for (int i = 0; i < cfg.Layers; i++)
        {
            Module<Tensor, Tensor> ffn = sparse.Contains(i)
                ? SparseFeedForward.Build(cfg, weights, compute)
                : new DenseFeedForward(cfg.DModel, cfg.DenseMultiplier * cfg.DModel, weights, compute);
            if (ffn is SparseFeedForward s) sparseLayers.Add((i, s));
            list.Add(new Block(cfg.DModel, cfg.Heads, cfg.Dropout, ffn, weights, compute));
        }
        blocks = ModuleList(list.ToArray());
        SparseLayers = sparseLayers;
        lnF = LayerNorm(cfg.DModel);
        if (!cfg.TiedHead) head = Parameter(empty(cfg.VocabSize, cfg.DModel));
        weights.Embedding(wte.weight!, tiedToHead: cfg.TiedHead); weights.Embedding(wpe.weight!);
        if (head is not null) weights.Fill(head, fanIn: cfg.DModel);
        RegisterComponents();
    }


    /// <param name="idx">(B, T) token ids, T ≤ seq_len</param>
    /// <returns>(B, T, V) logits in the compute dtype</returns>
    public override Tensor forward(Tensor idx)
    {
        using var h = Hidden(idx);                                                 // (B, T, d)
        return functional.linear(h.To(compute), HeadWeight.To(compute));          // (B, T, V)
    }

    /// <summary>The final hidden states, before the head.</summary>
    /// <returns>(B, T, d) in the compute dtype (the head's matmul input)</returns>
    public Tensor Hidden(Tensor idx)
    {
        long T = idx.shape[1];
        if (T > Config.SeqLen) throw new ArgumentException($"sequence length {T} exceeds the model's seq_len {Config.SeqLen}");
        using var pos = arange(T, dtype: ScalarType.Int64, device: idx.device);   // (T)
        var x = wte.forward(idx) + wpe.forward(pos);                               // (B, T, d) fp32
        if (Config.Dropout > 0) x = drop.forward(x);
        Tensor? pending = null;                                                    // each block's last residual add, deferred
        foreach (var block in blocks) (x, pending) = block.Forward(x, pending);   // (B, T, d) each
        return FusedLayerNorm.AddApply(lnF, x, pending, compute).Normed;           // (B, T, d)
    }

    Tensor HeadWeight => head ?? wte.weight!;                                      // (V, d)

    /// <summary>Cross-entropy (softmax in fp32) of next-token prediction plus the sparse layers' aux losses. The head
    /// and the loss are one fused function (<see cref="LinearCrossEntropy"/>): the (B·T, V) logits are never kept.</summary>
    /// <returns>(objective, cross-entropy, aux) scalars; aux is 0 when no layer has one.</returns>
    public (Tensor Objective, Tensor CrossEntropy, Tensor Aux) Loss(Tensor idx, Tensor targets)
    {
        using var h = Hidden(idx);                                                 // (B, T, d)
        var ce = LinearCrossEntropy.Loss(h.reshape(-1, h.shape[2]), HeadWeight, targets.reshape(-1), compute);
        var aux = AuxLoss(ce.device);
        return (ce + aux, ce, aux);
    }

    /// <summary>Sum of the balance and z losses of the last forward (a 0-d tensor).</summary>
    public Tensor AuxLoss(Device device)
    {
        Tensor total = zeros(Array.Empty<long>(), device: device);
        foreach (var (_, ffn) in SparseLayers)
        {
            if (ffn.BalanceLoss is { } b) total = total + b;
            if (ffn.ZLoss is { } z) total = total + z;
        }
        return total;
    }

    public void SetStats(StatsLevel level) { foreach (var (_, f) in SparseLayers) f.Stats = level; }

    public long ParameterCount() => parameters().Sum(p => p.numel());

    /// <summary>What the optimizer updates: every parameter, except in a lightweight-experts fine-tune, which freezes
    /// everything but the routers and experts (docs/architecture.md, "Transition tuning and lightweight experts").</summary>
    public IReadOnlyList<Parameter> TrainableParameters()
    {
        if (Config.Ffn.IsLightweight)
            foreach (var (name, p) in named_parameters())
                p.requires_grad = LightweightExperts.IsAdapterWeight(name);
        return parameters().Where(p => p.requires_grad).ToList();
    }

    /// <summary>Model FLOPs utilisation: achieved training FLOP/s (3× forward, as computed) over a peak.</summary>
    public double EstimateMfu(int batch, double tokensPerSecond, double peakFlops) =>
        3 * ModelSize.ForwardFlopsPerToken(Config, batch) * tokensPerSecond / peakFlops;
}
