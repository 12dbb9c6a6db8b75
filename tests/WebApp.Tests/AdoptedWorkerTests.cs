using MoTLab.Shared.Config;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Tests;

/// <summary>A worker that outlived a dashboard restart holds its slot while it reports, and gives it back
/// (its run Interrupted) once it falls silent.</summary>
[Collection(Workers.A)]
public sealed class AdoptedWorkerTests : IDisposable
{
    // long enough for the real worker started below (it heartbeats every 15 s while it has nothing else to say, and a
    // loaded machine can keep it quiet between hello and first step); 3 s once killed it during start-up
    readonly DashboardFactory dashboard = new(null, settings: new Dictionary<string, string> { ["MoTLab:WorkerSilenceSeconds"] = "30" });

    [Fact]
    public async Task A_silent_adopted_worker_frees_its_slot_and_its_run_becomes_interrupted()
    {
        var token = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        int orphan;
        await using (var db = await dashboard.Services.GetRequiredService<IDbContextFactory<MoTLabDb>>().CreateDbContextAsync())
        {
            var row = new RunRow { Name = "left running by an earlier dashboard", Status = RunStatus.Running, Requested = DeviceRequest.Cpu, Slot = "cpu", Kind = FfnKind.Dense, ConfigJson = "{}",
                RunDir = dashboard.DataFolder, CreatedAt = DateTime.UtcNow, WorkerTokenHash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token))) };
            db.Runs.Add(row);
            await db.SaveChangesAsync();
            orphan = row.Id;
        }
        await using (var worker = new HubConnectionBuilder().WithUrl(new Uri(dashboard.BaseAddress, RunsHubContract.Path)).Build())
        {
            await worker.StartAsync();
            await worker.InvokeAsync(RunsHubContract.Heartbeat, orphan, token);    // adopted by its token hash; then silence
        }

        using var http = dashboard.Client();
        var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 20 });
        int next = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        await Task.Delay(1500);
        Assert.Equal("queued", (await http.GetRunAsync(next)).Status());                     // the one CPU slot is the adopted worker's

        var run = await http.WaitForRunAsync(orphan, r => r.Status() == "interrupted", 120);  // the silent worker is given up
        Assert.Contains("stopped reporting", run.GetProperty("error").GetString());
        await http.WaitForRunAsync(next, r => r.Status() == "completed");   // then the queued run gets the slot
    }

    public void Dispose() => dashboard.Dispose();
}
