namespace MoTLab.Shared.Config;

/// <summary>Transition tuning (docs/architecture.md): a trained MoT model becomes a token-choice MoE that shares its
/// controller (as the router) and its experts, then trains on, so that single-sequence inference is a real
/// MoE rather than MoT's batch-1 approximation. With top-1, straight-through gates and capacity to spare, the new
/// model computes exactly what the MoT model computes on one sequence (each token to its argmax expert).</summary>
public static class Transition
{
    /// <summary>Whether a run of <paramref name="kind"/> can transition (the Run page offers it).</summary>
    public static bool From(FfnKind kind) => kind == FfnKind.MoT;

    /// <summary>The token-choice run that continues <paramref name="mot"/> from <paramref name="checkpoint"/> for <paramref name="steps"/>.</summary>
    public static RunConfig ToTokenChoice(RunConfig mot, string checkpoint, int steps, double capacityFactor = 2.0)
    {
        var m = mot.Model;
        if (!From(m.Ffn.Kind)) throw new ArgumentException($"only a MoT run can transition to token-choice; this one is {m.Ffn.Kind.Info().Label}");
        var ffn = m.Ffn with
        {
            Kind = FfnKind.TokenChoice, TopK = 1, CapacityFactor = capacityFactor, StraightThroughGate = true,
            ExpertWidth = m.Ffn.ExpertHidden(m.DModel, m.DenseMultiplier) * Math.Max(1, m.Ffn.Granularity),   // the MoT experts' own width
        };
        return mot with
        {
            Name = $"{mot.Name} → token-choice", Preset = null, Model = m with { Ffn = ffn },
            Train = mot.Train with { Steps = steps, InitFrom = checkpoint, Gpus = 1 },   // one process, whatever the source took
        };
    }

    /// <summary>How a checkpoint's weight names map into a model of <paramref name="target"/>'s kind when a run starts
    /// from it (train.init_from): a token-choice model takes a MoT checkpoint's controller as its router
    /// (<see cref="MapWeightName"/>); every other kind keeps the names (a MoT run continues a MoT checkpoint as it is).</summary>
    public static Func<string, string?> WeightNamesInto(ModelConfig target) =>
        target.Ffn.Kind == FfnKind.TokenChoice ? MapWeightName : name => name;

    /// <summary>A MoT weight's name in the token-choice model: the controller is the router; the learnable
    /// temperatures have no counterpart (argmax routing ignores them); everything else keeps its name.</summary>
    public static string? MapWeightName(string name) =>
        name.EndsWith(".ffn.controller", StringComparison.Ordinal) ? name[..^"controller".Length] + "router"
        : name.EndsWith(".ffn.logTempMerge", StringComparison.Ordinal) || name.EndsWith(".ffn.logTempEmit", StringComparison.Ordinal) ? null
        : name;
}
