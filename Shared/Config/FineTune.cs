namespace MoTLab.Shared.Config;

/// <summary>Lightweight-experts fine-tuning (DESIGN §3.4): a dense run's checkpoint, frozen, with MoV or MoLoRA experts
/// in every block; only the routers and experts train. The data, schedule shape and seed stay those of the dense run.</summary>
public static class FineTune
{
    public static RunConfig WithLightweightExperts(RunConfig dense, string checkpoint, FfnKind kind, int experts, int rank, int steps, double? learningRate = null)
    {
        if (dense.Model.Ffn.Kind != FfnKind.Dense) throw new ArgumentException($"lightweight experts fine-tune a dense model; this one is {dense.Model.Ffn.Kind}");
        if (kind is not (FfnKind.MoV or FfnKind.MoLoRA)) throw new ArgumentException($"kind must be mov or molora, not {kind}");
        var ffn = new FfnConfig { Kind = kind, Experts = experts, Rank = rank, LoraAlpha = 2 * rank };
        return dense with
        {
            Name = $"{dense.Name} → {(kind == FfnKind.MoV ? "MoV" : "MoLoRA")}", Preset = null, Model = dense.Model with { Ffn = ffn },
            Train = dense.Train with { Steps = steps, InitFrom = checkpoint, LearningRate = learningRate ?? dense.Train.LearningRate },
        };
    }
}
