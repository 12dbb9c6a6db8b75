using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MoTLab.WebApp.Data;
using MoTLab.Shared.Runs;

namespace MoTLab.WebApp.Tests;

/// <summary>Real tiny runs: API → scheduler → worker process → hub → SQLite, watched by a SignalR client.</summary>
[Collection(Workers.A)]
public class LiveRunTests(DashboardFactory dashboard) : IClassFixture<DashboardFactory>
{
    readonly HttpClient http = dashboard.Client();

    Task<JsonElement> WaitFor(int id, Func<JsonElement, bool> done, int seconds = 120) => http.WaitForRunAsync(id, done, seconds);

    [Fact]
    public async Task A_MoT_run_transitions_to_a_linked_token_choice_run()
    {
        var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-mot", steps = 30 });
        int parent = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        await WaitFor(parent, r => r.Status() is "completed" or "failed");

        var response = await http.PostAsJsonAsync($"/api/runs/{parent}/transition", new { steps = 20 });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var child = await response.Content.ReadFromJsonAsync<JsonElement>();
        int id = child.GetProperty("id").GetInt32();
        Assert.Equal(parent, child.GetProperty("parent_id").GetInt32());
        Assert.Equal("token_choice", child.GetProperty("kind").GetString());
        var run = await WaitFor(id, r => r.Status() is "completed" or "failed");
        Assert.True(run.Status() == "completed", run.ToString());
        var log = File.ReadAllText(Path.Combine(dashboard.DataFolder, "runs", $"run-{id:D6}", "worker.log"));
        Assert.Contains($"weights from {Path.Combine(dashboard.DataFolder, "runs", $"run-{parent:D6}", "checkpoints")}", log);

        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsJsonAsync($"/api/runs/{id}/transition", new { steps = 20 })).StatusCode);   // not MoT
        var dense = MoTLab.Shared.Config.Presets.Find("tiny-dense")!.Config;
        var outside = await http.PostAsync("/api/runs", JsonContent.Create(new { config = dense with { Train = dense.Train with { InitFrom = "/etc" } } }, options: MoTLab.Shared.Json.Options));
        Assert.Equal(HttpStatusCode.BadRequest, outside.StatusCode);
        Assert.Contains("train.init_from", await outside.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_dense_run_is_fine_tuned_with_lightweight_experts_as_a_linked_run()
    {
        var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 30 });
        int parent = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        await WaitFor(parent, r => r.Status() is "completed" or "failed");

        var response = await http.PostAsJsonAsync($"/api/runs/{parent}/finetune", new { kind = "molora", experts = 4, rank = 2, steps = 20 });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var child = await response.Content.ReadFromJsonAsync<JsonElement>();
        int id = child.GetProperty("id").GetInt32();
        Assert.Equal(parent, child.GetProperty("parent_id").GetInt32());
        Assert.Equal("molora", child.GetProperty("kind").GetString());
        var run = await WaitFor(id, r => r.Status() is "completed" or "failed");
        Assert.True(run.Status() == "completed", run.ToString());
        var log = File.ReadAllText(Path.Combine(dashboard.DataFolder, "runs", $"run-{id:D6}", "worker.log"));
        Assert.Matches(@"parameters \([\d,]+ trainable, [\d.]+ ?%\)", log);

        var refused = await http.PostAsJsonAsync($"/api/runs/{id}/finetune", new { kind = "mov", steps = 20 });   // not dense
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("fine-tune a dense model", await refused.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_tiny_run_streams_its_metrics_to_a_signalr_client_and_is_stored()
    {
        var events = new ConcurrentQueue<RunEvent>();
        await using var hub = new HubConnectionBuilder().WithUrl(new Uri(dashboard.BaseAddress, RunsHubContract.Path)).Build();
        hub.On<RunEvent>(nameof(IRunsClient.RunEvent), e => events.Enqueue(e));
        await hub.StartAsync();

        var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-mot", steps = 60, tags = new[] { "test" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        int id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        await hub.InvokeAsync(RunsHubContract.Subscribe, id);

        var run = await WaitFor(id, r => r.Status() is "completed" or "failed");
        Assert.Equal("completed", run.Status());
        Assert.Equal(60, run.GetProperty("last_step").GetInt64());
        Assert.True(run.GetProperty("last_eval_loss").GetDouble() < 4.0);

        var streamed = events.Where(e => e.RunId == id).SelectMany(e => e.Metrics ?? []).Select(m => m.Step).ToList();
        Assert.Equal(new long[] { 10, 20, 30, 40, 50, 60 }, streamed);
        Assert.Contains(events, e => e.RunId == id && e.Routing is { Count: > 0 } r && r[0].MergeWeights!.Length == 4);
        Assert.Contains(events, e => e.RunId == id && e.Status?.Status == RunStatus.Completed);
        // the summary as stored comes with the steps: the last progress is the run's own summary
        var progress = events.Where(e => e.RunId == id && e.Kind == RunEventKind.Progress).Select(e => e.Progress!).ToList();
        Assert.NotEmpty(progress);
        Assert.Equal(60, progress[^1].LastStep);
        Assert.Equal(run.GetProperty("last_eval_loss").GetDouble(), progress[^1].LastEvalLoss);

        var metrics = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/metrics?maxPoints=1000");
        Assert.Equal(6, metrics.GetArrayLength());
        var csv = await http.GetStringAsync($"/api/runs/{id}/metrics?format=csv");
        Assert.StartsWith("step,tokens,elapsed_s,time,train_loss", csv);
        Assert.Contains("balance_loss,z_loss", csv.Split('\n')[0]);                                  // every field the worker logs is stored
        Assert.Equal(7, csv.Trim().Split('\n').Length);
        var routing = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/routing?layer=1");
        Assert.Equal("mot", routing[0].GetProperty("kind").GetString());

        var checkpoints = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/checkpoints");
        Assert.Equal(60, checkpoints[checkpoints.GetArrayLength() - 1].GetProperty("step").GetInt64());

        var runDir = Directory.GetDirectories(Path.Combine(dashboard.DataFolder, "runs")).Single(d => d.EndsWith($"run-{id:D6}"));
        Assert.True(Directory.Exists(Path.Combine(runDir, "checkpoints")));
        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync($"/api/runs/{id}")).StatusCode);
        Assert.False(Directory.Exists(runDir));
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"/api/runs/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"/api/runs/{id}/metrics")).StatusCode);
    }

    [Fact]
    public async Task Cancel_stops_a_running_worker_with_a_checkpoint()
    {
        var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 100000 });
        int id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        await WaitFor(id, r => r.GetProperty("last_step").GetInt64() >= 20);
        Assert.Equal(HttpStatusCode.Accepted, (await http.PostAsync($"/api/runs/{id}/cancel", null)).StatusCode);
        var run = await WaitFor(id, r => r.Status() is not "running" and not "queued", 60);
        Assert.Equal("cancelled", run.Status());
        var runDir = Path.Combine(dashboard.DataFolder, "runs", $"run-{id:D6}");
        Assert.NotEmpty(Directory.GetDirectories(Path.Combine(runDir, "checkpoints"), "step-*"));
    }

    [Fact]
    public async Task A_killed_worker_fails_its_run_with_the_reason_and_the_next_run_still_starts()
    {
        var first = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 100000 });
        int a = (await first.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        await WaitFor(a, r => r.GetProperty("last_step").GetInt64() >= 10);
        var second = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 20 });   // waits for the one CPU slot
        int b = (await second.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();

        await using (var db = await dashboard.Services.GetRequiredService<IDbContextFactory<MoTLabDb>>().CreateDbContextAsync())
            System.Diagnostics.Process.GetProcessById((await db.Runs.FindAsync(a))!.WorkerPid!.Value).Kill();   // SIGKILL, as a native crash would end it

        var failed = await WaitFor(a, r => r.Status() != "running", 60);
        Assert.Equal("failed", failed.Status());
        Assert.Contains("worker exited with code", failed.GetProperty("error").GetString());
        Assert.Equal("completed", (await WaitFor(b, r => r.Status() is "completed" or "failed", 120)).Status());
    }

    [Fact]
    public async Task A_worker_with_a_wrong_token_is_refused()
    {
        await using var hub = new HubConnectionBuilder().WithUrl(new Uri(dashboard.BaseAddress, RunsHubContract.Path)).Build();
        await hub.StartAsync();
        var e = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<WorkerAssignment>(RunsHubContract.Hello, 1, "not-the-token"));
        Assert.Contains("invalid or expired worker token", e.Message);
    }
}

