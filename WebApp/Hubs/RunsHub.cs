using Microsoft.AspNetCore.SignalR;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Hubs;

/// <summary>/hubs/runs: workers report telemetry with their per-run token; watchers join run-{id} and get
/// every event. Telemetry is queued for the batched writer and fanned out at once.</summary>
public sealed class RunsHub(WorkerTokens tokens, WorkerConnections workers, RunService runs, RemoteWorkers remote, TelemetryWriter writer,
    CorpusCatalog corpora) : Hub<IRunsClient>
{
    /// <summary>A connection opened with a worker token (query access_token, or a bearer header) is that run's worker:
    /// <see cref="AccessAuthentication"/> named the run in the connection's user.</summary>
    public override Task OnConnectedAsync()
    {
        if (AccessAuthentication.RunOf(Context.User) is { } run) workers.Bind(Context, run);
        return base.OnConnectedAsync();
    }

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        workers.Forget(Context);
        return base.OnDisconnectedAsync(exception);
    }

    public static string RunGroup(int runId) => $"run-{runId}";
    public static string WorkerGroup(int runId) => $"worker-{runId}";

    public async Task<WorkerAssignment> WorkerHello(int runId, string token)
    {
        await Authorize(runId, token);
        await Groups.AddToGroupAsync(Context.ConnectionId, WorkerGroup(runId));
        var run = await runs.GetAsync(runId) ?? throw new HubException($"run {runId} does not exist");
        await remote.OnHelloAsync(runId);
        return new WorkerAssignment(run.ConfigJson, corpora.Roots);
    }

    public async Task ReportMetrics(int runId, string token, StepMetrics[] metrics)
    {
        await Authorize(runId, token);
        if (metrics.Length == 0) return;
        await writer.EnqueueAsync(runId, metrics);
        runs.Publish(new RunEvent(runId, RunEventKind.Metrics, Metrics: metrics));
    }

    public async Task ReportRouting(int runId, string token, RoutingSnapshot[] snapshots)
    {
        await Authorize(runId, token);
        if (snapshots.Length == 0) return;
        await writer.EnqueueAsync(runId, snapshots);
        runs.Publish(new RunEvent(runId, RunEventKind.Routing, Routing: snapshots));
    }

    public async Task ReportStatus(int runId, string token, WorkerStatus status)
    {
        await Authorize(runId, token);
        if (status.Status != RunStatus.Running) await writer.FlushAsync(runId); // the summary covers every step first
        await runs.ApplyWorkerStatusAsync(runId, status);
    }

    public async Task ReportLog(int runId, string token, string[] lines)
    {
        await Authorize(runId, token);
        runs.Publish(new RunEvent(runId, RunEventKind.Log, Log: lines));
    }

    public async Task ReportCheckpoint(int runId, string token, CheckpointInfo checkpoint)
    {
        await Authorize(runId, token);
        await runs.RecordCheckpointAsync(runId, checkpoint);
    }

    public Task Subscribe(int runId)
    {
        if (WorkerConnections.RunOf(Context) is { } own && (own != runId || !tokens.IsKnown(own)))
            throw new HubException($"a worker's connection may watch its own run ({own}) only, while it runs");
        return Groups.AddToGroupAsync(Context.ConnectionId, RunGroup(runId));
    }
    public Task Unsubscribe(int runId) => Groups.RemoveFromGroupAsync(Context.ConnectionId, RunGroup(runId));

    /// <summary>A worker's sign of life between telemetry (every 15 s when it has nothing else to send).</summary>
    public Task Heartbeat(int runId, string token) => Authorize(runId, token);

    async Task Authorize(int runId, string token)
    {
        if (!tokens.IsValid(runId, token) && (tokens.IsKnown(runId) || !await runs.AdoptWorkerAsync(runId, token)))   // adopt: the dashboard restarted under it
            throw new HubException($"{RunsHubContract.TokenRefused} for run {runId}");
        switch (WorkerConnections.RunOf(Context))
        {
            case { } own when own != runId: throw new HubException($"this connection is run {own}'s worker; it may not report for run {runId}");
            case null: workers.Bind(Context, runId); break;    // adopted after a restart: known from now on
        }
        tokens.Touch(runId);
    }
}
