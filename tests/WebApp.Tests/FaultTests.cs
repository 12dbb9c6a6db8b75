using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Tests;

/// <summary>Faults around a live run, each on its own dashboard: a frozen worker, a locked database, a full database.</summary>
[Collection(Workers.B)]
public sealed class FaultTests
{
    /// <summary>tiny-dense logging every step: many small telemetry batches.</summary>
    static object EveryStep(int steps) => new
    {
        config = Presets.Find("tiny-dense")!.Config with { Train = Presets.Find("tiny-dense")!.Config.Train with { Steps = steps, LogEvery = 1, EvalEvery = 100_000 } },
    };

    static async Task<int> CreateAsync(HttpClient http, object body)
    {
        var response = await http.PostAsync("/api/runs", JsonContent.Create(body, options: Json.Options));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
    }

    static string RunDir(DashboardFactory d, int id) => Path.Combine(d.DataFolder, "runs", $"run-{id:D6}");

    static List<long> StepsInJsonl(DashboardFactory d, int id) =>
        File.ReadLines(Path.Combine(RunDir(d, id), "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()).ToList();

    static async Task<List<long>> StoredStepsAsync(HttpClient http, int id) =>
        (await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/metrics?maxPoints=100000")).EnumerateArray().Select(m => m.GetProperty("step").GetInt64()).ToList();

    [Fact]
    public async Task A_frozen_worker_is_stopped_and_its_run_fails_with_the_reason_then_the_queue_goes_on()
    {
        using var dashboard = new DashboardFactory(null, settings: new Dictionary<string, string> { ["MoTLab:WorkerSilenceSeconds"] = "20" });
        using var http = dashboard.Client();
        int frozen = await CreateAsync(http, new { preset = "tiny-dense", steps = 100_000 });
        int next = await CreateAsync(http, new { preset = "tiny-dense", steps = 20 });
        await http.WaitForRunAsync(frozen, r => r.GetProperty("last_step").GetInt64() > 0);
        int pid;
        await using (var db = await dashboard.Services.GetRequiredService<IDbContextFactory<MoTLabDb>>().CreateDbContextAsync())
            pid = (await db.Runs.SingleAsync(r => r.Id == frozen)).WorkerPid!.Value;

        using (var stop = Process.Start("kill", ["-STOP", pid.ToString()])) await stop.WaitForExitAsync();   // alive, silent
        var run = await http.WaitForRunAsync(frozen, r => r.Status() != "running", 90);
        Assert.Equal("failed", run.Status());
        Assert.Contains("stopped reporting", run.GetProperty("error").GetString());
        Assert.True(await DeadWithinAsync(pid, TimeSpan.FromSeconds(15)), $"worker {pid} was left frozen");
        Assert.Equal("completed", (await http.WaitForRunAsync(next, r => r.Status() is "completed" or "failed")).Status());
    }

    /// <summary>Whether the process ends within the time: gone, or a zombie (killed, not yet reaped by its parent).</summary>
    internal static async Task<bool> DeadWithinAsync(int pid, TimeSpan limit)
    {
        for (var t = Stopwatch.StartNew(); t.Elapsed < limit; await Task.Delay(200))
        {
            try { if (File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1][0] == 'Z') return true; }
            catch (IOException) { return true; }                                // FileNotFound, DirectoryNotFound: gone
        }
        return false;
    }

    [Fact]
    public async Task A_database_locked_for_seconds_delays_telemetry_but_loses_none()
    {
        using var dashboard = new DashboardFactory();
        using var http = dashboard.Client();
        int id = await CreateAsync(http, EveryStep(400));
        await http.WaitForRunAsync(id, r => r.GetProperty("last_step").GetInt64() > 0);

        await using (var other = new SqliteConnection($"Data Source={Path.Combine(dashboard.DataFolder, "motlab.db")}"))
        {
            await other.OpenAsync();
            await using var exclusive = other.CreateCommand();
            exclusive.CommandText = "BEGIN EXCLUSIVE;";            // another process holds the write lock
            await exclusive.ExecuteNonQueryAsync();
            await Task.Delay(TimeSpan.FromSeconds(6));
            exclusive.CommandText = "COMMIT;";
            await exclusive.ExecuteNonQueryAsync();
        }

        var run = await http.WaitForRunAsync(id, r => r.Status() is "completed" or "failed");
        Assert.Equal("completed", run.Status());
        Assert.Null(run.Text("warning"));
        Assert.Equal(StepsInJsonl(dashboard, id), await StoredStepsAsync(http, id));
    }

    [Fact]
    public async Task A_full_database_leaves_whole_batches_a_warning_on_the_run_and_a_run_page_that_still_reads()
    {
        using var dashboard = new DashboardFactory(null, settings: new Dictionary<string, string>
        {
            ["MoTLab:MaxDatabaseMB"] = "0.2",
            ["Logging:LogLevel:Microsoft.EntityFrameworkCore"] = "None", ["Logging:LogLevel:MoTLab.WebApp.Runs.TelemetryWriter"] = "None",   // hundreds of expected SQLITE_FULL errors
        });
        using var http = dashboard.Client();
        int id = await CreateAsync(http, EveryStep(2000));

        var run = await http.WaitForRunAsync(id, r => r.Text("warning") is not null, 180);
        Assert.Contains("database or disk is full", run.Text("warning"));
        Assert.Contains("metrics.jsonl", run.Text("warning"));

        run = await http.WaitForRunAsync(id, r => r.Status() is not ("queued" or "running"), 180);
        var stored = await StoredStepsAsync(http, id);
        Assert.NotEmpty(stored);
        Assert.True(stored.Count < 2000, $"{stored.Count} steps stored under a 0.2 MB cap");
        Assert.Equal(stored.Distinct().Order(), stored);                        // no duplicates, in order
        var summary = await http.GetRunAsync(id);
        Assert.Equal(stored.Max(), summary.GetProperty("last_step").GetInt64()); // the summary matches what is stored
        Assert.Equal(2000, StepsInJsonl(dashboard, id).Count);                   // the worker's own file has everything
        Assert.True((await http.GetAsync($"/runs/{id}")).IsSuccessStatusCode);
    }
}