/// <summary>Stopping the dashboard gracefully checkpoints running workers; after a restart Resume continues the
/// same curve from that checkpoint, with no step twice.</summary>
[Collection(Workers.B)]
public class RestartTests
{
    [Fact]
    public async Task A_run_interrupted_by_a_dashboard_shutdown_resumes_on_the_same_curve()
    {
        var folder = Directory.CreateTempSubdirectory("motlab-restart").FullName;
        try
        {
            int id;
            using (var first = new DashboardFactory(folder))
            using (var http = first.Client())
            {
                var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 800 });
                id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
                await http.WaitForRunAsync(id, r => r.GetProperty("last_step").GetInt64() >= 30);
            }                                                        // graceful stop: Cancel → checkpoint → Interrupted

            using var second = new DashboardFactory(folder);
            using var http2 = second.Client();
            var run = await http2.GetRunAsync(id);
            Assert.Equal("interrupted", run.GetProperty("status").GetString());
            Assert.Contains("Resume", run.GetProperty("error").GetString());
            long stoppedAt = run.GetProperty("last_step").GetInt64();
            Assert.Equal(HttpStatusCode.Accepted, (await http2.PostAsync($"/api/runs/{id}/resume", null)).StatusCode);
            await http2.WaitForRunAsync(id, r => r.Status() == "completed", 300);   // generous: the suite runs many workers on 2 cores

            var steps = (await http2.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/metrics?maxPoints=100000")).EnumerateArray()
                .Select(m => m.GetProperty("step").GetInt64()).ToList();
            Assert.Equal(Enumerable.Range(1, 80).Select(i => i * 10L), steps);   // every logged step once, 10 … 800
            Assert.True(stoppedAt >= 30);
            Assert.Equal(HttpStatusCode.Conflict, (await http2.PostAsync($"/api/runs/{id}/resume", null)).StatusCode);
        }
        finally { try { Directory.Delete(folder, true); } catch (IOException) { } }
    }
}
