using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Runs.Pools;

/// <summary>The "slurm" device pool. Submits each queued run as a batch job and follows it: Queued while Slurm
/// holds it (with Slurm's reason), Running from the worker's hello (with the node), Failed with the job's end
/// state if it ends without the worker reporting an end. A run cancelled or deleted while its job is pending or
/// running gets its job scancelled; a running job whose worker falls silent is scancelled and its run Failed.
/// On dashboard shutdown pending jobs are cancelled and their runs stay queued; running jobs train on and
/// re-attach when the dashboard is back.</summary>
public sealed class SlurmPool(IDbContextFactory<MoTLabDb> dbs, SlurmClient slurm, WorkerTokens tokens, RunService runs,
    IOptions<MoTLabOptions> options, IServer server) : IDevicePool
{
    private readonly Dictionary<int, string> jobs = new();          // run id → job id, for jobs not yet seen to end

    public bool Enabled => options.Value.Slurm is not null;
    public TimeSpan Interval => TimeSpan.FromSeconds(options.Value.Slurm?.PollSeconds ?? 5);

    public async Task PassAsync(CancellationToken ct)
    {
        await SubmitAsync(ct);
        await FollowAsync(ct);
    }

    /// <summary>Slurm's jobs train on without this dashboard: nothing to ask.</summary>
    public Task StoppingAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>At start: jobs of runs left running are followed again; jobs left pending by an earlier dashboard
    /// are cancelled (their tokens died with it) and their runs submitted afresh.</summary>
    public async Task AdoptAsync(CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        foreach (var run in await db.Runs.Where(r => r.ExternalJob != null && r.Requested == DeviceRequest.Slurm).ToListAsync(ct))
        {
            if (run.Status == RunStatus.Queued) { await slurm.CancelAsync(run.ExternalJob!, ct); run.ExternalJob = null; run.StatusDetail = null; }
            else if (run.Status is RunStatus.Running or RunStatus.Interrupted) jobs[run.Id] = run.ExternalJob!;
        }
        await db.SaveChangesAsync(ct);
    }

    async Task SubmitAsync(CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        foreach (var run in await db.Runs.Where(r => r.Status == RunStatus.Queued && r.Requested == DeviceRequest.Slurm && r.ExternalJob == null).OrderBy(r => r.Id).ToListAsync(ct))
        {
            var token = tokens.Issue(run.Id, out var hash);
            try
            {
                var job = await slurm.SubmitAsync(new WorkerLaunch(run.Id, RunScheduler.HubUrl(options.Value, server), token, run.RunDir, "", 0, options.Value.CachePath), ct);
                run.ExternalJob = job; run.WorkerTokenHash = hash; run.StatusDetail = $"Slurm job {job} submitted";
                jobs[run.Id] = job;
                await db.SaveChangesAsync(ct);
                runs.Publish(new RunEvent(run.Id, RunEventKind.Status, Status: new WorkerStatus(RunStatus.Queued)));
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                await runs.ApplyWorkerStatusAsync(run.Id, new WorkerStatus(RunStatus.Failed, Error: $"could not submit to Slurm: {e.Message}"), ct);
            }
        }
    }

    async Task FollowAsync(CancellationToken ct)
    {
        var limit = TimeSpan.FromSeconds(options.Value.WorkerSilenceSeconds);
        foreach (var (runId, jobId) in jobs.ToList())
        {
            var job = await slurm.QueryAsync(jobId, ct);
            var run = await runs.GetAsync(runId, ct);
            if (run is null || run.Status is RunStatus.Cancelled or RunStatus.Completed or RunStatus.Failed)
            {
                if (!job.Ended) await slurm.CancelAsync(jobId, ct);             // cancelled or deleted here: stop it there
                if (job.Ended || run is null) jobs.Remove(runId);
                continue;
            }
            if (job.Ended)
            {
                await Task.Delay(1000, ct);                                    // a last status report may be on its way
                if (await runs.GetAsync(runId, ct) is { Status: RunStatus.Queued or RunStatus.Running })
                    await runs.ApplyWorkerStatusAsync(runId, new WorkerStatus(RunStatus.Failed,
                        Error: $"Slurm job {jobId} ended {job.State ?? "(no longer known to Slurm)"} (exit {job.ExitCode ?? "?"}) without the run finishing. {RunScheduler.LogTail(run.RunDir)}"), ct);
                await SetDetailAsync(runId, $"Slurm job {jobId} ended {job.State}".TrimEnd(), ct);
                jobs.Remove(runId);
                continue;
            }
            await SetDetailAsync(runId, job.Pending ? $"Slurm job {jobId} pending ({job.Reason ?? job.State})" : $"Slurm job {jobId} on {job.Node}", ct);
            if (run.Status == RunStatus.Running && tokens.SilentFor(runId) is { } silent && silent > limit)
            {
                await slurm.CancelAsync(jobId, ct);
                await runs.ApplyWorkerStatusAsync(runId, new WorkerStatus(RunStatus.Failed,
                    Error: $"its worker (Slurm job {jobId} on {job.Node}) stopped reporting for {silent.TotalSeconds:N0} s and the job was cancelled; Resume continues from the last checkpoint"), ct);
            }
        }
    }

    async Task SetDetailAsync(int runId, string detail, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        if (await db.Runs.Where(r => r.Id == runId && r.StatusDetail != detail).ExecuteUpdateAsync(u => u.SetProperty(r => r.StatusDetail, detail), ct) > 0)
            runs.Publish(new RunEvent(runId, RunEventKind.Warning));                     // pages re-read the run
    }

    /// <summary>Pending jobs go back to the queue (their token would not outlive this dashboard).</summary>
    public async Task StoppedAsync()
    {
        await using var db = await dbs.CreateDbContextAsync(CancellationToken.None);
        foreach (var run in await db.Runs.Where(r => r.Status == RunStatus.Queued && r.ExternalJob != null).ToListAsync(CancellationToken.None))
        {
            await slurm.CancelAsync(run.ExternalJob!, CancellationToken.None);
            run.ExternalJob = null; run.StatusDetail = null;
        }
        await db.SaveChangesAsync(CancellationToken.None);
    }
}
