using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace MoTLab.WebApp.Tests;

/// <summary>Sweeps through the API against the real dashboard: launched as ordinary runs, read back with their axis
/// values, refused whole when any run is bad or there are too many, cancelled and deleted as a whole.</summary>
public class SweepApiTests(DashboardFactory dashboard) : IClassFixture<DashboardFactory>
{
    readonly HttpClient http = dashboard.Client();

    async Task<int> RunCount() => (await http.GetFromJsonAsync<JsonElement>("/api/runs")).GetArrayLength();

    [Fact]
    public async Task A_sweep_launches_its_runs_tagged_and_reads_back_their_axis_values()
    {
        var created = await http.PostAsJsonAsync("/api/sweeps", new
        {
            name = "lr-seeds", preset = "tiny-dense",
            axes = new object[] { new { path = "train.learning_rate", values = new[] { 1e-3, 3e-3 } }, new { path = "train.seed", values = new[] { 1, 2 } }, new { path = "train.steps", values = new[] { 10 } } },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var sweep = await created.Content.ReadFromJsonAsync<JsonElement>();
        int id = sweep.GetProperty("id").GetInt32();
        var runs = sweep.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(4, runs.Count);
        Assert.Equal([(1e-3, 1), (1e-3, 2), (3e-3, 1), (3e-3, 2)],
            runs.Select(r => (r.GetProperty("values").GetProperty("train.learning_rate").GetDouble(), r.GetProperty("values").GetProperty("train.seed").GetInt32())));
        foreach (var r in runs)
        {
            var run = await http.WaitForRunAsync(r.GetProperty("id").GetInt32(), x => x.Status() == "completed");
            Assert.Contains($"sweep-{id}", run.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        }
        var done = await http.GetFromJsonAsync<JsonElement>($"/api/sweeps/{id}");
        Assert.All(done.GetProperty("runs").EnumerateArray(), r => Assert.True(r.GetProperty("last_eval_loss").GetDouble() > 0));
        Assert.Contains((await http.GetFromJsonAsync<JsonElement>("/api/sweeps")).EnumerateArray(), s => s.GetProperty("id").GetInt32() == id);

        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync($"/api/sweeps/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"/api/sweeps/{id}")).StatusCode);
        foreach (var r in runs) Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"/api/runs/{r.GetProperty("id").GetInt32()}")).StatusCode);
    }

    [Theory]
    [InlineData("""{ "preset": "tiny-mot", "axes": [{ "path": "train.seed", "min": 1, "max": 100, "count": 100 }, { "path": "train.learning_rate", "min": 1e-4, "max": 1e-2, "count": 100, "log": true }] }""",
        "axes", "would launch 10,000 runs, more than the 200")]
    [InlineData("""{ "preset": "tiny-mot", "axes": [{ "path": "train.lr", "values": [1e-3] }] }""", "axes[0].path", "'train.lr' is no config field")]
    [InlineData("""{ "preset": "tiny-mot", "axes": [{ "path": "train.learning_rate", "values": [1e-3, -1] }] }""", "runs[1].train.learning_rate", "learning_rate=-1:")]
    [InlineData("""{ "preset": "tiny-mot", "axes": [{ "path": "train.batch_size", "values": [8, 6] }] }""", "runs[1].train.batch_size", "multiple of the MoT group size")]
    [InlineData("""{ "preset": "no-such", "axes": [{ "path": "train.seed", "values": [1] }] }""", "preset", "unknown preset")]
    [InlineData("""{ "preset": "tiny-mot", "device": "cuda:9", "axes": [{ "path": "train.seed", "values": [1] }] }""", "runs[0].device", "seed=1:")]
    public async Task A_bad_sweep_is_refused_whole_with_field_errors_and_stores_nothing(string json, string field, string message)
    {
        int before = await RunCount();
        var refused = await http.PostAsync("/api/sweeps", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var errors = (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out var messages), $"no error for {field}: {errors}");
        Assert.Contains(messages.EnumerateArray(), m => m.GetString()!.Contains(message));
        Assert.Equal(before, await RunCount());
        Assert.DoesNotContain((await http.GetFromJsonAsync<JsonElement>("/api/sweeps")).EnumerateArray(), s => s.GetProperty("name").GetString() == "sweep");
    }

    [Fact]
    public async Task Cancelling_a_sweep_midway_leaves_none_of_its_runs_queued()
    {
        var created = await http.PostAsJsonAsync("/api/sweeps", new { name = "long", preset = "tiny-mot", axes = new object[] { new { path = "train.seed", values = new[] { 1, 2, 3, 4 } }, new { path = "train.steps", values = new[] { 2000 } } } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var sweep = await created.Content.ReadFromJsonAsync<JsonElement>();
        int id = sweep.GetProperty("id").GetInt32();
        int first = sweep.GetProperty("runs")[0].GetProperty("id").GetInt32();
        await http.WaitForRunAsync(first, r => r.Status() == "running" && r.GetProperty("last_step").GetInt64() > 0);
        var cancelled = await http.PostAsync($"/api/sweeps/{id}/cancel", null);
        Assert.Equal(HttpStatusCode.OK, cancelled.StatusCode);
        Assert.True((await cancelled.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("runs").GetInt32() >= 3);
        var after = await http.GetFromJsonAsync<JsonElement>($"/api/sweeps/{id}");
        Assert.DoesNotContain(after.GetProperty("runs").EnumerateArray(), r => r.GetProperty("status").GetString() == "queued");
        await http.WaitForRunAsync(first, r => r.Status() == "cancelled");
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync("/api/sweeps/99999/cancel", null)).StatusCode);
        await http.DeleteAsync($"/api/sweeps/{id}");
    }
    [Fact]
    public async Task Reproduce_with_learning_rate_sweeps_trains_the_comparison_at_each_models_best_rate()
    {
        var launched = await http.PostAsJsonAsync("/api/runs/group", new { group = "reproduce-cpu", steps = 5, sweep_learning_rates = 2 });
        Assert.Equal(HttpStatusCode.Created, launched.StatusCode);
        var body = await launched.Content.ReadFromJsonAsync<JsonElement>();
        var sweeps = body.GetProperty("sweeps").EnumerateArray().Select(s => s.GetInt32()).ToList();
        Assert.Equal(5, sweeps.Count);                                                       // one per model of the set
        Assert.Equal(10, body.GetProperty("ids").GetArrayLength());                           // two rates each
        var first = await http.GetFromJsonAsync<JsonElement>($"/api/sweeps/{sweeps[0]}");
        var rates = first.GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("values").GetProperty("train.learning_rate").GetDouble()).ToList();
        Assert.Equal([4e-3 / 3, 4e-3 * 3], rates, (a, b) => Math.Abs(a - b) < 1e-6);      // cpu-dense's 4e-3, ÷3 and ×3
        Assert.All(first.GetProperty("runs").EnumerateArray(), r => Assert.Equal(1, r.GetProperty("total_steps").GetInt64()));   // 20 % of 5 steps

        JsonElement then = default;
        for (var until = DateTime.UtcNow.AddMinutes(5); DateTime.UtcNow < until; await Task.Delay(1000))
        {
            then = (await http.GetFromJsonAsync<JsonElement>($"/api/sweeps/{sweeps[0]}")).GetProperty("then");
            if (then.TryGetProperty("launched", out _) || then.TryGetProperty("problem", out _)) break;
        }
        Assert.False(then.TryGetProperty("problem", out var problem), problem.ToString());
        var comparison = then.GetProperty("launched").EnumerateArray().Select(i => i.GetInt32()).ToList();
        Assert.Equal(5, comparison.Count);
        foreach (var (sweepId, runId) in sweeps.Zip(comparison))
        {
            var sweep = await http.GetFromJsonAsync<JsonElement>($"/api/sweeps/{sweepId}");
            var best = sweep.GetProperty("runs").EnumerateArray().MinBy(r => r.GetProperty("last_eval_loss").GetDouble())
                .GetProperty("values").GetProperty("train.learning_rate").GetDouble();
            var run = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{runId}");
            Assert.Equal(best, run.GetProperty("config").GetProperty("train").GetProperty("learning_rate").GetDouble(), 9);
            Assert.Equal(5, run.GetProperty("run").GetProperty("total_steps").GetInt64());
            Assert.Equal(comparison.Select(i => i.ToString()), then.GetProperty("launched").EnumerateArray().Select(i => i.ToString()));
        }
        foreach (var id in comparison) await http.DeleteAsync($"/api/runs/{id}");
        foreach (var id in sweeps) await http.DeleteAsync($"/api/sweeps/{id}");
    }
}
