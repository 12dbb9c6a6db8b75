using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Runs;

/// <summary>Wakes the scheduler early (a run was queued or ended).</summary>
public sealed class SchedulerSignal
{
    private readonly SemaphoreSlim gate = new(0);
    public void Wake() { if (gate.CurrentCount == 0) gate.Release(); }
    public Task WaitAsync(TimeSpan timeout, CancellationToken ct) => gate.WaitAsync(timeout, ct);
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

/// <summary>Starts queued runs, oldest first, one worker per device slot (CPU: MoTLab:CpuSlots; CUDA: one per
/// GPU, the index passed to the worker), and notices workers that exit without reporting an end.</summary>
public sealed class RunScheduler(IDbContextFactory<MoTLabDb> dbs, ILauncher launcher, WorkerTokens tokens, SchedulerSignal signal,
    RunService runs, CancelRequests cancels, IOptions<MoTLabOptions> options, IServer server, ILogger<RunScheduler> log) : BackgroundService, IHostedLifecycleService, IWorkerControl
{
    private sealed record Active(int RunId, string Slot, IWorkerHandle Worker, string RunDir);
    private readonly Dictionary<int, Active> active = new();
    private static readonly TimeSpan StartupGrace = TimeSpan.FromMinutes(2);
    private readonly Lock gate = new();

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        await ReconcileAsync(stop);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await ReapAsync(stop);
                await LaunchAsync(stop);
            }
            catch (Exception e) when (e is not OperationCanceledException) { log.LogError(e, "scheduler pass failed"); }
            try { await signal.WaitAsync(TimeSpan.FromSeconds(1), stop); } catch (OperationCanceledException) { break; }
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

    async Task LaunchAsync(CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var queued = await db.Runs.AsNoTracking().Where(r => r.Status == RunStatus.Queued).OrderBy(r => r.Id).ToListAsync(ct);
        if (queued.Count == 0) return;
        // every Running run holds its slot, also one whose worker outlived a restart and was adopted
        var used = await db.Runs.Where(r => r.Status == RunStatus.Running && r.Slot != null).Select(r => r.Slot!).ToListAsync(ct);
        foreach (var run in queued)
        {
            var slot = FreeSlot(run.Requested, used);
            if (slot is null) continue;
            // claim it: a run deleted or cancelled since the query above is not started
            var started = DateTime.UtcNow;
            if (await db.Runs.Where(r => r.Id == run.Id && r.Status == RunStatus.Queued).ExecuteUpdateAsync(u => u
                    .SetProperty(r => r.Status, RunStatus.Running).SetProperty(r => r.StartedAt, started).SetProperty(r => r.Slot, slot).SetProperty(r => r.Reported, (string?)null), ct) == 0)
                continue;
            used.Add(slot);
            var token = tokens.Issue(run.Id, out var hash);
            var o = options.Value;
            IWorkerHandle worker;
            try
            {
                worker = launcher.Launch(new WorkerLaunch(run.Id, HubUrl(), token, run.RunDir, slot,
                    run.Requested.Pool == DevicePool.Cpu ? o.CpuWorkerThreads : 0, o.CachePath));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogError(e, "run {Id}: the worker could not be started", run.Id);
                await runs.ApplyWorkerStatusAsync(run.Id, new WorkerStatus(RunStatus.Failed, Error: $"the worker could not be started: {e.Message}"), ct);
                continue;
            }
            lock (gate) active[run.Id] = new Active(run.Id, slot, worker, run.RunDir);
            if (await db.Runs.Where(r => r.Id == run.Id && r.Status == RunStatus.Running).ExecuteUpdateAsync(u => u
                    .SetProperty(r => r.WorkerTokenHash, hash).SetProperty(r => r.WorkerPid, worker.Pid), ct) == 0)
            {
                await KillAsync(run.Id);                   // deleted or stopped while it was being started
                continue;
            }
            runs.Publish(new(run.Id, RunEventKind.Status, Status: new WorkerStatus(RunStatus.Running, Device: slot)));
            log.LogInformation("run {Id} started on {Slot} (pid {Pid})", run.Id, slot, worker.Pid);
        }
    }

    /// <summary>A free slot for <paramref name="request"/> ("cpu" or "cuda:N", what the worker is given), or null.</summary>
    string? FreeSlot(DeviceRequest request, List<string> used)
    {
        const string Cpu = "cpu";
        if (request.External) return null;                                 // started by the user, or by Slurm
        if (request.Pool == DevicePool.Cpu) return used.Count(s => s == Cpu) < options.Value.CpuSlots ? Cpu : null;
        var gpus = Enumerable.Range(0, options.Value.Gpus).Where(i => request.Gpu is null || request.Gpu == i).Select(i => $"cuda:{i}");
        return gpus.FirstOrDefault(g => !used.Contains(g));
    }

