using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;

namespace MoTLab.WebApp.Tests;

/// <summary>8 SignalR watchers on 4 concurrent live runs (real workers, a step logged every step): every watcher
/// gets every stored point of every run, in order, and the dashboard's queues drain to zero. The minutes-long
/// version with memory figures is the load benchmark (docs/reliability.md).</summary>
[Collection(Workers.B)]
public sealed class LoadTests
{
    public const int Watchers = 8, Runs = 4;

    /// <summary>What one watcher got of one run, in constant memory: steps are logged 1, 2, 3, … so any step that
    /// is not the last one + 1 is a gap or a repeat.</summary>
    public sealed class Tally
    {
        public long Count, Last, OutOfOrder;
        public void Add(long step) { lock (this) { if (step != Last + 1) OutOfOrder++; Last = step; Count++; } }
    }

    /// <summary>Starts <see cref="Runs"/> runs watched by <see cref="Watchers"/> clients; returns per watcher and run what was received.</summary>
    public static async Task<(int[] Ids, ConcurrentDictionary<(int Watcher, int Run), Tally> Received, List<HubConnection> Clients)> StartAsync(
        DashboardFactory dashboard, HttpClient http, int steps)
    {
        var received = new ConcurrentDictionary<(int, int), Tally>();
        var clients = new List<HubConnection>();
        for (int w = 0; w < Watchers; w++)
        {
            var client = new HubConnectionBuilder().WithUrl(new Uri(dashboard.BaseAddress, RunsHubContract.Path)).Build();
            int watcher = w;
            client.On<RunEvent>(nameof(IRunsClient.RunEvent), e =>
            {
                if (e.Metrics is not { } m) return;
                var tally = received.GetOrAdd((watcher, e.RunId), _ => new Tally());
                foreach (var x in m) tally.Add(x.Step);
            });
            await client.StartAsync();
            clients.Add(client);
        }
        var preset = Presets.Find("tiny-dense")!.Config;
        var ids = new int[Runs];
        for (int r = 0; r < Runs; r++)
        {
            var config = preset with { Name = $"load-{r}", Train = preset.Train with { Steps = steps, LogEvery = 1, EvalEvery = 100_000, Seed = r } };
            var response = await http.PostAsync("/api/runs", JsonContent.Create(new { config }, options: Json.Options));
            ids[r] = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
            foreach (var c in clients) await c.InvokeAsync(RunsHubContract.Subscribe, ids[r]);   // before the worker starts: nothing missed
        }
        return (ids, received, clients);
    }

    [Fact]
    public async Task Eight_watchers_of_four_live_runs_each_get_every_point_and_the_queues_drain()
    {
        using var dashboard = new DashboardFactory(null, settings: new Dictionary<string, string> { ["MoTLab:CpuSlots"] = "4", ["MoTLab:WorkerThreads"] = "1" });
        using var http = dashboard.Client();
        var (ids, received, clients) = await StartAsync(dashboard, http, steps: 600);
        try
        {
            foreach (var id in ids)
            {
                var run = await http.WaitForRunAsync(id, r => r.Status() is "completed" or "failed", 300);
                Assert.True(run.Status() == "completed", $"run {id} did not complete: {run}");   // the run's error, if it failed
            }
            await Task.Delay(1000);                                        // the last events are in flight
            foreach (var id in ids)
            {
                var stored = (await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/metrics?maxPoints=100000"))
                    .EnumerateArray().Select(m => m.GetProperty("step").GetInt64()).ToList();
                Assert.Equal(Enumerable.Range(1, 600).Select(i => (long)i), stored);
                for (int w = 0; w < Watchers; w++)
                {
                    var got = received[(w, id)];
                    Assert.Equal((600, 600, 0), (got.Count, got.Last, got.OutOfOrder));
                }
            }
            var health = await http.GetFromJsonAsync<JsonElement>("/api/health");
            Assert.Equal(0, health.GetProperty("telemetry_queue").GetInt32());
            Assert.Equal(0, health.GetProperty("hub_sends_in_flight").GetInt64());
            Assert.Equal(0, health.GetProperty("hub_events_dropped").GetInt64());
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }
}
