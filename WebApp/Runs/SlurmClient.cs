using MoTLab.Shared.Runs;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Options;

namespace MoTLab.WebApp.Runs;

/// <summary>A Slurm job as `scontrol show job` describes it; State is null once Slurm has forgotten the job.</summary>
public sealed record SlurmJob(string Id, string? State, string? Reason, string? Node, string? ExitCode)
{
    public bool Pending => State is "PENDING" or "CONFIGURING" or "REQUEUED" or "RESV_DEL_HOLD" or "SUSPENDED";
    public bool Ended => State is null || !(Pending || State is "RUNNING" or "COMPLETING");
}

/// <summary>Talks to Slurm through its commands (sbatch, scontrol, scancel), as a user would: one batch job per
/// run, its script kept in the run folder (job.sh) and its output in worker.log. The worker token goes through
/// the job's environment, never into the script or onto a command line.</summary>
public sealed class SlurmClient(IOptions<MoTLabOptions> options)
{
    SlurmOptions Config => options.Value.Slurm ?? throw new InvalidOperationException("MoTLab:Slurm is not configured");

    /// <returns>The job id.</returns>
    public async Task<string> SubmitAsync(WorkerLaunch l, CancellationToken ct)
    {
        Directory.CreateDirectory(l.RunDir);
        var script = Path.Combine(l.RunDir, "job.sh");
        await File.WriteAllTextAsync(script, Script(l), ct);
        var (code, output, error) = await RunAsync("sbatch", ["--parsable", script],
            new Dictionary<string, string> { ["MOTLAB_WORKER_TOKEN"] = l.Token, ["MOTLAB_CACHE"] = l.CacheDir }, ct);
        if (code != 0) throw new InvalidOperationException($"sbatch failed (exit {code}): {error.Trim()}");
        return output.Trim().Split(';')[0];                                  // "id" or "id;cluster"
    }

    string Script(WorkerLaunch l)
    {
        var c = Config;
        var s = new StringBuilder("#!/bin/bash\n");
        void Opt(string option) => s.Append("#SBATCH ").Append(option).Append('\n');
        Opt($"--job-name=motlab-run-{l.RunId}");
        Opt($"--output={RunFolder.Log(l.RunDir)}");
        Opt("--open-mode=append");
        if (c.Partition is { Length: > 0 } p) Opt($"--partition={p}");
        if (c.Account is { Length: > 0 } a) Opt($"--account={a}");
        if (c.Gpus > 0) Opt($"--gres=gpu:{c.Gpus}");
        if (c.CpusPerTask > 0) Opt($"--cpus-per-task={c.CpusPerTask}");
        if (c.TimeLimit is { Length: > 0 } t) Opt($"--time={t}");
        foreach (var o in c.Options) Opt(o);
        foreach (var line in c.Setup) s.Append(line).Append('\n');
        var dll = c.TrainingDll ?? options.Value.TrainingDllPath;
        var threads = c.CpusPerTask > 0 && c.Gpus == 0 ? $" --threads {c.CpusPerTask}" : "";
        s.Append($"exec {Quote(c.Dotnet)} {Quote(dll)} worker --run {l.RunId} --hub {Quote(l.HubUrl)} --out {Quote(l.RunDir)} --device {(c.Gpus > 0 ? "cuda" : "cpu")}{threads}\n");
        return s.ToString();
    }

    public async Task<SlurmJob> QueryAsync(string id, CancellationToken ct)
    {
        var (code, output, _) = await RunAsync("scontrol", ["show", "job", "-o", id], null, ct);
        if (code != 0 || output.Trim().Length == 0) return new SlurmJob(id, null, null, null, null);   // finished and forgotten
        var fields = output.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(f => f.Split('=', 2)).Where(kv => kv.Length == 2)
            .GroupBy(kv => kv[0]).ToDictionary(g => g.Key, g => g.First()[1]);
        string? Get(string k) => fields.TryGetValue(k, out var v) && v is not ("(null)" or "None" or "") ? v : null;
        return new SlurmJob(id, Get("JobState"), Get("Reason"), Get("BatchHost") ?? Get("NodeList"), Get("ExitCode"));
    }

    public Task CancelAsync(string id, CancellationToken ct) => RunAsync("scancel", [id], null, ct);

    static async Task<(int Code, string Output, string Error)> RunAsync(string command, string[] args, Dictionary<string, string>? env, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? []) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {command}");
        var output = p.StandardOutput.ReadToEndAsync(ct);
        var error = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        return (p.ExitCode, await output, await error);
    }

    static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";
}
