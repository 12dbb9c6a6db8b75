using MoTLab.Training.Model.Cpu;
using MoTLab.Training.Model.Gpu;
using MoTLab.Shared.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Model;

/// <summary>Mixture of Tokens (Antoniak et al.), docs/architecture.md, "Mixture of Tokens". Tokens at the same position in g different
/// examples form a group; for each expert a softmax over the group mixes them into one token, the expert
/// processes the mix, and its output goes back to the group's tokens with the same weights. Fully
/// differentiable, nothing dropped, and causal: only other examples at the same position are mixed.</summary>
public sealed class MixtureOfTokens : SparseFeedForward, ISparseFfnModule
{
    private readonly Parameter controller;     // (d, E)
    private readonly ExpertBank experts;
    private readonly Parameter? logTempMerge;  // () learnable log-temperature of the merge softmax
    private readonly Parameter? logTempEmit;   // () learnable log-temperature of the emit softmax
    private readonly FfnConfig cfg;
    private readonly ScalarType compute;

    /// <summary>Evaluation overrides (ignored while training): another group size, or one-hot argmax weights.</summary>
    public int? EvalGroupSize { get; set; }
    public bool DiscreteEval { get; set; }

    public static IReadOnlyList<FfnKind> Builds => [FfnKind.MoT];
    public static SparseFeedForward Create(ModelConfig m, WeightInit weights, ScalarType compute) => new MixtureOfTokens(m.DModel, m.Ffn, m.DenseMultiplier, weights, compute);
    public override FfnKind Kind => FfnKind.MoT;
    public override int Experts => experts.Experts;
    public int GroupSize => cfg.GroupSize;

    public MixtureOfTokens(int dModel, FfnConfig cfg, int denseMultiplier, WeightInit weights, ScalarType compute) : base(nameof(MixtureOfTokens))
    {
        this.cfg = cfg; this.compute = compute;
        int e = cfg.EffectiveExperts;
        controller = Parameter(empty(dModel, e));
        weights.Fill(controller, fanIn: dModel);
        experts = new ExpertBank(e, dModel, cfg.ExpertHidden(dModel, denseMultiplier), weights, compute);
        if (cfg.LearnableTemperature)
        {
            logTempMerge = Parameter(tensor(Math.Log(cfg.Temperature), float32));
            logTempEmit = Parameter(tensor(Math.Log(cfg.Temperature), float32));
        }
        DiscreteEval = cfg.DiscreteEval;
        RegisterComponents();
    }

    public ExpertBank ExpertWeights => experts;
    public Tensor Controller => controller;

    /// <param name="x">(B, T, d) with B a multiple of the group size</param>
    public override Tensor forward(Tensor x)
    {
        long B = x.shape[0], T = x.shape[1], d = x.shape[2], E = Experts;
        int g = training ? cfg.GroupSize : EvalGroupSize ?? cfg.GroupSize;
        if (!training && B == 1 && g > 1) return ForwardSingleSequence(x);
        if (B % g != 0)
            throw new ArgumentException($"batch size {B} is not a multiple of the MoT group size {g}: MoT mixes tokens of {g} different examples at each position");
        long G = B / g;
        if (x.dtype == compute && CpuKernels.Supports(x.device_type, compute, (int)d, get_num_threads()))
            return ForwardMixing(x, g, CpuTokenMixing.Merge, CpuTokenMixing.Emit);
        if (GpuTokenMixing.Supports(x, g, compute)) return ForwardMixing(x, g, GpuTokenMixing.Merge, GpuTokenMixing.Emit);
        var (xg, logits, w) = Route(x, g);                                 // (T, G, g, d), (T, G, g, E) ×2
        var merged = w.transpose(2, 3).To(compute).matmul(xg.To(compute)); // (T, G, E, d) one mixed token per expert
        var perExpert = merged.reshape(T * G, E, d).transpose(0, 1);       // (E, T·G, d)
        var y = experts.forward(perExpert)                                 // (E, T·G, d)
            .transpose(0, 1).reshape(T, G, E, d);                          // (T, G, E, d)

        var outG = EmitWeights(logits, w, 2).To(compute).matmul(y);        // (T, G, g, d) each token gets its share
        Record(w);
        return outG.reshape(T, B, d).transpose(0, 1);                      // (B, T, d)
    }

