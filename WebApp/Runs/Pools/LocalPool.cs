using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Runs.Pools;

/// <summary>This dashboard's CPU slots (MoTLab:CpuSlots) and GPUs (one run per GPU, the index passed to the worker):
/// starts queued runs oldest first, one worker process per slot, and notices workers that exit without reporting an
/// end, ignore a cancel, or fall silent (also workers that outlived an earlier dashboard and re-attached).</summary>
public sealed class LocalPool(IDbContextFactory<MoTLabDb> dbs, ILauncher launcher, WorkerTokens tokens, RunService runs, CancelRequests cancels,
    IOptions<MoTLabOptions> options, IServer server, ILogger<LocalPool> log) : IDevicePool, IWorkerControl
{
    private sealed record Active(int RunId, string Slot, IWorkerHandle Worker, string RunDir);
    private readonly Dictionary<int, Active> active = new();
    private static readonly TimeSpan StartupGrace = TimeSpan.FromMinutes(2);
    private readonly Lock gate = new();

    public bool Enabled => true;
    public TimeSpan Interval => TimeSpan.FromSeconds(1);
    public Task AdoptAsync(CancellationToken ct) => Task.CompletedTask;    // a surviving worker re-attaches by itself (its hello)

    public async Task PassAsync(CancellationToken ct)
    {
        await ReapAsync(ct);
        await LaunchAsync(ct);
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
                    Error: $"worker exited with code {a.Worker.ExitCode} without finishing. {RunScheduler.LogTail(a.RunDir)}"), ct);
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
                Error: $"its worker (pid {a.Worker.Pid}) did not stop within {grace.TotalSeconds:N0} s of Cancel and was killed; {RunScheduler.ResumeNote(a.RunDir)}"), ct);
        }

        // a worker that says nothing past the limit (heartbeats come every 15 s) is hung, frozen or gone: ours are
        // stopped and Failed; adopted ones (not our children) become Interrupted
        await using var db = await dbs.CreateDbContextAsync(ct);
        var limit = TimeSpan.FromSeconds(options.Value.WorkerSilenceSeconds);
        foreach (var (id, startedAt, runDir) in (await db.Runs.Where(r => r.Status == RunStatus.Running && r.Requested != DeviceRequest.Slurm && r.Requested != DeviceRequest.Remote)
                     .Select(r => new { r.Id, r.StartedAt, r.RunDir }).ToListAsync(ct)).Select(r => (r.Id, r.StartedAt, r.RunDir)))
        {                                                                  // (Slurm jobs: SlurmPool; remote workers: RemotePool)
            Active? own; lock (gate) active.TryGetValue(id, out own);
            // a worker not heard from yet is still starting (.NET, libtorch, the connection): it gets at least 2 minutes
            var heard = tokens.SilentFor(id);
            var silent = heard ?? (own is not null && startedAt is { } t ? DateTime.UtcNow - t : null);
            if (silent is not { } s || s <= (heard is null ? TimeSpan.FromTicks(Math.Max(limit.Ticks, StartupGrace.Ticks)) : limit)) continue;
            if (own is null)
                await runs.ApplyWorkerStatusAsync(id, new WorkerStatus(RunStatus.Interrupted,
                    Error: $"its worker stopped reporting ({s.TotalSeconds:N0} s without a word); {RunScheduler.ResumeNote(runDir)}"), ct);
            else if (!own.Worker.HasExited)
            {
                own.Worker.Kill();
                await runs.ApplyWorkerStatusAsync(id, new WorkerStatus(RunStatus.Failed,
                    Error: $"its worker (pid {own.Worker.Pid}) stopped reporting for {s.TotalSeconds:N0} s (hung or frozen) and was stopped; {RunScheduler.ResumeNote(own.RunDir)}"), ct);
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


    string HubUrl() => RunScheduler.HubUrl(options.Value, server);

    /// <summary>Every worker is asked to checkpoint and stop and given up to 20 s to report and exit.</summary>
    public Task StoppingAsync(CancellationToken ct) => AskWorkersToStopAsync(ct);

    async Task AskWorkersToStopAsync(CancellationToken ct)
    {
        List<Active> left;
        lock (gate) left = [.. active.Values];
        foreach (var a in left) await runs.CancelAsync(a.RunId, CancellationToken.None);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (left.Any(a => !a.Worker.HasExited) && DateTime.UtcNow < deadline && !ct.IsCancellationRequested) await Task.Delay(100, CancellationToken.None);
    }

    /// <summary>Workers still alive are stopped; runs that were training become Interrupted, to be resumed from their
    /// last checkpoint.</summary>
    public Task StoppedAsync() => StopWorkersAsync();

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
