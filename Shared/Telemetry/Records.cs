namespace MoTLab.Shared.Telemetry;

/// <summary>Light stats of one logged step (metrics.jsonl, one object per line, snake_case). Each number is a column of
/// the dashboard's Metrics table by its property name (WebApp/Data/MetricColumns.cs), in this order in its CSV.</summary>
public sealed record StepMetrics
{
    public long Step { get; init; }
    public long Tokens { get; init; }
    public double ElapsedS { get; init; }
    /// <summary>Wall clock when the step was logged, Unix seconds (for latency and cross-run time alignment).</summary>
    public double Time { get; init; }
    public double TrainLoss { get; init; }
    public double? EvalLoss { get; init; }
    public double Lr { get; init; }
    public double GradNorm { get; init; }
    public double TokensPerS { get; init; }
    public double Mfu { get; init; }
    /// <summary>Sum of auxiliary losses added to the objective (MoE balance + z-loss); 0 for dense/MoT.</summary>
    public double AuxLoss { get; init; }
    public double? BalanceLoss { get; init; }
    public double? ZLoss { get; init; }
    /// <summary>Mean over token-choice layers of the dropped share of token→expert assignments.</summary>
    public double? DroppedRatio { get; init; }
    /// <summary>Mean normalised router entropy over sparse layers (MoT: of the merge weights).</summary>
    public double? RouterEntropy { get; init; }
    /// <summary>The worker's resident memory, MB (the latest sample of the worker's system sampler).</summary>
    public double? RssMb { get; init; }
    /// <summary>The worker's CPU use, percent of one core (200 = two busy cores).</summary>
    public double? CpuPercent { get; init; }
    /// <summary>The run's GPU: utilisation (percent) and used memory (MB) as nvidia-smi reports them; absent on the CPU.</summary>
    public double? GpuUtilPercent { get; init; }
    public double? GpuMemoryMb { get; init; }
    /// <summary>Extra evaluation losses, e.g. "discrete" or "group_64" for MoT.</summary>
    public IReadOnlyDictionary<string, double>? EvalExtra { get; init; }
}

/// <summary>Heavy per-layer routing state, every K steps (routing.jsonl).</summary>
public sealed record RoutingSnapshot
{
    public long Step { get; init; }
    public int Layer { get; init; }
    public MoTLab.Shared.Config.FfnKind Kind { get; init; }
    public int Experts { get; init; }
    /// <summary>Mean normalised entropy of the routing distribution (1 = uniform).</summary>
    public double Entropy { get; init; }
    /// <summary>MoT: merge weights of one sample group, [token in group][expert] (g × E).</summary>
    public float[][]? MergeWeights { get; init; }
    public double? Temperature { get; init; }
    /// <summary>MoT: mean merge weight per expert; MoE: share of routed tokens per expert.</summary>
    public float[]? ExpertLoad { get; init; }
    public double? DroppedRatio { get; init; }
    public double? MaxLoad { get; init; }
    public double? MinLoad { get; init; }
    public int? UnusedExperts { get; init; }
    /// <summary>Expert-choice: share of tokens chosen by 0, 1, 2, … experts.</summary>
    public float[]? ExpertsPerToken { get; init; }
}
