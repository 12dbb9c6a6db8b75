using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;

namespace MoTLab.WebApp.Data;

/// <summary>A sweep: the spec it was launched from (SweepSpec as JSON); its runs point at it.</summary>
public sealed class SweepRow
{
    public int Id { get; set; }
    public string Name { get; set; } = "";
    public string SpecJson { get; set; } = "{}";
    public DateTime CreatedAt { get; set; }
    /// <summary>What follows the sweep (<see cref="Runs.SweepFollowUp"/> as JSON): a preset group's comparison at each
    /// model's best learning rate; null for a sweep on its own.</summary>
    public string? ThenJson { get; set; }
}

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
    /// <summary>Where the run asked to train (cpu, cuda, cuda:N, remote, slurm).</summary>
    public DeviceRequest Requested { get; set; } = DeviceRequest.Cpu;
    /// <summary>The slot this dashboard started it on (cpu, cuda:N); null until then and in external pools.</summary>
    public string? Slot { get; set; }
    /// <summary>The device its worker reported (cpu, cuda:0); null until it says.</summary>
    public string? Reported { get; set; }
    /// <summary>Where it is, as shown: the slot, or the pool and the reported device ("slurm:cuda:0").</summary>
    public string Device => Requested.Shown(Slot, Reported);
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
    /// <summary>The sweep the run belongs to, if any.</summary>
    public int? SweepId { get; set; }
    public string? WorkerTokenHash { get; set; }
    /// <summary>The batch job of a Slurm-pool run.</summary>
    public string? ExternalJob { get; set; }
    /// <summary>Where the run stands beyond its status, e.g. "Slurm job 12 pending (Resources)".</summary>
    public string? StatusDetail { get; set; }
    public int? WorkerPid { get; set; }
    public string RunDir { get; set; } = "";

    public RunProgress Progress => new(LastStep, LastLoss, BestLoss, LastEvalLoss, BestEvalLoss, TokensPerS, ElapsedS);

    /// <summary>Takes the summary the telemetry writer just stored (a page keeps its copy current without re-reading it).</summary>
    public void Apply(RunProgress p)
    {
        LastStep = p.LastStep; LastLoss = p.LastLoss; BestLoss = p.BestLoss; LastEvalLoss = p.LastEvalLoss; BestEvalLoss = p.BestEvalLoss;
        TokensPerS = p.TokensPerS; ElapsedS = p.ElapsedS;
    }
}

/// <summary>One logged step of a run, key (RunId, Step). Its metric values are columns named as
/// <see cref="StepMetrics"/>' numbers (<see cref="MetricColumns"/>: EF shadow properties, written and read there), so
/// this row holds only what is not a metric.</summary>
public sealed class MetricRow
{
    public int RunId { get; set; }
    public long Step { get; set; }
    public long Tokens { get; set; }
    /// <summary>Extra eval losses (MoT discrete / other group sizes) as JSON (NaN written as "NaN"), when present.</summary>
    public string? EvalExtraJson { get; set; }
    /// <summary>The keys of the metrics that were NaN, comma-separated; null when none was.</summary>
    public string? NotANumber { get; set; }
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
