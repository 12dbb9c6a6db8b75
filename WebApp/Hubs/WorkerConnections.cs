using System.Collections.Concurrent;
using Microsoft.AspNetCore.SignalR;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Hubs;

/// <summary>Hub connections opened with a run's worker token. Such a connection reaches its own run only, and closes
/// when that token is revoked (the run ended or was deleted), after a grace that lets the worker's last report and
/// its answer cross.</summary>
public sealed class WorkerConnections
{
    public static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(10);
    const string RunKey = "motlab.worker_run";
    private readonly ConcurrentDictionary<string, (int RunId, HubCallerContext Context)> open = new();

    public WorkerConnections(WorkerTokens tokens) => tokens.Revoked += OnRevoked;

    /// <summary>Marks the connection as run <paramref name="runId"/>'s worker.</summary>
    public void Bind(HubCallerContext context, int runId)
    {
        context.Items[RunKey] = runId;
        open[context.ConnectionId] = (runId, context);
    }

    /// <summary>The run a worker connection belongs to; null for a watcher (browser, script).</summary>
    public static int? RunOf(HubCallerContext context) => context.Items.TryGetValue(RunKey, out var v) && v is int id ? id : null;

    public void Forget(HubCallerContext context) => open.TryRemove(context.ConnectionId, out _);

    void OnRevoked(int runId)
    {
        foreach (var (id, (run, context)) in open)
            if (run == runId)
                _ = Task.Delay(CloseGrace).ContinueWith(_ => { if (open.TryRemove(id, out var c) && c.RunId == runId) c.Context.Abort(); }, TaskScheduler.Default);
    }
}
