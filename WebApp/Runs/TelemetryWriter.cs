using System.Text.Json;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using MoTLab.Shared;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Runs;

/// <summary>Persists telemetry in batches on one background loop (SQLite in WAL mode likes few, larger
/// transactions). Steps already stored are replaced, so a resumed worker that re-sends steps after its
/// checkpoint leaves no duplicates. The queue is bounded: a writer that falls far behind slows the hub
/// calls (back-pressure to the workers) instead of growing without limit. A batch that cannot be stored is dropped
/// whole (one transaction: no partial rows) and named in the run's warning — after two more tries when the database
/// was locked past its 30 s busy timeout, at once when it is full; the worker's metrics.jsonl still has every step.</summary>
public sealed class TelemetryWriter(IDbContextFactory<MoTLabDb> dbs, RunService runs, RunEvents events, ILogger<TelemetryWriter> log) : BackgroundService
{
    private abstract record Work(int RunId);
    private sealed record Metrics(int RunId, IReadOnlyList<StepMetrics> Rows) : Work(RunId);
    private sealed record Routing(int RunId, IReadOnlyList<RoutingSnapshot> Rows) : Work(RunId);
    private sealed record Flush(int RunId, TaskCompletionSource Done) : Work(RunId);

    private readonly Channel<Work> queue = Channel.CreateBounded<Work>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });

    /// <summary>Batches received and not yet stored.</summary>
    public int QueueLength => queue.Reader.Count;

    public ValueTask EnqueueAsync(int runId, IReadOnlyList<StepMetrics> rows) => queue.Writer.WriteAsync(new Metrics(runId, rows));
    public ValueTask EnqueueAsync(int runId, IReadOnlyList<RoutingSnapshot> rows) => queue.Writer.WriteAsync(new Routing(runId, rows));

    /// <summary>Completes when everything queued before it is stored.</summary>
    public async Task FlushAsync(int runId)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.Writer.WriteAsync(new Flush(runId, done));
        await done.Task;
    }

    /// <summary>On shutdown the queue is closed and drained before the loop ends: nothing received is dropped.</summary>
    public override Task StopAsync(CancellationToken ct)
    {
        queue.Writer.TryComplete();
        return base.StopAsync(ct);
    }

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        var batch = new List<Work>();
        while (await queue.Reader.WaitToReadAsync(CancellationToken.None))
        {
            batch.Clear();
            while (batch.Count < 500 && queue.Reader.TryRead(out var w)) batch.Add(w);
            // one transaction per run: a batch of one run that cannot be stored never takes another run's steps with it
            foreach (var run in batch.Where(w => w is not Flush).GroupBy(w => w.RunId))
                await WriteWithRetriesAsync(run.Key, [.. run]);
            foreach (var f in batch.OfType<Flush>()) f.Done.TrySetResult();
        }
    }

    static readonly TimeSpan[] RetryDelays = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(4)];

    async Task WriteWithRetriesAsync(int runId, List<Work> batch)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                // pages take the summary as stored from here instead of re-reading the run on every flush
                if (await WriteAsync(runId, batch, CancellationToken.None) is { } progress) events.Publish(new RunEvent(runId, RunEventKind.Progress, Progress: progress));
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException && attempt < RetryDelays.Length && Transient(e))
            {
                log.LogWarning("storing telemetry failed ({Message}); retrying in {Delay} s", e.Message, RetryDelays[attempt].TotalSeconds);
                await Task.Delay(RetryDelays[attempt]);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogError(e, "run {Id}: storing telemetry failed; the batch is dropped", runId);
                var steps = batch.SelectMany(w => w switch { Metrics m => m.Rows.Select(r => r.Step), Routing r => r.Rows.Select(x => x.Step), _ => [] }).ToList();
                if (steps.Count > 0)
                    await runs.WarnAsync(runId, $"telemetry for steps {steps.Min()}–{steps.Max()} could not be stored: {e.GetBaseException().Message.TrimEnd('.')}. " +
                        "The worker's metrics.jsonl in the run folder has every step.");
                return;
            }
        }
    }

    /// <summary>Busy or locked (another writer): worth another try. Full, read-only, corrupt: not within seconds.</summary>
    static bool Transient(Exception e) => e.GetBaseException() is Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 5 or 6 };   // SQLITE_BUSY, SQLITE_LOCKED

    /// <summary>Stores the batch in one transaction; the run's summary after it when it had steps.</summary>
    async Task<RunProgress?> WriteAsync(int runId, List<Work> batch, CancellationToken ct)
    {
        RunProgress? progress = null;
        await using var db = await dbs.CreateDbContextAsync(ct);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var metrics = batch.OfType<Metrics>().SelectMany(g => g.Rows).GroupBy(r => r.Step).Select(g => g.Last()).OrderBy(r => r.Step).ToList();
        if (metrics.Count > 0)
        {
            long first = metrics[0].Step;
            await db.Metrics.Where(m => m.RunId == runId && m.Step >= first).ExecuteDeleteAsync(ct);
            foreach (var m in metrics) MetricColumns.Add(db, runId, m);
            progress = (await UpdateSummaryAsync(db, runId, metrics, ct))?.Progress;
        }
        var routing = batch.OfType<Routing>().SelectMany(g => g.Rows).ToList();
        if (routing.Count > 0)
        {
            // a replay (reconnect, resume) overwrites from its first step on, layer by layer: the layers of one step
            // may come in different batches, and a delete across layers lost all but the last (only block 2 of 2 showed)
            foreach (var layer in routing.GroupBy(r => r.Layer))
            {
                long first = layer.Min(r => r.Step);
                await db.Routing.Where(r => r.RunId == runId && r.Layer == layer.Key && r.Step >= first).ExecuteDeleteAsync(ct);
            }
            db.Routing.AddRange(routing.GroupBy(r => (r.Layer, r.Step)).Select(g => g.Last())
                .Select(r => new RoutingRow { RunId = runId, Layer = r.Layer, Step = r.Step, Json = JsonSerializer.Serialize(r, Json.Options) }));
        }
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return progress;
    }

    static double? Finite(double? v) => v is { } d && double.IsFinite(d) ? d : null;

    static async Task<RunRow?> UpdateSummaryAsync(MoTLabDb db, int runId, List<StepMetrics> rows, CancellationToken ct)
    {
        var run = await db.Runs.FindAsync([runId], ct);
        if (run is null) return null;                      // deleted while running
        // the summary is made of finite values: a run whose loss turned NaN keeps its last and best real loss
        var last = rows[^1];
        run.LastStep = last.Step; run.TokensPerS = Finite(last.TokensPerS) ?? run.TokensPerS; run.ElapsedS = Finite(last.ElapsedS) ?? run.ElapsedS;
        if (rows.LastOrDefault(r => Finite(r.TrainLoss) is not null) is { } real) run.LastLoss = real.TrainLoss;
        if (rows.Select(r => Finite(r.TrainLoss)).Min() is { } best) run.BestLoss = Math.Min(run.BestLoss ?? double.MaxValue, best);
        var evals = rows.Where(r => Finite(r.EvalLoss) is not null).ToList();
        if (evals.Count > 0)
        {
            run.LastEvalLoss = evals[^1].EvalLoss;
            run.BestEvalLoss = Math.Min(run.BestEvalLoss ?? double.MaxValue, evals.Min(r => r.EvalLoss!.Value));
        }
        return run;
    }
}
