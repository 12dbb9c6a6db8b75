using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;
using MoTLab.Training.Cli;
using MoTLab.Training.Train;
using MoTLab.WebApp;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Runs;
using MoTLab.WebApp.Tests;

// The dashboard's own figures: telemetry ingest, step→watcher latency, history load at scale, and what
// telemetry costs the trainer. Prints one JSON line per figure. `load MINUTES`: the load test instead.
if (args is ["load", var minutes])
{
    await MoTLab.DashboardBench.LoadBench.RunAsync(double.Parse(minutes, System.Globalization.CultureInfo.InvariantCulture),
        figure => Console.WriteLine(JsonSerializer.Serialize(figure, MoTLab.Shared.Json.Options)));
    return;
}
using var dashboard = new DashboardFactory();
var services = dashboard.Services;
var hubUrl = new Uri(dashboard.BaseAddress, RunsHubContract.Path);

async Task<(int Id, string Token)> FakeRunAsync(string name)
{
    await using var db = await services.GetRequiredService<IDbContextFactory<MoTLabDb>>().CreateDbContextAsync();
    var run = new RunRow { Name = name, Status = RunStatus.Running, ConfigJson = "{}", Kind = FfnKind.MoT, CreatedAt = DateTime.UtcNow, RunDir = "" };
    db.Runs.Add(run);
    await db.SaveChangesAsync();
    return (run.Id, services.GetRequiredService<WorkerTokens>().Issue(run.Id, out _));
}

StepMetrics Metric(long step) => new()
{
    Step = step, Tokens = step * 1024, ElapsedS = step * 0.01, TrainLoss = 3 + Math.Sin(step), Lr = 1e-3, GradNorm = 1, TokensPerS = 1e5,
    Mfu = 0.3, RouterEntropy = 0.9, Time = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0,
};

void Report(object figure) => Console.WriteLine(JsonSerializer.Serialize(figure, MoTLab.Shared.Json.Options));

// 1. ingest: a worker streaming 100,000 logged steps as fast as it can, batches of 500
{
    var (id, token) = await FakeRunAsync("ingest");
    await using var worker = new HubConnectionBuilder().WithUrl(hubUrl).Build();
    await worker.StartAsync();
    const int rows = 100_000, batch = 500;
    var sw = Stopwatch.StartNew();
    for (int s = 1; s <= rows; s += batch)
        await worker.InvokeAsync(RunsHubContract.ReportMetrics, id, token, Enumerable.Range(s, batch).Select(i => Metric(i)).ToArray());
    await services.GetRequiredService<TelemetryWriter>().FlushAsync(id);
    Report(new { figure = "metrics_ingest", rows, seconds = sw.Elapsed.TotalSeconds, rows_per_s = rows / sw.Elapsed.TotalSeconds });
}

// 2. latency: a real worker stream (HubStream, as the trainer uses) logging a step every 50 ms, watched by a SignalR client
{
    var (id, token) = await FakeRunAsync("latency");
    await using var watcher = new HubConnectionBuilder().WithUrl(hubUrl).Build();
    var latencies = new List<double>();
    watcher.On<RunEvent>(nameof(IRunsClient.RunEvent), e =>
    {
        double now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        lock (latencies) foreach (var m in e.Metrics ?? []) latencies.Add((now - m.Time) * 1000);
    });
    await watcher.StartAsync();
    await watcher.InvokeAsync(RunsHubContract.Subscribe, id);
    await using var connection = new HubConnectionBuilder().WithUrl(hubUrl).Build();
    await connection.StartAsync();
    await using (var stream = new HubStream(connection, id, token, reason => Console.Error.WriteLine($"refused: {reason}")))
    {
        for (int s = 1; s <= 400; s++) { stream.OnStep(Metric(s)); await Task.Delay(50); }
        await stream.FlushAsync();
    }
    await Task.Delay(500);
    var sorted = latencies.Order().ToList();
    Report(new { figure = "step_to_watcher_latency_ms", samples = sorted.Count, p50 = sorted[sorted.Count / 2], p95 = sorted[(int)(sorted.Count * 0.95)], max = sorted[^1] });
}