    /// <summary>The same layer on mixing kernels (<see cref="CpuTokenMixing"/> on one CPU thread, <see cref="GpuTokenMixing"/>
    /// on a GPU): routing in the tokens' own (B, T, ·) layout, viewed as (G, g, T, ·) for the softmax over each group,
    /// and no transposes around the experts.</summary>
    Tensor ForwardMixing(Tensor x, int g, Func<Tensor, Tensor, int, Tensor> merge, Func<Tensor, Tensor, int, Tensor> emit)
    {
        long B = x.shape[0], T = x.shape[1], E = Experts;
        var logits = x.matmul(controller).view(B / g, g, T, E);            // (G, g, T, E) fp32 routing
        var w = Weights(logits, 1);                                        // (G, g, T, E) over each group's members
        var y = experts.forward(merge(x, w.reshape(B, T, E), g));          // (E, G·T, d)
        var output = emit(y, EmitWeights(logits, w, 1).reshape(B, T, E), g); // (B, T, d)
        Record(w.permute(2, 0, 1, 3));                                     // (T, G, g, E) view
        return output;
    }

    /// <summary>Merge weights for a batch grouped by <paramref name="g"/>: (T, B/g, g, E), each expert's column a
    /// distribution over the group (one-hot under discrete evaluation).</summary>
    public Tensor MergeWeights(Tensor x, int g) => Route(x, g).W;

    (Tensor Xg, Tensor Logits, Tensor W) Route(Tensor x, int g)
    {
        long B = x.shape[0], T = x.shape[1], d = x.shape[2];
        var xg = x.transpose(0, 1).reshape(T, B / g, g, d);                // (T, G, g, d) group = g examples at one position
        var logits = xg.matmul(controller);                                // (T, G, g, E) fp32 routing
        return (xg, logits, Weights(logits, 2));                           // (T, G, g, E) sums to 1 over g
    }

    /// <summary>Merge weights from controller logits whose dimension <paramref name="groupDim"/> runs over a group's
    /// members: the tempered softmax over it, or one-hot argmax under discrete evaluation (one token per expert).</summary>
    Tensor Weights(Tensor logits, long groupDim) => !training && DiscreteEval
        ? functional.one_hot(logits.argmax(groupDim), logits.shape[groupDim]).to_type(logits.dtype).movedim([-1], [groupDim])
        : functional.softmax(Tempered(logits, logTempMerge), groupDim);

    /// <summary>Emit weights: the merge weights, a softmax over experts (the last dimension), or the merge softmax with
    /// the separate learnable emit temperature.</summary>
    Tensor EmitWeights(Tensor logits, Tensor merge, long groupDim)
    {
        if (cfg.EmitOverExperts) return functional.softmax(Tempered(logits, logTempEmit), -1);
        if (logTempEmit is not null && !(!training && DiscreteEval)) return functional.softmax(Tempered(logits, logTempEmit), groupDim);
        return merge;
    }

    /// <summary>Batch of one (sampling): there is no group to mix, so each token goes, whole, to the expert
    /// whose controller logit is highest — discrete routing with the trained weights.</summary>
    Tensor ForwardSingleSequence(Tensor x)
    {
        long T = x.shape[1], d = x.shape[2], E = Experts;
        var flat = x.reshape(T, d);                                        // (T, d)
        var choice = flat.matmul(controller).argmax(1);                    // (T) expert per token
        var oneHot = functional.one_hot(choice, E).to_type(flat.dtype);    // (T, E)
        var all = experts.forward(flat.unsqueeze(0).expand(E, T, d));      // (E, T, d) every expert, every token
        var picked = (all.permute(1, 0, 2) * oneHot.To(compute).unsqueeze(2)).sum(1); // (T, d)
        return picked.reshape(1, T, d);
    }

    Tensor Tempered(Tensor logits, Parameter? logTemperature) =>
        logTemperature is not null ? logits / logTemperature.exp()
        : cfg.Temperature == 1.0 ? logits : logits / cfg.Temperature;   // no division (and its backward) at T = 1

    /// <summary>Merge temperature now (learnable or fixed).</summary>
    public double Temperature => logTempMerge is null ? cfg.Temperature : Math.Exp(logTempMerge.item<float>());

    void Record(Tensor w)
    {
        if (Stats == StatsLevel.None) { LastStats = null; return; }
        using var _ = no_grad();
        var wd = w.detach();
        var s = new LayerStats
        {
            Entropy = NormalisedEntropy(wd, 2),
            Temperature = Stats == StatsLevel.Full ? Temperature : null,
        };
        if (Stats == StatsLevel.Full)
        {
            long t = wd.shape[0] / 2;
            s.MergeSample = wd[t, 0].clone();                              // (g, E) middle position, first group
            s.Load = wd.amax([2]).mean([0, 1]);                            // (E) how peaked each expert's mix is: 1/g uniform … 1 one token
        }
        LastStats = s;
    }
}
