namespace MoTLab.Shared.Config;

/// <summary>The learning-rate sweep a fair comparison starts with (the MoT paper tunes each model's peak rate): for every
/// model of a preset group, <see cref="Rates"/> rates spread evenly in the logarithm from its preset's rate ÷
/// <see cref="Spread"/> to × <see cref="Spread"/>, each trained for <see cref="StepShare"/> of the comparison's steps;
/// the comparison then trains every model at the rate with its lowest final eval loss.</summary>
public static class LearningRateSweeps
{
    public const int Rates = 5;
    public const double StepShare = 0.2, Spread = 3;

    /// <summary>The sweep of one preset's learning rate over <paramref name="rates"/> rates, for a comparison of
    /// <paramref name="steps"/> steps (the preset's own when null).</summary>
    public static SweepSpec For(string preset, int? steps, string? device, IReadOnlyList<string>? tags = null, int rates = Rates)
    {
        var cfg = Presets.Find(preset)?.Config ?? throw new ArgumentException($"unknown preset '{preset}'");
        double lr = cfg.Train.LearningRate;
        int sweepSteps = Math.Max(1, (int)Math.Round(StepShare * (steps ?? cfg.Train.Steps)));
        return new SweepSpec
        {
            Name = $"{preset} lr", Preset = preset, Device = device, Tags = tags,
            Axes =
            [
                new SweepAxis { Path = "train.learning_rate", Min = lr / Spread, Max = lr * Spread, Count = rates, Log = true },
                new SweepAxis { Path = "train.steps", Values = [System.Text.Json.JsonSerializer.SerializeToElement(sweepSteps)] },
            ],
        };
    }

    /// <summary>The rate with the lowest final loss among the finished runs, or null when none finished.</summary>
    public static double? Best(IEnumerable<(double LearningRate, double? FinalLoss)> runs) =>
        runs.Where(r => r.FinalLoss is { } loss && double.IsFinite(loss)).ToList() is { Count: > 0 } finished ? finished.MinBy(r => r.FinalLoss)!.LearningRate : null;
}
