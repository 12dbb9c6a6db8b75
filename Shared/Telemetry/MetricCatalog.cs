namespace MoTLab.Shared.Telemetry;

/// <summary>One chartable metric of <see cref="StepMetrics"/>: its key (the metrics.jsonl and API name), what a chart
/// calls it, how to read it from a step, and whether every logged step has it (such series are smoothed; eval losses,
/// logged every eval_every steps, are drawn as points).</summary>
public sealed record MetricInfo(string Key, string Label, Func<StepMetrics, double?> Of, bool EveryStep = true)
{
    /// <summary>The column that stores it (the <see cref="StepMetrics"/> property's name); null for an extra eval.</summary>
    public string? Column { get; init; }
}

/// <summary>Every metric a chart can draw, in the order the Compare page lists them. An extra evaluation (MoT's
/// "discrete", "group_64") is a metric too: <c>eval.NAME</c>.</summary>
public static class MetricCatalog
{
    public const string ExtraEvalPrefix = "eval.";

    public static readonly IReadOnlyList<MetricInfo> All =
    [
        new("train_loss", "train loss", m => m.TrainLoss) { Column = nameof(StepMetrics.TrainLoss) },
        new("eval_loss", "eval loss", m => m.EvalLoss, EveryStep: false) { Column = nameof(StepMetrics.EvalLoss) },
        new("lr", "learning rate", m => m.Lr) { Column = nameof(StepMetrics.Lr) },
        new("grad_norm", "gradient norm", m => m.GradNorm) { Column = nameof(StepMetrics.GradNorm) },
        new("tokens_per_s", "tokens / s", m => m.TokensPerS) { Column = nameof(StepMetrics.TokensPerS) },
        new("mfu", "model FLOPs utilisation", m => m.Mfu) { Column = nameof(StepMetrics.Mfu) },
        new("router_entropy", "router / merge-weight entropy (normalised)", m => m.RouterEntropy) { Column = nameof(StepMetrics.RouterEntropy) },
        new("dropped_ratio", "dropped tokens (share)", m => m.DroppedRatio) { Column = nameof(StepMetrics.DroppedRatio) },
        new("aux_loss", "aux loss (balance + z)", m => m.AuxLoss) { Column = nameof(StepMetrics.AuxLoss) },
        new("balance_loss", "balance loss", m => m.BalanceLoss) { Column = nameof(StepMetrics.BalanceLoss) },
        new("z_loss", "router z-loss", m => m.ZLoss) { Column = nameof(StepMetrics.ZLoss) },
        new("rss_mb", "worker memory (MB)", m => m.RssMb) { Column = nameof(StepMetrics.RssMb) },
        new("cpu_percent", "worker CPU (% of a core)", m => m.CpuPercent) { Column = nameof(StepMetrics.CpuPercent) },
        new("gpu_util_percent", "GPU utilisation (%)", m => m.GpuUtilPercent) { Column = nameof(StepMetrics.GpuUtilPercent) },
        new("gpu_memory_mb", "GPU memory used (MB)", m => m.GpuMemoryMb) { Column = nameof(StepMetrics.GpuMemoryMb) },
    ];

    public static MetricInfo TrainLoss => All[0];

    /// <summary>The metric named <paramref name="key"/>: a catalogue key or <c>eval.NAME</c>; null when unknown.</summary>
    public static MetricInfo? Find(string? key)
    {
        if (string.IsNullOrEmpty(key)) return null;
        if (All.FirstOrDefault(m => m.Key == key) is { } known) return known;
        if (!key.StartsWith(ExtraEvalPrefix, StringComparison.Ordinal) || key.Length == ExtraEvalPrefix.Length) return null;
        var name = key[ExtraEvalPrefix.Length..];
        return new MetricInfo(key, $"eval {name}", m => m.EvalExtra is { } x && x.TryGetValue(name, out var v) ? v : null, EveryStep: false);
    }

    /// <summary>The metrics that <paramref name="points"/> hold a value of, catalogue order, extra evals last.</summary>
    public static IReadOnlyList<MetricInfo> Present(IEnumerable<IReadOnlyList<StepMetrics>> runs)
    {
        var lists = runs.ToList();
        var present = All.Where(m => lists.Any(p => p.Any(s => m.Of(s) is { } v && !(m.Key is "aux_loss" && v == 0)))).ToList();
        foreach (var name in lists.SelectMany(p => p.SelectMany(s => s.EvalExtra?.Keys ?? [])).Distinct().Order(StringComparer.Ordinal))
            present.Add(Find(ExtraEvalPrefix + name)!);
        return present;
    }
}
