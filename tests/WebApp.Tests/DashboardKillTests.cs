using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;

namespace MoTLab.WebApp.Tests;

/// <summary>The dashboard as its own process, killed with SIGKILL in the middle of a run and started again on
/// the same port and data folder: the worker trains on, waits for it, is adopted, and finishes the run, its worker.log
/// complete.</summary>
[Collection(Workers.A)]
public sealed class DashboardKillTests : IDisposable
{
    readonly string folder = Directory.CreateTempSubdirectory("motlab-kill").FullName;
    readonly int port = FreePort();
    Process? dashboard;

    /// <summary>A loopback port free at the moment of asking.</summary>
    internal static int FreePort() => FreePorts(1)[0];

    /// <summary>Distinct loopback ports free at the moment of asking (all held until all are chosen: two calls of
    /// <see cref="FreePort"/> can return the same port).</summary>
    internal static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        foreach (var l in listeners) l.Start();
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        foreach (var l in listeners) l.Stop();
        return ports;
    }

    async Task<HttpClient> StartAsync()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = folder };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "MoTLab.WebApp.dll"));
        psi.Environment["Urls"] = $"http://127.0.0.1:{port}";
        psi.Environment["MoTLab__DataFolder"] = folder;
        dashboard = Process.Start(psi)!;
        dashboard.OutputDataReceived += (_, _) => { }; dashboard.ErrorDataReceived += (_, _) => { };
        dashboard.BeginOutputReadLine(); dashboard.BeginErrorReadLine();
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        for (var t = DateTime.UtcNow; ; await Task.Delay(200))
        {
            try { if ((await http.GetAsync("/api/runs")).IsSuccessStatusCode) return http; }
            catch (HttpRequestException) { }
            Assert.True(DateTime.UtcNow - t < TimeSpan.FromSeconds(60), "the dashboard did not start");
        }
    }

    [Fact]
    public async Task A_run_survives_a_sigkill_of_the_dashboard()
    {
        var http = await StartAsync();
        var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 1500 });
        int id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        long before = (await http.WaitForRunAsync(id, r => r.GetProperty("last_step").GetInt64() >= 100)).GetProperty("last_step").GetInt64();

        dashboard!.Kill();                                     // SIGKILL, the dashboard only: its worker lives on
        await dashboard.WaitForExitAsync();
        await Task.Delay(2000);                                // the worker keeps training, its telemetry queued
        http = await StartAsync();

        await http.WaitForRunAsync(id, r => r.Status() == "completed", 420);   // under the full suite's load 1,500 tiny steps can take minutes
        var steps = (await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/metrics?maxPoints=100000")).EnumerateArray()
            .Select(m => m.GetProperty("step").GetInt64()).ToList();
        Assert.Equal(1500, steps[^1]);
        Assert.Equal(steps.Distinct().Count(), steps.Count);
        var missing = Enumerable.Range(1, 150).Select(i => i * 10L).Except(steps).ToList();
        // what the dead dashboard had received but not yet committed is the only loss allowed (≈ 1 s of logging)
        Assert.True(missing.Count <= 10 && missing.All(s => s <= before + 200), $"missing steps: {string.Join(", ", missing)} (killed near step {before})");
        // the worker wrote its own log to the end: the Log tab shows the whole run, not what the first dashboard saw
        var log = File.ReadAllText(Path.Combine(folder, "runs", $"run-{id:D6}", "worker.log"));
        Assert.Contains("step    1500/1500", log);
    }

    public void Dispose()
    {
        try { dashboard?.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        // the worker outlived the first dashboard (that is the point), so it is no child of anything here: when the test
        // fails, it would train on for its reconnect grace. Its command line names the run folder, under ours.
        foreach (var p in Process.GetProcesses())
            try { if (p.Id != Environment.ProcessId && File.ReadAllText($"/proc/{p.Id}/cmdline").Contains(folder)) p.Kill(true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException) { }
        try { Directory.Delete(folder, true); } catch (IOException) { }
    }
}
