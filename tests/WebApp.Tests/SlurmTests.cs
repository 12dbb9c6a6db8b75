using MoTLab.Shared.Runs;
using System.Net.Http.Json;
using System.Text.Json;

namespace MoTLab.WebApp.Tests;

/// <summary>The "slurm" device pool against a real single-node Slurm: runs are batch jobs whose state the run
/// follows (pending with Slurm's reason, running on a node, failed with the job's end), cancel is scancel, and
/// the job's output is the run's log.</summary>
[Collection(Workers.A)]
public sealed class SlurmTests(SlurmCluster cluster) : IClassFixture<SlurmCluster>
{
    /// <param name="cpusPerTask">2 = every job takes the whole (2-core) node.</param>
    static DashboardFactory Dashboard(int cpusPerTask, string? setup = null)
    {
        var settings = new Dictionary<string, string> { ["MoTLab:Slurm:CpusPerTask"] = cpusPerTask.ToString(), ["MoTLab:Slurm:PollSeconds"] = "1" };
        if (setup is not null) settings["MoTLab:Slurm:Setup:0"] = setup;
        return new DashboardFactory(null, settings: settings);
    }

    static async Task<int> CreateAsync(HttpClient http, int steps)
    {
        var response = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps, device = "slurm" });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
    }

    [Fact]
    public async Task A_run_goes_through_sbatch_and_finishes_on_the_node_with_its_log()
    {
        Assert.True(File.Exists(cluster.Conf));
        using var dashboard = Dashboard(cpusPerTask: 1);
        using var http = dashboard.Client();
        int id = await CreateAsync(http, 40);
        var running = await http.WaitForRunAsync(id, r => r.Text("status_detail")?.Contains(" on localhost") == true || r.Status() is "completed" or "failed", 90);
        Assert.Matches(@"^Slurm job \d+", running.Text("status_detail"));
        var run = await http.WaitForRunAsync(id, r => r.Status() is "completed" or "failed", 120);
        Assert.True(run.Status() == "completed", run.ToString());
        Assert.Equal("slurm:cpu", run.GetProperty("device").GetString());
        var runDir = Path.Combine(dashboard.DataFolder, "runs", $"run-{id:D6}");
        Assert.Contains("step      40/40", File.ReadAllText(RunFolder.Log(runDir)));   // the job's output is the run's log
        var script = File.ReadAllText(Path.Combine(runDir, "job.sh"));
        Assert.Contains("#SBATCH --cpus-per-task=1", script);
        Assert.DoesNotContain("TOKEN", script);                                               // the token travels in the job's environment
    }

    [Fact]
    public async Task A_pending_job_shows_slurms_reason_and_cancel_is_scancel()
    {
        using var dashboard = Dashboard(cpusPerTask: 2);
        using var http = dashboard.Client();
        int first = await CreateAsync(http, 100_000);
        await http.WaitForRunAsync(first, r => r.Status() == "running", 90);
        int second = await CreateAsync(http, 100_000);
        var pending = await http.WaitForRunAsync(second, r => r.Text("status_detail")?.Contains("pending (Resources)") == true, 30);
        Assert.Equal("queued", pending.Status());
        var job = pending.Text("status_detail")!.Split(' ')[2];

        await http.PostAsync($"/api/runs/{second}/cancel", null);
        Assert.Equal("cancelled", (await http.GetRunAsync(second)).Status());
        for (int i = 0; i < 30 && !SlurmCluster.Run("scontrol", "show", "job", "-o", job).Contains("JobState=CANCELLED"); i++) await Task.Delay(500);
        Assert.Contains("JobState=CANCELLED", SlurmCluster.Run("scontrol", "show", "job", "-o", job));

        await http.PostAsync($"/api/runs/{first}/cancel", null);                            // running: the worker checkpoints and stops
        var cancelled = await http.WaitForRunAsync(first, r => r.Status() is not "running", 60);
        Assert.Equal("cancelled", cancelled.Status());
        Assert.NotEmpty((await http.GetFromJsonAsync<JsonElement>($"/api/runs/{first}/checkpoints")).EnumerateArray());
    }

    [Fact]
    public async Task A_job_that_fails_before_training_fails_its_run_with_the_job_state()
    {
        using var dashboard = Dashboard(cpusPerTask: 1, setup: "echo 'no GPU driver on this node' >&2; exit 3");
        using var http = dashboard.Client();
        int id = await CreateAsync(http, 40);
        var run = await http.WaitForRunAsync(id, r => r.Status() is "completed" or "failed", 90);
        Assert.Equal("failed", run.Status());
        Assert.Matches(@"Slurm job \d+ ended FAILED \(exit 3:0\)", run.Text("error"));
        Assert.Contains("no GPU driver on this node", run.Text("error"));
    }
}
