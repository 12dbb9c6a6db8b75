using MoTLab.Shared.Config;
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
    public FfnKind Kind { get; set; }
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

/// <summary>Light stats of one logged step. Key (RunId, Step). SQLite has no NaN (it reads NaN as NULL), so a NaN is
/// stored as NULL and its field named in <see cref="NotANumber"/>; ±Infinity is stored as it is. A diverging run's
/// steps are kept as they were logged.</summary>
public sealed class MetricRow
{
    public int RunId { get; set; }
    public long Step { get; set; }
    public long Tokens { get; set; }
    public double? ElapsedS { get; set; }
    public double? Time { get; set; }
    public double? TrainLoss { get; set; }
    public double? EvalLoss { get; set; }
    public double? Lr { get; set; }
    public double? GradNorm { get; set; }
    public double? TokensPerS { get; set; }
    public double? Mfu { get; set; }
    public double? AuxLoss { get; set; }
    public double? BalanceLoss { get; set; }
    public double? ZLoss { get; set; }
    public double? DroppedRatio { get; set; }
    public double? RouterEntropy { get; set; }
    public double? RssMb { get; set; }
    public double? CpuPercent { get; set; }
    public double? GpuUtilPercent { get; set; }
    public double? GpuMemoryMb { get; set; }
    /// <summary>Extra eval losses (MoT discrete / other group sizes) as JSON (NaN written as "NaN"), when present.</summary>
    public string? EvalExtraJson { get; set; }
    /// <summary>The snake_case names of the fields that were NaN, comma-separated; null when none was.</summary>
    public string? NotANumber { get; set; }

    static readonly System.Text.Json.JsonSerializerOptions ExtraJson = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static MetricRow From(int runId, StepMetrics m)
    {
        var nan = new List<string>();
        double? Keep(double? v, string name) { if (v is { } d && double.IsNaN(d)) { nan.Add(name); return null; } return v; }
        var row = new MetricRow
        {
            RunId = runId, Step = m.Step, Tokens = m.Tokens, ElapsedS = Keep(m.ElapsedS, "elapsed_s"), Time = Keep(m.Time, "time"),
            TrainLoss = Keep(m.TrainLoss, "train_loss"), EvalLoss = Keep(m.EvalLoss, "eval_loss"), Lr = Keep(m.Lr, "lr"),
            GradNorm = Keep(m.GradNorm, "grad_norm"), TokensPerS = Keep(m.TokensPerS, "tokens_per_s"), Mfu = Keep(m.Mfu, "mfu"),
            AuxLoss = Keep(m.AuxLoss, "aux_loss"), BalanceLoss = Keep(m.BalanceLoss, "balance_loss"), ZLoss = Keep(m.ZLoss, "z_loss"),
            DroppedRatio = Keep(m.DroppedRatio, "dropped_ratio"), RouterEntropy = Keep(m.RouterEntropy, "router_entropy"),
            RssMb = Keep(m.RssMb, "rss_mb"), CpuPercent = Keep(m.CpuPercent, "cpu_percent"),
            GpuUtilPercent = Keep(m.GpuUtilPercent, "gpu_util_percent"), GpuMemoryMb = Keep(m.GpuMemoryMb, "gpu_memory_mb"),
            EvalExtraJson = m.EvalExtra is { Count: > 0 } x ? System.Text.Json.JsonSerializer.Serialize(x, ExtraJson) : null,
        };
        row.NotANumber = nan.Count > 0 ? string.Join(',', nan) : null;
        return row;
    }

    public StepMetrics ToStepMetrics()
    {
        var nan = NotANumber?.Split(',') ?? [];
        double? Read(double? v, string name) => v ?? (nan.Contains(name) ? double.NaN : null);
        return new()
        {
            Step = Step, Tokens = Tokens, ElapsedS = Read(ElapsedS, "elapsed_s") ?? 0, Time = Read(Time, "time") ?? 0,
            TrainLoss = Read(TrainLoss, "train_loss") ?? double.NaN, EvalLoss = Read(EvalLoss, "eval_loss"), Lr = Read(Lr, "lr") ?? 0,
            GradNorm = Read(GradNorm, "grad_norm") ?? 0, TokensPerS = Read(TokensPerS, "tokens_per_s") ?? 0, Mfu = Read(Mfu, "mfu") ?? 0,
            AuxLoss = Read(AuxLoss, "aux_loss") ?? 0, BalanceLoss = Read(BalanceLoss, "balance_loss"), ZLoss = Read(ZLoss, "z_loss"),
            DroppedRatio = Read(DroppedRatio, "dropped_ratio"), RouterEntropy = Read(RouterEntropy, "router_entropy"),
            RssMb = Read(RssMb, "rss_mb"), CpuPercent = Read(CpuPercent, "cpu_percent"),
            GpuUtilPercent = Read(GpuUtilPercent, "gpu_util_percent"), GpuMemoryMb = Read(GpuMemoryMb, "gpu_memory_mb"),
            EvalExtra = EvalExtraJson is null ? null : System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, double>>(EvalExtraJson, ExtraJson),
        };
    }
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
