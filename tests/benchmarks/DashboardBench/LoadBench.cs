using System.Net.Http.Json;
using System.Text.Json;
using MoTLab.WebApp.Tests;

namespace MoTLab.DashboardBench;

/// <summary>`load MINUTES`: 8 SignalR watchers on 4 live tiny runs (real workers, every step logged) for the given
/// minutes; samples /api/health every 10 s (memory, queues), then cancels the runs and checks that every
/// watcher got every stored point, in order. The watchers keep counts, not points, so the process's memory is
/// the dashboard's. Prints one JSON line per sample and a summary line.</summary>
static class LoadBench
{
    public static async Task RunAsync(double minutes, Action<object> report)
    {
        using var dashboard = new DashboardFactory(null, settings: new Dictionary<string, string> { ["MoTLab:CpuSlots"] = "4", ["MoTLab:WorkerThreads"] = "1" });
        using var http = dashboard.Client();
        var (ids, received, clients) = await LoadTests.StartAsync(dashboard, http, steps: 10_000_000);
        var samples = new List<JsonElement>();
        var start = DateTime.UtcNow;
        while (DateTime.UtcNow - start < TimeSpan.FromMinutes(minutes))
        {
            await Task.Delay(TimeSpan.FromSeconds(10));
            GC.Collect();                                                   // live memory, not garbage awaiting collection
            var health = await http.GetFromJsonAsync<JsonElement>("/api/health");
            samples.Add(health);
            report(new { figure = "load_sample", t_s = (DateTime.UtcNow - start).TotalSeconds, health });
        }
        foreach (var id in ids) await http.PostAsync($"/api/runs/{id}/cancel", null);
        foreach (var id in ids) await http.WaitForRunAsync(id, r => r.Status() is not "running", 120);
        await Task.Delay(2000);

        long stored = 0, missing = 0, outOfOrder = 0;
        foreach (var id in ids)
        {
            long steps = (await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/metrics?maxPoints=1000000")).GetArrayLength();
            stored += steps;
            for (int w = 0; w < LoadTests.Watchers; w++)
            {
                var got = received.GetValueOrDefault((w, id)) ?? new LoadTests.Tally();
                missing += steps - got.Count;
                outOfOrder += got.OutOfOrder;
            }
        }
        foreach (var c in clients) await c.DisposeAsync();
        double Mb(JsonElement h, string field) => h.GetProperty(field).GetDouble();
        var later = samples.Skip(samples.Count / 3).ToList();              // after warm-up
        report(new
        {
            figure = "load_8_watchers_4_runs", minutes, points_stored = stored, points_per_watcher = stored,
            points_missing_summed_over_watchers = missing, points_out_of_order = outOfOrder,
            working_set_mb_first = Mb(later[0], "working_set_mb"), working_set_mb_last = Mb(later[^1], "working_set_mb"),
            working_set_mb_max = later.Max(h => Mb(h, "working_set_mb")),
            gc_heap_mb_first = Mb(later[0], "gc_heap_mb"), gc_heap_mb_last = Mb(later[^1], "gc_heap_mb"), gc_heap_mb_max = later.Max(h => Mb(h, "gc_heap_mb")),
            telemetry_queue_max = samples.Max(h => h.GetProperty("telemetry_queue").GetInt32()),
            hub_sends_in_flight_max = samples.Max(h => h.GetProperty("hub_sends_in_flight").GetInt64()),
            hub_events_dropped = samples[^1].GetProperty("hub_events_dropped").GetInt64(),
        });
    }
}
