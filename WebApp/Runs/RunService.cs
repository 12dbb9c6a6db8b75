using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Hubs;

namespace MoTLab.WebApp.Runs;

/// <summary>Creating, cancelling and deleting runs, and applying what workers report. Nothing is stored
/// for a request that fails validation (<see cref="RunRequests"/>).</summary>
public sealed class RunService(IDbContextFactory<MoTLabDb> dbs, RunRequests requests, IOptions<MoTLabOptions> options,
    IHubContext<RunsHub, IRunsClient> hub, RunEvents events, SchedulerSignal signal, WorkerTokens tokens, CancelRequests cancels, ILogger<RunService> log)
{
    /// <param name="sweepId">The sweep the run belongs to (<see cref="SweepService"/>).</param>
    public async Task<(RunRow? Run, Dictionary<string, string[]> Errors)> CreateAsync(CreateRunRequest request, CancellationToken ct = default, int? sweepId = null)
    {
        var (cfg, device, errors) = requests.Resolve(request);
        if (cfg is null) return (null, errors);
        await using var db = await dbs.CreateDbContextAsync(ct);
        if (request.ParentId is { } parent && !await db.Runs.AnyAsync(r => r.Id == parent, ct))
            return (null, new() { ["parent_id"] = [$"run {parent} does not exist"] });
        var run = new RunRow
        {
            Name = cfg.Name, Status = RunStatus.Queued, ConfigJson = JsonSerializer.Serialize(cfg, Json.Options), Preset = cfg.Preset,
            Kind = cfg.Model.Ffn.Kind, Tags = string.Join(',', request.Tags ?? []), Notes = request.Notes ?? "",
            Requested = device, CreatedAt = DateTime.UtcNow, TotalSteps = cfg.Train.Steps, ParentId = request.ParentId, SweepId = sweepId,
            Parameters = ModelSize.Parameters(cfg.Model), FlopsPerToken = 3 * ModelSize.ForwardFlopsPerToken(cfg.Model, cfg.Train.BatchSize),
        };
        // one transaction: the run folder is named after the id the insert gives, and the scheduler must never see the
        // queued run before it has its folder (it launched such a run with an empty path under load)
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            db.Runs.Add(run);
            await db.SaveChangesAsync(ct);
            run.RunDir = Path.Combine(options.Value.RunsPath, $"run-{run.Id:D6}");
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        }
        Publish(new RunEvent(run.Id, RunEventKind.Status, Status: new WorkerStatus(RunStatus.Queued)));
        signal.Wake();
        return (run, []);
    }

    public async Task<RunRow?> GetAsync(int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return await db.Runs.AsNoTracking().FirstOrDefaultAsync(r => r.Id == id, ct);
    }

    public async Task<List<RunRow>> ListAsync(string? search = null, RunStatus? status = null, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var q = db.Runs.AsNoTracking();
        if (status is { } s) q = q.Where(r => r.Status == s);
        if (!string.IsNullOrWhiteSpace(search))
        {
            var kinds = FfnKinds.All.Where(k => k.Name.Contains(search, StringComparison.OrdinalIgnoreCase) || k.Label.Contains(search, StringComparison.OrdinalIgnoreCase)).Select(k => k.Kind).ToList();
            q = q.Where(r => r.Name.Contains(search) || r.Tags.Contains(search) || kinds.Contains(r.Kind) || (r.Preset != null && r.Preset.Contains(search)));
        }
        return await q.OrderByDescending(r => r.Id).ToListAsync(ct);
    }

    /// <summary>The runs made from run <paramref name="id"/>: continued from its checkpoint or re-run with edits.</summary>
    public async Task<List<RunRow>> ChildrenAsync(int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return await db.Runs.AsNoTracking().Where(r => r.ParentId == id).OrderBy(r => r.Id).ToListAsync(ct);
    }

    public enum CancelOutcome { NotFound, Cancelled, Asked, AlreadyEnded }

    /// <summary>Queued runs end at once; running ones are asked to checkpoint and stop (the worker reports Cancelled),
    /// and a worker of this dashboard's that has not stopped within MoTLab:CancelGraceSeconds is killed (the scheduler).
    /// A run that has ended already is left as it is.</summary>
    public async Task<CancelOutcome> CancelAsync(int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var run = await db.Runs.FindAsync([id], ct);
        if (run is null) return CancelOutcome.NotFound;
        if (run.Status == RunStatus.Queued)
        {
            run.Status = RunStatus.Cancelled; run.EndedAt = DateTime.UtcNow;
            await db.SaveChangesAsync(ct);
            Publish(new RunEvent(id, RunEventKind.Status, Status: new WorkerStatus(RunStatus.Cancelled)));
            return CancelOutcome.Cancelled;
        }
        if (run.Status != RunStatus.Running) return CancelOutcome.AlreadyEnded;
        cancels.Ask(id);
        await hub.Clients.Group(RunsHub.WorkerGroup(id)).Cancel(id);
        return CancelOutcome.Asked;
    }

    /// <summary>Deletes the run's rows and its folder (checkpoints, logs). A running worker is stopped first.</summary>
    public async Task<bool> DeleteAsync(int id, Func<int, Task> stopWorker, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var run = await db.Runs.FindAsync([id], ct);
        if (run is null) return false;
        if (run.Status == RunStatus.Running) await stopWorker(id);
        tokens.Revoke(id);
        await db.Routing.Where(r => r.RunId == id).ExecuteDeleteAsync(ct);
        await db.Metrics.Where(m => m.RunId == id).ExecuteDeleteAsync(ct);
        await db.Checkpoints.Where(c => c.RunId == id).ExecuteDeleteAsync(ct);
        db.Runs.Remove(run);
        await db.SaveChangesAsync(ct);
        if (run.RunDir.Length > 0 && Directory.Exists(run.RunDir) && run.RunDir.StartsWith(options.Value.RunsPath, StringComparison.Ordinal))
            Directory.Delete(run.RunDir, recursive: true);
        Publish(new RunEvent(id, RunEventKind.Deleted));
        return true;
    }

    public async Task ApplyWorkerStatusAsync(int id, WorkerStatus s, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var run = await db.Runs.FindAsync([id], ct);
        if (run is null) return;
        run.Status = s.Status;
        if (s.Parameters is { } p) run.Parameters = p;
        if (s.Device is { } d) run.Reported = d;
        if (s.Error is { } err) run.Error = err;
        if (s.Status is RunStatus.Completed or RunStatus.Failed or RunStatus.Cancelled or RunStatus.Interrupted)
        {
            run.EndedAt = DateTime.UtcNow;
            tokens.Revoke(id);
        }
        await db.SaveChangesAsync(ct);
        Publish(new RunEvent(id, RunEventKind.Status, Status: s));
        if (run.EndedAt is not null) signal.Wake();
    }

    /// <summary>Records a problem the run survives (shown on its page and in the API) and tells its watchers.
    /// Storing the warning can fail for the same reason as what it reports: then it is only logged and sent live.</summary>
    public async Task WarnAsync(int id, string warning)
    {
        Publish(new RunEvent(id, RunEventKind.Log, Log: [$"dashboard: {warning}"]));
        try
        {
            await using var db = await dbs.CreateDbContextAsync();
            await db.Runs.Where(r => r.Id == id).ExecuteUpdateAsync(u => u.SetProperty(r => r.Warning, warning));
            Publish(new RunEvent(id, RunEventKind.Warning));
        }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or DbUpdateException or InvalidOperationException)
        {
            log.LogError(e, "run {Id}: the warning could not be stored either: {Warning}", id, warning);
        }
    }

    /// <summary>A worker reports for a run this dashboard did not start (it restarted meanwhile): accepted when the
    /// token matches the stored hash and the run was left Running or Interrupted; the run is Running again.</summary>
    public async Task<bool> AdoptWorkerAsync(int id, string token, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var run = await db.Runs.FindAsync([id], ct);
        bool waitingRemote = run is { Status: RunStatus.Queued } && run.Requested.Pool == DevicePool.Remote;   // token issued before a restart
        if (run is null || !(run.Status is RunStatus.Running or RunStatus.Interrupted || waitingRemote) || !tokens.Adopt(id, token, run.WorkerTokenHash)) return false;
        if (run.Status == RunStatus.Interrupted)
        {
            run.Status = RunStatus.Running; run.EndedAt = null; run.Error = null;
            await db.SaveChangesAsync(ct);
            Publish(new RunEvent(id, RunEventKind.Status, Status: new WorkerStatus(RunStatus.Running)));
        }
        return true;
    }

    /// <summary>Queues an ended run again to continue from its newest checkpoint (same folder, same curve).</summary>
    public async Task<string?> ResumeAsync(int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var run = await db.Runs.FindAsync([id], ct);
        if (run is null) return "no such run";
        if (run.Status is not (RunStatus.Interrupted or RunStatus.Cancelled or RunStatus.Failed)) return $"a {run.Status} run cannot be resumed";
        if (run.Requested.Pool != DevicePool.Remote && !RunFolder.Checkpoints(run.RunDir).Any()) return "the run has no checkpoint to resume from";
        if (run.Status == RunStatus.Interrupted && WorkerStillAlive(run.WorkerPid))
            return $"its worker (pid {run.WorkerPid}) is still running and will re-attach; wait for it, or cancel the run";
        run.Status = RunStatus.Queued; run.EndedAt = null; run.Error = null;
        await db.SaveChangesAsync(ct);
        Publish(new RunEvent(id, RunEventKind.Status, Status: new WorkerStatus(RunStatus.Queued)));
        signal.Wake();
        return null;
    }

    /// <summary>A worker outlives a dashboard restart for its reconnect grace; resuming beside it would put two
    /// writers in one run folder. (A reused pid can only make this refuse wrongly, never allow wrongly.)</summary>
    static bool WorkerStillAlive(int? pid)
    {
        if (pid is not { } p) return false;
        try { using var process = System.Diagnostics.Process.GetProcessById(p); return !process.HasExited; }
        catch (ArgumentException) { return false; }
    }

    /// <summary>Keeps the run's checkpoint list current (the worker prunes old folders; rows follow them).</summary>
    public async Task RecordCheckpointAsync(int id, CheckpointInfo c, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var run = await db.Runs.FindAsync([id], ct);
        if (run is null) return;
        await db.Checkpoints.Where(x => x.RunId == id && x.Step >= c.Step).ExecuteDeleteAsync(ct);
        db.Checkpoints.Add(new CheckpointRow { RunId = id, Step = c.Step, Path = c.Path, CreatedAt = DateTime.UtcNow, TrainLoss = c.TrainLoss, EvalLoss = c.EvalLoss });
        await db.SaveChangesAsync(ct);
        if (run.Requested.Pool != DevicePool.Remote)                            // a remote worker's folders are on its machine
            foreach (var gone in await db.Checkpoints.Where(x => x.RunId == id).ToListAsync(ct))
                if (!Directory.Exists(gone.Path)) db.Checkpoints.Remove(gone);
        await db.SaveChangesAsync(ct);
        Publish(new RunEvent(id, RunEventKind.Checkpoint, Checkpoint: c));
    }

    public async Task<List<CheckpointRow>> CheckpointsAsync(int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return await db.Checkpoints.AsNoTracking().Where(c => c.RunId == id).OrderBy(c => c.Step).ToListAsync(ct);
    }

    public void Publish(RunEvent e) => events.Publish(e);
}
