using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Tests;

/// <summary>Every number of a step is stored and read back through one column list (MetricColumns), in a real SQLite file.</summary>
public class MetricStoreTests
{
    [Fact]
    public async Task Every_metric_of_a_step_comes_back_as_it_was_logged_nan_and_infinities_included()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("motlab-metrics").FullName, "motlab.db");
        var services = new ServiceCollection().AddDbContextFactory<MoTLabDb>(o => o.UseSqlite($"Data Source={file}")).BuildServiceProvider();
        var dbs = services.GetRequiredService<IDbContextFactory<MoTLabDb>>();
        int runId;
        await using (var db = await dbs.CreateDbContextAsync())
        {
            await db.Database.MigrateAsync();
            var run = new RunRow { Name = "r", Kind = FfnKind.MoT, ConfigJson = "{}", RunDir = "/tmp", CreatedAt = DateTime.UtcNow };
            db.Runs.Add(run);
            await db.SaveChangesAsync();
            runId = run.Id;
        }
        // each column gets a value of its own (index + 0.5), one step NaN / ±Infinity / absent where it may be
        StepMetrics Full(long step) { var m = new StepMetrics { Step = step, Tokens = step * 64, EvalExtra = new Dictionary<string, double> { ["discrete"] = 1.5 } };
                                      for (int i = 0; i < MetricColumns.All.Count; i++) MetricColumns.All[i].Set(m, i + 0.5); return m; }
        var odd = Full(20);
        foreach (var (c, i) in MetricColumns.All.Select((c, i) => (c, i)))
            c.Set(odd, (i % 3) switch { 0 => double.NaN, 1 => double.PositiveInfinity, _ => c.Optional ? null : double.NegativeInfinity });
        var logged = new[] { Full(10), odd };
        await using (var db = await dbs.CreateDbContextAsync())
        {
            foreach (var m in logged) MetricColumns.Add(db, runId, m);
            await db.SaveChangesAsync();
        }

        var read = await new MetricsQuery(dbs).ReadAsync(runId);
        Assert.Equal(2, read.Count);
        for (int s = 0; s < 2; s++)
        {
            Assert.Equal(JsonSerializer.Serialize(logged[s], Json.Options), JsonSerializer.Serialize(read[s], Json.Options));
            foreach (var c in MetricColumns.All) Assert.Equal(c.Get(logged[s]), c.Get(read[s]));
        }

        // the columns are metrics.jsonl's numbers, by the same keys, and the CSV carries every one of them
        var keys = JsonSerializer.SerializeToNode(Full(1), Json.Options)!.AsObject().Select(p => p.Key).Except(["step", "tokens", "eval_extra"]);
        Assert.Equal(keys.Order(), MetricColumns.All.Select(c => c.Key).Order());
        Assert.Equal(["step", "tokens", .. MetricColumns.All.Select(c => c.Key)], MetricColumns.CsvHeader.TrimEnd().Split(','));
        Assert.Equal(MetricColumns.All.Count + 2, MetricColumns.CsvLine(odd).Split(',').Length);
    }
}
