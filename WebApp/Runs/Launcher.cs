using MoTLab.Shared.Runs;
using System.Diagnostics;

namespace MoTLab.WebApp.Runs;

/// <summary>What a launcher needs to start one run's worker.</summary>
public sealed record WorkerLaunch(int RunId, string HubUrl, string Token, string RunDir, string Device, int Threads, string CacheDir);

/// <summary>A started worker, whatever runs it.</summary>
public interface IWorkerHandle : IDisposable
{
    int? Pid { get; }
    bool HasExited { get; }
    int? ExitCode { get; }
    void Kill();
}

/// <summary>Stops a run's worker for good (delete); pages and the API use this rather than the scheduler itself.</summary>
public interface IWorkerControl
{
    Task KillAsync(int runId);
}

/// <summary>Starts workers: a local process (default); a cluster launcher later implements the same.</summary>
public interface ILauncher
{
    IWorkerHandle Launch(WorkerLaunch launch);
}

/// <summary>Runs `dotnet MoTLab.Training.dll worker ...` as a child process, one per run: a native crash or
/// CUDA OOM cannot take the dashboard down, and GPU memory returns when the process ends. The token goes
/// through the environment (not the command line, which other users can read). The worker's output goes straight
/// to worker.log in its run folder (the shell opens the file; no pipe through the dashboard), so a worker that outlives
/// a dashboard crash logs on to the end of its run, native crash messages included.</summary>
public sealed class LocalProcessLauncher(Microsoft.Extensions.Options.IOptions<MoTLabOptions> options) : ILauncher
{
    public IWorkerHandle Launch(WorkerLaunch l)
    {
        Directory.CreateDirectory(l.RunDir);
        var psi = new ProcessStartInfo("/bin/sh") { WorkingDirectory = l.RunDir, UseShellExecute = false };
        foreach (var a in new[] { "-c", "exec \"$@\" >>\"$MOTLAB_WORKER_LOG\" 2>&1", "motlab-worker", "dotnet", options.Value.TrainingDllPath,
                     "worker", "--run", l.RunId.ToString(), "--hub", l.HubUrl, "--out", l.RunDir, "--device", l.Device })
            psi.ArgumentList.Add(a);
        if (l.Threads > 0) { psi.ArgumentList.Add("--threads"); psi.ArgumentList.Add(l.Threads.ToString()); }
        psi.Environment["MOTLAB_WORKER_TOKEN"] = l.Token;
        psi.Environment["MOTLAB_CACHE"] = l.CacheDir;
        psi.Environment["MOTLAB_WORKER_LOG"] = RunFolder.Log(l.RunDir);
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.Start();
        return new Handle(process);
    }

    sealed class Handle(Process process) : IWorkerHandle
    {
        private readonly int pid = process.Id;
        private int? exitCode;
        private bool disposed;

        public int? Pid => pid;
        public bool HasExited { get { lock (this) return disposed || process.HasExited; } }
        public int? ExitCode { get { lock (this) return disposed ? exitCode : process.HasExited ? process.ExitCode : null; } }

        public void Kill()
        {
            lock (this)
                if (!disposed) try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { /* already gone */ }
        }

        /// <summary>Idempotent: the scheduler's reaper and its shutdown may both get here.</summary>
        public void Dispose()
        {
            lock (this)
            {
                if (disposed) return;
                if (process.HasExited) { process.WaitForExit(); exitCode = process.ExitCode; }
                process.Dispose();
                disposed = true;
            }
        }
    }
}
