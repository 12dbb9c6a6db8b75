using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Runs.Pools;

/// <summary>Workers the user starts by hand with a run's token (<see cref="RemoteWorkers"/>): nothing to start here; a
/// running one that falls silent past MoTLab:WorkerSilenceSeconds leaves its run Interrupted (its checkpoints are on
/// its machine).</summary>
public sealed class RemotePool(IDbContextFactory<MoTLabDb> dbs, WorkerTokens tokens, RunService runs, IOptions<MoTLabOptions> options) : IDevicePool
{
    public bool Enabled => true;
    public TimeSpan Interval => TimeSpan.FromSeconds(1);
    public Task AdoptAsync(CancellationToken ct) => Task.CompletedTask;   // its workers re-attach by themselves
    public Task StoppingAsync(CancellationToken ct) => Task.CompletedTask; // and train on without this dashboard
    public Task StoppedAsync() => Task.CompletedTask;

    public async Task PassAsync(CancellationToken ct)
    {
        var limit = TimeSpan.FromSeconds(options.Value.WorkerSilenceSeconds);
        await using var db = await dbs.CreateDbContextAsync(ct);
        foreach (var run in await db.Runs.AsNoTracking().Where(r => r.Status == RunStatus.Running && r.Requested == DeviceRequest.Remote)
                     .Select(r => new { r.Id, r.RunDir }).ToListAsync(ct))
            if (tokens.SilentFor(run.Id) is { } silent && silent > limit)
                await runs.ApplyWorkerStatusAsync(run.Id, new WorkerStatus(RunStatus.Interrupted,
                    Error: $"its worker stopped reporting ({silent.TotalSeconds:N0} s without a word); {RunScheduler.ResumeNote(run.RunDir)}"), ct);
    }
}
