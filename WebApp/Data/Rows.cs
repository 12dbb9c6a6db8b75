using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;

namespace MoTLab.WebApp.Data;

/// <summary>One training run and its summary (kept current as telemetry arrives).</summary>
public sealed class RunRow
{
    public int Id { get; set; }
    public string Name { get; set; } = "";
    public RunStatus Status { get; set; }
    public string ConfigJson { get; set; } = "{}";
    public string? Preset { get; set; }
    public string Kind { get; set; } = "dense";
    public string Tags { get; set; } = "";
    public string Notes { get; set; } = "";
    public string Device { get; set; } = "cpu";
    public DateTime CreatedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? EndedAt { get; set; }
    public string? Error { get; set; }
    /// <summary>A problem the run survived, e.g. telemetry the dashboard could not store (database full or locked).</summary>
    public string? Warning { get; set; }
    public long? Parameters { get; set; }
    public double FlopsPerToken { get; set; }
    public long TotalSteps { get; set; }
    public long LastStep { get; set; }
    public double? LastLoss { get; set; }
    public double? BestLoss { get; set; }
    public double? LastEvalLoss { get; set; }
    public double? BestEvalLoss { get; set; }
    public double? TokensPerS { get; set; }
    public double? ElapsedS { get; set; }
    public int? ParentId { get; set; }
    public string? WorkerTokenHash { get; set; }
    /// <summary>The batch job of a Slurm-pool run.</summary>
    public string? ExternalJob { get; set; }
    /// <summary>Where the run stands beyond its status, e.g. "Slurm job 12 pending (Resources)".</summary>
    public string? StatusDetail { get; set; }
    public int? WorkerPid { get; set; }
    public string RunDir { get; set; } = "";
}

/// <summary>Light stats of one logged step. Key (RunId, Step).</summary>
public sealed class MetricRow
{
    public int RunId { get; set; }
    public long Step { get; set; }
    public long Tokens { get; set; }
    public double ElapsedS { get; set; }
    public double TrainLoss { get; set; }
    public double? EvalLoss { get; set; }
    public double Lr { get; set; }
    public double GradNorm { get; set; }
    public double TokensPerS { get; set; }
    public double Mfu { get; set; }
    public double AuxLoss { get; set; }
    public double? DroppedRatio { get; set; }
    public double? RouterEntropy { get; set; }
    /// <summary>Extra eval losses (MoT discrete / other group sizes) as JSON, when present.</summary>
    public string? EvalExtraJson { get; set; }

    public StepMetrics ToStepMetrics() => new()
    {
        Step = Step, Tokens = Tokens, ElapsedS = ElapsedS, TrainLoss = TrainLoss, EvalLoss = EvalLoss, Lr = Lr, GradNorm = GradNorm,
        TokensPerS = TokensPerS, Mfu = Mfu, AuxLoss = AuxLoss, DroppedRatio = DroppedRatio, RouterEntropy = RouterEntropy,
        EvalExtra = EvalExtraJson is null ? null : System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, double>>(EvalExtraJson),
    };
}

/// <summary>A checkpoint of a run. Key (RunId, Step).</summary>
public sealed class CheckpointRow
{
    public int RunId { get; set; }
    public long Step { get; set; }
    public string Path { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public double? TrainLoss { get; set; }
    public double? EvalLoss { get; set; }
}

/// <summary>One routing snapshot of one sparse layer, stored as its JSON. Key (RunId, Layer, Step).</summary>
public sealed class RoutingRow
{
    public int RunId { get; set; }
    public int Layer { get; set; }
    public long Step { get; set; }
    public string Json { get; set; } = "{}";
}
