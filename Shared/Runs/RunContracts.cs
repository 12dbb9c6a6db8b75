using MoTLab.Shared.Telemetry;

namespace MoTLab.Shared.Runs;

public enum RunStatus { Queued, Running, Completed, Failed, Cancelled, Interrupted }

/// <summary>What a worker reports about its run's lifecycle.</summary>
public sealed record WorkerStatus(RunStatus Status, string? Error = null, long? Step = null, long? Parameters = null, string? Device = null);

/// <summary>A checkpoint a worker wrote: its step and folder (on the worker's machine).</summary>
public sealed record CheckpointInfo(long Step, string Path, double? TrainLoss, double? EvalLoss);

/// <summary>The hub's answer to a worker's hello: the run's config (JSON, as stored) and the folders its corpus
/// files must resolve into (the dashboard's data roots and uploads folder); the worker checks every file it opens.</summary>
public sealed record WorkerAssignment(string ConfigJson, IReadOnlyList<string> DataRoots);

/// <summary>What a <see cref="RunEvent"/> carries; on the wire its lower-case name ("metrics").</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<RunEventKind>))]
public enum RunEventKind
{
    [System.Text.Json.Serialization.JsonStringEnumMemberName("metrics")] Metrics,       // Metrics: the logged steps
    [System.Text.Json.Serialization.JsonStringEnumMemberName("routing")] Routing,       // Routing: snapshots
    [System.Text.Json.Serialization.JsonStringEnumMemberName("status")] Status,         // Status: the run's new status
    [System.Text.Json.Serialization.JsonStringEnumMemberName("log")] Log,               // Log: worker (or dashboard) lines
    [System.Text.Json.Serialization.JsonStringEnumMemberName("checkpoint")] Checkpoint, // Checkpoint: one written
    [System.Text.Json.Serialization.JsonStringEnumMemberName("warning")] Warning,       // the run's warning changed: re-read it
    [System.Text.Json.Serialization.JsonStringEnumMemberName("deleted")] Deleted,       // the run is gone
    [System.Text.Json.Serialization.JsonStringEnumMemberName("progress")] Progress,     // Progress: the run's summary as just stored
}

/// <summary>A run's summary as the dashboard stored it with a batch of steps (finite values only: a run whose loss turned
/// NaN keeps its last and best real loss).</summary>
public sealed record RunProgress(long LastStep, double? LastLoss, double? BestLoss, double? LastEvalLoss, double? BestEvalLoss,
    double? TokensPerS, double? ElapsedS);

/// <summary>Everything the hub pushes to a watcher of run-{id}, in order.</summary>
public sealed record RunEvent(int RunId, RunEventKind Kind, IReadOnlyList<StepMetrics>? Metrics = null,
    IReadOnlyList<RoutingSnapshot>? Routing = null, WorkerStatus? Status = null, IReadOnlyList<string>? Log = null,
    CheckpointInfo? Checkpoint = null, RunProgress? Progress = null);

/// <summary>The SignalR hub's contract (/hubs/runs). Workers authenticate every call with their per-run token;
/// watchers (browsers, scripts) join a run's group and receive <see cref="IRunsClient"/> calls.</summary>
public static class RunsHubContract
{
    public const string Path = "/hubs/runs";
    /// <summary>The JSON of the hub's messages, on the hub and on every client: NaN and ±Infinity travel as "NaN" and
    /// "Infinity", so a diverging run's steps arrive as they were logged.</summary>
    public static void Payload(System.Text.Json.JsonSerializerOptions o) => o.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals;
    // worker → server
    public const string Hello = "WorkerHello";            // (runId, token) → WorkerAssignment
    public const string ReportMetrics = "ReportMetrics";  // (runId, token, StepMetrics[])
    public const string ReportRouting = "ReportRouting";  // (runId, token, RoutingSnapshot[])
    public const string ReportStatus = "ReportStatus";    // (runId, token, WorkerStatus)
    public const string ReportLog = "ReportLog";          // (runId, token, string[])
    public const string ReportCheckpoint = "ReportCheckpoint"; // (runId, token, CheckpointInfo)
    public const string Heartbeat = "Heartbeat";          // (runId, token) every 15 s of silence
    /// <summary>Start of the hub's answer to a call whose token is wrong or expired (the run was deleted or ended).</summary>
    public const string TokenRefused = "invalid or expired worker token";
    // watcher → server
    public const string Subscribe = "Subscribe";          // (runId)
    public const string Unsubscribe = "Unsubscribe";      // (runId)
}

/// <summary>Server → client calls.</summary>
public interface IRunsClient
{
    /// <summary>To watchers of the run's group.</summary>
    Task RunEvent(RunEvent e);
    /// <summary>To the run's worker: checkpoint and stop.</summary>
    Task Cancel(int runId);
}
