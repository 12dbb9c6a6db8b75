using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace MoTLab.WebApp.Tests;

/// <summary>Device pool "remote": the dashboard starts nothing; a worker started by hand with a token the
/// dashboard issued streams the run exactly like a local one.</summary>
[Collection(Workers.B)]
public class RemoteWorkerTests(DashboardFactory dashboard) : IClassFixture<DashboardFactory>
{
    [Fact]
    public async Task A_worker_started_by_hand_with_an_issued_token_trains_the_run()
    {
        using var http = dashboard.Client();
        var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-mot", steps = 40, device = "remote" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        int id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        await Task.Delay(1500);
        Assert.Equal("queued", (await http.GetRunAsync(id)).Status());                         // nothing started here

        var local = (await (await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 5 })).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        Assert.Equal(HttpStatusCode.Conflict, (await http.PostAsync($"/api/runs/{local}/worker-token", null)).StatusCode);   // not a remote run

        var issued = await (await http.PostAsync($"/api/runs/{id}/worker-token", null)).Content.ReadFromJsonAsync<JsonElement>();
        var token = issued.GetProperty("token").GetString()!;
        Assert.Contains($"worker --run {id} --hub {issued.GetProperty("hub").GetString()}", issued.GetProperty("command").GetString());

        using var folder = new TempFolder();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "worker", "MoTLab.Training.dll"), "worker", "--run", id.ToString(),
                     "--hub", issued.GetProperty("hub").GetString()!, "--token", token, "--out", folder.Path, "--device", "cpu" })
            psi.ArgumentList.Add(a);
        using var worker = Process.Start(psi)!;
        var output = worker.StandardOutput.ReadToEndAsync();
        var errors = worker.StandardError.ReadToEndAsync();
        await worker.WaitForExitAsync();
        Assert.True(worker.ExitCode == 0, await output + await errors);

        var run = await http.WaitForRunAsync(id, r => r.Status() is "completed" or "failed", 30);
        Assert.Equal("completed", run.Status());
        Assert.Equal("remote:cpu", run.GetProperty("device").GetString());
        Assert.Equal(40, run.GetProperty("last_step").GetInt64());
        var checkpoints = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/checkpoints");
        Assert.StartsWith(folder.Path, checkpoints[checkpoints.GetArrayLength() - 1].GetProperty("path").GetString());   // on the worker's machine
        Assert.True(File.Exists(Path.Combine(folder.Path, "metrics.jsonl")));
    }

    sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("motlab-remote").FullName;
        public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
    }
}
