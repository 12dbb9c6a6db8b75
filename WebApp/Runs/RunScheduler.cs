using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.EntityFrameworkCore;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Runs.Pools;

namespace MoTLab.WebApp.Runs;

/// <summary>Wakes the scheduler early (a run was queued or ended).</summary>
public sealed class SchedulerSignal
{
    private readonly SemaphoreSlim gate = new(0);
    public void Wake() { if (gate.CurrentCount == 0) gate.Release(); }
    /// <summary>True when woken, false when the timeout passed.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct) => gate.WaitAsync(timeout, ct);
}

/// <summary>When each running run was asked to stop, so a worker that does not (it is blocked before its first step,
/// say on a corpus that never ends) can be killed once MoTLab:CancelGraceSeconds have passed.</summary>
public sealed class CancelRequests
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, DateTime> asked = new();
    public void Ask(int runId) => asked.TryAdd(runId, DateTime.UtcNow);
    public TimeSpan? AskedFor(int runId) => asked.TryGetValue(runId, out var t) ? DateTime.UtcNow - t : null;
    public void Forget(int runId) => asked.TryRemove(runId, out _);
}

/// <summary>The one scheduling loop: at start, runs an earlier dashboard left Running become Interrupted and each pool
/// takes up what is its own; then each pool's pass runs at its interval, and all of them at once when the loop is woken
/// (a run was queued or ended). On shutdown every pool is asked to stop its workers while the server still answers them,
/// then to leave what is left as a restart picks it up.</summary>
public sealed class RunScheduler(IDbContextFactory<MoTLabDb> dbs, IEnumerable<IDevicePool> pools, SchedulerSignal signal, ILogger<RunScheduler> log)
    : BackgroundService, IHostedLifecycleService
{
    private readonly IReadOnlyList<IDevicePool> enabled = pools.Where(p => p.Enabled).ToList();
    private readonly Lock gate = new();

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        await ReconcileAsync(stop);
        foreach (var pool in enabled)
            try { await pool.AdoptAsync(stop); }
            catch (Exception e) when (e is not OperationCanceledException) { log.LogError(e, "{Pool}: taking up earlier runs failed", pool.GetType().Name); }
        var due = enabled.ToDictionary(p => p, _ => DateTime.MinValue);
        bool woken = true;
        while (!stop.IsCancellationRequested)
        {
            foreach (var pool in enabled.Where(p => woken || DateTime.UtcNow >= due[p]))
            {
                try { await pool.PassAsync(stop); }
                catch (Exception e) when (e is not OperationCanceledException) { log.LogError(e, "{Pool} pass failed", pool.GetType().Name); }
                due[pool] = DateTime.UtcNow + pool.Interval;
            }
            var wait = due.Values.Min() - DateTime.UtcNow;
            try { woken = await signal.WaitAsync(wait < TimeSpan.Zero ? TimeSpan.Zero : wait, stop); }
            catch (OperationCanceledException) { break; }
        }
    }

    /// <summary>Runs a previous dashboard left Running have no worker now: they become Interrupted.</summary>
    async Task ReconcileAsync(CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        foreach (var run in await db.Runs.Where(r => r.Status == RunStatus.Running).ToListAsync(ct))
        {
            run.Status = RunStatus.Interrupted; run.EndedAt = DateTime.UtcNow;
            run.Error = "the dashboard restarted while this run was training";
        }
        await db.SaveChangesAsync(ct);
    }

    /// <summary>What Resume can do for a run whose worker ended early: only a checkpoint can be resumed from.</summary>
    internal static string ResumeNote(string? runDir) =>
        runDir is not null && Directory.Exists(runDir) && RunFolder.Checkpoints(runDir).Count > 0
            ? "Resume continues from the last checkpoint" : "it wrote no checkpoint, so there is nothing to resume from (start it again)";

    /// <summary>The last lines of a run's worker.log, to say why a worker ended.</summary>
    internal static string LogTail(string runDir)
    {
        var path = RunFolder.Log(runDir);
        if (!File.Exists(path)) return "";
        var lines = File.ReadLines(path).TakeLast(5).ToList();
        return lines.Count == 0 ? "" : "Last output: " + string.Join(" | ", lines);
    }

    /// <summary>The hub address workers dial: MoTLab:HubUrl, else this dashboard's first listening address.</summary>
    internal static string HubUrl(MoTLabOptions options, IServer server)
    {
        if (options.HubUrl is { Length: > 0 } configured) return configured;
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "http://127.0.0.1:5080";
        var uri = new UriBuilder(address.Replace("://+", "://localhost").Replace("://*", "://localhost"));
        if (uri.Host is "0.0.0.0" or "[::]" or "::" or "localhost") uri.Host = "127.0.0.1";
        uri.Path = Shared.Runs.RunsHubContract.Path;
        return uri.Uri.ToString();
    }

    public Task StartingAsync(CancellationToken ct) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken ct) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken ct) => Task.CompletedTask;

    // Each half runs once; a second caller (the host is stopped both by its owner and by Program's own
    // Run() when hosted in a test factory) waits for the same work instead of repeating it.
    private Task? askedToStop, stopped;

    /// <summary>Graceful shutdown (Ctrl+C, SIGTERM), first half, while the server still answers the workers.</summary>
    public Task StoppingAsync(CancellationToken ct)
    {
        lock (gate) return askedToStop ??= Task.WhenAll(enabled.Select(p => p.StoppingAsync(ct)));
    }

    /// <summary>Second half: each pool stops or hands back what is left.</summary>
    public override async Task StopAsync(CancellationToken ct)
    {
        await base.StopAsync(ct);
        Task work;
        lock (gate) work = stopped ??= StopPoolsAsync();
        await work;
    }

    async Task StopPoolsAsync()
    {
        foreach (var pool in enabled)
            try { await pool.StoppedAsync(); }
            catch (Exception e) { log.LogError(e, "{Pool}: stopping failed", pool.GetType().Name); }
    }
}
