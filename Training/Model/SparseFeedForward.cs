using System.Reflection;
using MoTLab.Shared.Config;
using MoTLab.Shared.Telemetry;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Model;

/// <summary>What a sparse layer records during forward: nothing (most steps), light scalars (logged
/// steps) or a full routing snapshot (every K steps). Recording never forces a device sync; the
/// trainer reads the tensors on logged steps only.</summary>
public enum StatsLevel { None, Light, Full }

/// <summary>Detached statistics of the last forward of one sparse layer (tensors live in the step's dispose scope).</summary>
public sealed class LayerStats
{
    public Tensor? Entropy;        // () mean normalised routing entropy
    public Tensor? Dropped;        // () dropped share of assignments (token-choice)
    public Tensor? Load;           // (E) per-expert load (MoE: share of routed tokens; MoT: mean max merge weight)
    public Tensor? MergeSample;    // (g, E) merge weights of one group (MoT)
    public Tensor? ExpertsPerToken; // (E+1) share of tokens picked by 0..E experts (expert-choice)
    public double? Temperature;
}

/// <summary>A sparse FFN module says which kinds it builds and how; <see cref="SparseFeedForward.Build"/> finds every
/// implementation in this assembly, so a new kind is its module and its descriptor (Shared/Config/FfnKinds.cs).</summary>
public interface ISparseFfnModule
{
    static abstract IReadOnlyList<FfnKind> Builds { get; }
    static abstract SparseFeedForward Create(ModelConfig model, WeightInit weights, ScalarType compute);
}

/// <summary>Base of the MoT / MoE feed-forwards: an ordinary (B,T,d)→(B,T,d) module that also exposes its
/// auxiliary losses and routing statistics of the last forward.</summary>
public abstract class SparseFeedForward : Module<Tensor, Tensor>
{
    protected SparseFeedForward(string name) : base(name) { }

    /// <summary>Each kind's builder: the <see cref="ISparseFfnModule"/> implementations of this assembly.</summary>
    public static readonly IReadOnlyDictionary<FfnKind, Func<ModelConfig, WeightInit, ScalarType, SparseFeedForward>> Builders =
        typeof(SparseFeedForward).Assembly.GetTypes()
            .Where(t => t.IsClass && !t.IsAbstract && t.IsAssignableTo(typeof(ISparseFfnModule)))
            .SelectMany(t =>
            {
                var kinds = (IReadOnlyList<FfnKind>)t.GetProperty(nameof(ISparseFfnModule.Builds), BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
                var create = t.GetMethod(nameof(ISparseFfnModule.Create), BindingFlags.Public | BindingFlags.Static)!
                    .CreateDelegate<Func<ModelConfig, WeightInit, ScalarType, SparseFeedForward>>();
                return kinds.Select(k => KeyValuePair.Create(k, create));
            })
            .ToDictionary();

    /// <summary>The sparse FFN of <paramref name="model"/>'s kind.</summary>
    public static SparseFeedForward Build(ModelConfig model, WeightInit weights, ScalarType compute) =>
        Builders.TryGetValue(model.Ffn.Kind, out var create) ? create(model, weights, compute)
            : throw new ArgumentException($"no sparse FFN module builds kind {FfnKinds.Of(model.Ffn.Kind).Name}");

    public abstract FfnKind Kind { get; }
    public abstract int Experts { get; }
    public StatsLevel Stats { get; set; } = StatsLevel.None;

    /// <summary>Load-balancing loss of the last forward (already scaled by α), or null.</summary>
    public Tensor? BalanceLoss { get; protected set; }
    /// <summary>Router z-loss of the last forward (already scaled by β), or null.</summary>
    public Tensor? ZLoss { get; protected set; }
    public LayerStats? LastStats { get; protected set; }

    /// <summary>Copies the recorded statistics to the host (a device sync; call on snapshot steps only).</summary>
    public RoutingSnapshot Snapshot(long step, int layer)
    {
        var s = LastStats ?? throw new InvalidOperationException("no statistics recorded: set Stats = Full before forward");
        var load = s.Load?.to_type(ScalarType.Float32).cpu().data<float>().ToArray();
        return new RoutingSnapshot
        {
            Step = step, Layer = layer, Kind = Kind, Experts = Experts,
            Entropy = s.Entropy?.item<float>() ?? double.NaN,
            MergeWeights = s.MergeSample is { } m ? ToRows(m) : null,
            Temperature = s.Temperature,
            ExpertLoad = load,
            DroppedRatio = s.Dropped?.item<float>(),
            MaxLoad = load?.Max(), MinLoad = load?.Min(),
            UnusedExperts = FfnKinds.Of(Kind).MergeWeights ? null : load?.Count(v => v == 0),
            ExpertsPerToken = s.ExpertsPerToken?.to_type(ScalarType.Float32).cpu().data<float>().ToArray(),
        };
    }

    static float[][] ToRows(Tensor m)
    {
        var flat = m.to_type(ScalarType.Float32).cpu().data<float>().ToArray();
        int rows = (int)m.shape[0], cols = (int)m.shape[1];
        return Enumerable.Range(0, rows).Select(r => flat.AsSpan(r * cols, cols).ToArray()).ToArray();
    }

    /// <summary>Mean entropy of distributions along <paramref name="dim"/>, divided by log(size) (1 = uniform).</summary>
    protected static Tensor NormalisedEntropy(Tensor probs, long dim)
    {
        long n = probs.shape[dim];
        if (n <= 1) return zeros(1, device: probs.device).squeeze();
        using var logp = probs.clamp_min(1e-9).log();
        return (-(probs * logp).sum(dim)).mean() / Math.Log(n);
    }
}