    /// <summary>Workers that exited: if the run still says Running, the worker died without a word → Failed.</summary>
    async Task ReapAsync(CancellationToken ct)
    {
        List<Active> exited;
        lock (gate) exited = active.Values.Where(a => a.Worker.HasExited).ToList();
        foreach (var a in exited)
        {
            await Task.Delay(300, ct);                   // let a last status report land first
            var run = await runs.GetAsync(a.RunId, ct);
            if (run is { Status: RunStatus.Running })
                await runs.ApplyWorkerStatusAsync(a.RunId, new WorkerStatus(RunStatus.Failed,
                    Error: $"worker exited with code {a.Worker.ExitCode} without finishing. {LogTail(a.RunDir)}"), ct);
            lock (gate) active.Remove(a.RunId);
            cancels.Forget(a.RunId);
            a.Worker.Dispose();
        }

        // Cancel always ends a worker of ours: one that has not stopped within the grace is killed
        List<Active> deaf;
        var grace = TimeSpan.FromSeconds(options.Value.CancelGraceSeconds);
        lock (gate) deaf = active.Values.Where(a => !a.Worker.HasExited && cancels.AskedFor(a.RunId) > grace).ToList();
        foreach (var a in deaf)
        {
            a.Worker.Kill();
            await runs.ApplyWorkerStatusAsync(a.RunId, new WorkerStatus(RunStatus.Cancelled,
                Error: $"its worker (pid {a.Worker.Pid}) did not stop within {grace.TotalSeconds:N0} s of Cancel and was killed; {ResumeNote(a.RunDir)}"), ct);
        }

        // a worker that says nothing past the limit (heartbeats come every 15 s) is hung, frozen or gone: ours are
        // stopped and Failed; adopted ones (not our children) become Interrupted
        await using var db = await dbs.CreateDbContextAsync(ct);
        var limit = TimeSpan.FromSeconds(options.Value.WorkerSilenceSeconds);
        foreach (var (id, startedAt, runDir) in (await db.Runs.Where(r => r.Status == RunStatus.Running && r.Requested != DeviceRequest.Slurm)
                     .Select(r => new { r.Id, r.StartedAt, r.RunDir }).ToListAsync(ct)).Select(r => (r.Id, r.StartedAt, r.RunDir)))
        {                                                                  // (Slurm jobs: SlurmScheduler)
            Active? own; lock (gate) active.TryGetValue(id, out own);
            // a worker not heard from yet is still starting (.NET, libtorch, the connection): it gets at least 2 minutes
            var heard = tokens.SilentFor(id);
            var silent = heard ?? (own is not null && startedAt is { } t ? DateTime.UtcNow - t : null);
            if (silent is not { } s || s <= (heard is null ? TimeSpan.FromTicks(Math.Max(limit.Ticks, StartupGrace.Ticks)) : limit)) continue;
            if (own is null)
                await runs.ApplyWorkerStatusAsync(id, new WorkerStatus(RunStatus.Interrupted,
                    Error: $"its worker stopped reporting ({s.TotalSeconds:N0} s without a word); {ResumeNote(runDir)}"), ct);
            else if (!own.Worker.HasExited)
            {
                own.Worker.Kill();
                await runs.ApplyWorkerStatusAsync(id, new WorkerStatus(RunStatus.Failed,
                    Error: $"its worker (pid {own.Worker.Pid}) stopped reporting for {s.TotalSeconds:N0} s (hung or frozen) and was stopped; {ResumeNote(own.RunDir)}"), ct);
            }
        }
    }

    /// <summary>Stops a run's worker for good (delete, or a cancel the worker ignores).</summary>
    public async Task KillAsync(int runId)
    {
        Active? a;
        lock (gate) active.TryGetValue(runId, out a);
        if (a is null) return;
        a.Worker.Kill();
        for (int i = 0; i < 50 && !a.Worker.HasExited; i++) await Task.Delay(100);
    }


    public Task StartingAsync(CancellationToken ct) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken ct) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>What Resume can do for a run whose worker ended early: only a checkpoint can be resumed from.</summary>
    static string ResumeNote(string? runDir) =>
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

    string HubUrl() => HubUrl(options.Value, server);

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

    // Each half runs once; a second caller (the host is stopped both by its owner and by Program's own
    // Run() when hosted in a test factory) waits for the same work instead of repeating it.
    private Task? askedToStop, stopped;

    /// <summary>Graceful shutdown (Ctrl+C, SIGTERM), first half, while the server still answers the workers:
    /// every worker is asked to checkpoint and stop and given up to 20 s to report and exit.</summary>
    public Task StoppingAsync(CancellationToken ct)
    {
        lock (gate) return askedToStop ??= AskWorkersToStopAsync(ct);
    }

    async Task AskWorkersToStopAsync(CancellationToken ct)
    {
        List<Active> left;
        lock (gate) left = [.. active.Values];
        foreach (var a in left) await runs.CancelAsync(a.RunId, CancellationToken.None);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (left.Any(a => !a.Worker.HasExited) && DateTime.UtcNow < deadline && !ct.IsCancellationRequested) await Task.Delay(100, CancellationToken.None);
    }

    /// <summary>Second half: workers still alive are stopped; runs that were training become Interrupted, to be
    /// resumed from their last checkpoint.</summary>
    public override async Task StopAsync(CancellationToken ct)
    {
        await base.StopAsync(ct);
        Task work;
        lock (gate) work = stopped ??= StopWorkersAsync();
        await work;
    }

    async Task StopWorkersAsync()
    {
        List<Active> left;
        lock (gate) left = [.. active.Values];
        foreach (var a in left)
        {
            if (!a.Worker.HasExited) a.Worker.Kill();
            if (await runs.GetAsync(a.RunId, CancellationToken.None) is { Status: RunStatus.Running or RunStatus.Cancelled })
                await runs.ApplyWorkerStatusAsync(a.RunId, new WorkerStatus(RunStatus.Interrupted,
                    Error: "the dashboard shut down while this run was training; Resume continues from its last checkpoint"), CancellationToken.None);
            a.Worker.Dispose();
        }
    }
}