// 3. history: 10 runs × 200,000 logged steps, loaded as the Compare page does (downsampled per run)
{
    var ids = new List<int>();
    var dbPath = services.GetRequiredService<IOptions<MoTLabOptions>>().Value.DatabasePath;
    for (int r = 0; r < 10; r++) ids.Add((await FakeRunAsync($"history-{r}")).Id);
    await using (var sql = new SqliteConnection($"Data Source={dbPath}"))
    {
        await sql.OpenAsync();
        await using var tx = sql.BeginTransaction();
        var cmd = sql.CreateCommand();
        cmd.CommandText = "INSERT INTO Metrics (RunId, Step, Tokens, ElapsedS, TrainLoss, Lr, GradNorm, TokensPerS, Mfu, AuxLoss, RouterEntropy) VALUES ($r, $s, $s * 1024, $s * 0.01, $l, 0.001, 1, 100000, 0.3, 0, 0.9)";
        var pr = cmd.Parameters.Add("$r", SqliteType.Integer); var ps = cmd.Parameters.Add("$s", SqliteType.Integer); var pl = cmd.Parameters.Add("$l", SqliteType.Real);
        foreach (var id in ids)
            for (int s = 1; s <= 200_000; s++) { pr.Value = id; ps.Value = s; pl.Value = 3 + Math.Sin(s * 0.001) + 1.0 / s; await cmd.ExecuteNonQueryAsync(); }
        await tx.CommitAsync();
    }
    var query = services.GetRequiredService<MetricsQuery>();
    var times = new List<double>();
    for (int rep = 0; rep < 3; rep++)
    {
        var sw = Stopwatch.StartNew();
        // as the Compare page loads them: every run's downsampled history with its train loss smoothed over the whole
        // series (a new smoothing weight each repetition, so no read comes from the cache)
        var smoothing = new MetricsQuery.SmoothingOf(MetricCatalog.TrainLoss, new Smoothing(SmoothingKind.TimeWeightedEma, 0.6 + 0.01 * rep), 200_000);
        int points = (await Task.WhenAll(ids.Select(id => query.ReadChartAsync(id, smoothing)))).Sum(r => r.Rows.Count);
        times.Add(sw.Elapsed.TotalMilliseconds);
        if (rep == 2) Report(new { figure = "history_load_10x200k", points_sent = points, server_ms_runs = times, server_ms_best = times.Min() });
    }
}

// 4. telemetry overhead in the trainer: tiny-mot with light stats every 10 steps and snapshots every 50, to files,
//    against the same run with no telemetry at all (medians of 3 alternating repetitions)
{
    var preset = Presets.Find("tiny-mot")!.Config;
    double StepMs(bool telemetry)
    {
        var cfg = preset with { Train = preset.Train with { Steps = 200, EvalEvery = 1_000_000, LogEvery = telemetry ? 10 : 1_000_000, SnapshotEvery = telemetry ? 50 : 1_000_000 } };
        var dir = Directory.CreateTempSubdirectory("motlab-bench").FullName;
        try
        {
            using var files = new JsonlSink(dir);
            using var trainer = new Trainer(cfg, dir, "cpu", telemetry ? [files] : []);
            var sw = Stopwatch.StartNew();
            trainer.Run(until: 200);
            return sw.Elapsed.TotalMilliseconds / 200;
        }
        finally { Directory.Delete(dir, true); }
    }
    StepMs(true);                                                 // warm-up: tokenizer cache, libtorch
    var with = new List<double>(); var without = new List<double>();
    for (int i = 0; i < 3; i++) { without.Add(StepMs(false)); with.Add(StepMs(true)); }
    double a = with.Order().ElementAt(1), b = without.Order().ElementAt(1);
    Report(new { figure = "trainer_telemetry_overhead", step_ms_with = a, step_ms_without = b, overhead = (a - b) / b });
}
