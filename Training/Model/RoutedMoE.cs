using MoTLab.Shared.Config;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Model;

/// <summary>What token-choice and expert-choice MoE share: a router giving each token a score per expert and a bank
/// of E experts. They differ only in who picks whom.</summary>
public abstract class RoutedMoE : SparseFeedForward
{
    protected readonly Parameter router;  // (d, E)
    protected readonly ExpertBank experts;
    protected readonly FfnConfig cfg;
    protected readonly ScalarType compute; // the experts' dtype

    public override int Experts => experts.Experts;
    public ExpertBank ExpertWeights => experts;
    public Tensor Router => router;

    protected RoutedMoE(string name, int dModel, FfnConfig cfg, int denseMultiplier, WeightInit weights, ScalarType compute) : base(name)
    {
        this.cfg = cfg; this.compute = compute;
        router = Parameter(empty(dModel, cfg.EffectiveExperts));
        weights.Fill(router, fanIn: dModel);
        experts = new ExpertBank(cfg.EffectiveExperts, dModel, cfg.ExpertHidden(dModel, denseMultiplier), weights, compute);
        RegisterComponents();
    }
}
