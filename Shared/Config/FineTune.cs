namespace MoTLab.Shared.Config;

/// <summary>Lightweight-experts fine-tuning (docs/architecture.md): a dense run's checkpoint, frozen, with MoV or MoLoRA experts
/// in every block; only the routers and experts train. The data, schedule shape and seed stay those of the dense run.</summary>
public static class FineTune
{
    /// <summary>Whether a run of <paramref name="kind"/> can be fine-tuned with lightweight experts (the Run page offers it).</summary>
    public static bool From(FfnKind kind) => kind == FfnKind.Dense;

    public static RunConfig WithLightweightExperts(RunConfig dense, string checkpoint, FfnKind kind, int experts, int rank, int steps, double? learningRate = null)
    {
        if (!From(dense.Model.Ffn.Kind)) throw new ArgumentException($"lightweight experts fine-tune a dense model; this one is {dense.Model.Ffn.Kind.Info().Label}");
        if (!kind.Info().Lightweight) throw new ArgumentException($"kind must be {string.Join(" or ", FfnKinds.All.Where(k => k.Lightweight).Select(k => k.Name))}, not {kind.Info().Name}");
        var ffn = new FfnConfig { Kind = kind, Experts = experts, Rank = rank, LoraAlpha = 2 * rank };
        return dense with
        {
            Name = $"{dense.Name} → {kind.Info().Label}", Preset = null, Model = dense.Model with { Ffn = ffn },
            Train = dense.Train with { Steps = steps, InitFrom = checkpoint, LearningRate = learningRate ?? dense.Train.LearningRate, Gpus = 1 },
        };
    }
}
