using Microsoft.EntityFrameworkCore;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Runs;

/// <summary>The "remote" device pool: runs the dashboard does not start itself. A user asks for a worker token
/// and runs `MoTLab.Training worker --hub URL --run ID --token T` on any machine that reaches the hub; the run
/// is Running from the worker's hello until it reports an end (or falls silent: Interrupted), exactly like a
/// local run. Its device shows as remote:DEVICE; its checkpoints live on that machine.</summary>
public sealed class RemoteWorkers(IDbContextFactory<MoTLabDb> dbs, WorkerTokens tokens, RunEvents events)
{
    /// <summary>A new token for a queued remote run (any earlier one stops working), or why there is none.</summary>
    public async Task<(string? Token, string? Problem)> IssueTokenAsync(int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var run = await db.Runs.FindAsync([id], ct);
        if (run is null) return (null, "no such run");
        if (run.Requested.Pool != DevicePool.Remote) return (null, $"run {id} is on {run.Device}, which this dashboard starts itself; create it with device \"remote\"");
        if (run.Status != RunStatus.Queued) return (null, $"a {run.Status} run takes no new worker (Resume it first)");
        var token = tokens.Issue(id, out var hash);
        run.WorkerTokenHash = hash;
        await db.SaveChangesAsync(ct);
        return (token, null);
    }

    /// <summary>The worker said hello: a queued run of a pool (remote, or a Slurm job that started) is Running from now.</summary>
    public async Task OnHelloAsync(int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        if (await db.Runs.Where(r => r.Id == id && r.Status == RunStatus.Queued && (r.Requested == DeviceRequest.Remote || r.Requested == DeviceRequest.Slurm)).ExecuteUpdateAsync(u => u
                .SetProperty(r => r.Status, RunStatus.Running).SetProperty(r => r.StartedAt, DateTime.UtcNow), ct) > 0)
            events.Publish(new RunEvent(id, RunEventKind.Status, Status: new WorkerStatus(RunStatus.Running)));
    }

    /// <summary>The hub a remote worker dials: MoTLab:HubUrl, else the address the user reached this dashboard at.</summary>
    public static string HubUrl(string? configured, string baseUri) =>
        configured is { Length: > 0 } ? configured : baseUri.TrimEnd('/') + RunsHubContract.Path;

    /// <summary>The shell command that starts the worker (the token goes through the environment, off the command line).</summary>
    public static string Command(int id, string hubUrl, string token, string trainingDll = "MoTLab.Training.dll") =>
        $"MOTLAB_WORKER_TOKEN={token} dotnet {trainingDll} worker --run {id} --hub {hubUrl} --out runs/run-{id:D6} --device cuda";
}
