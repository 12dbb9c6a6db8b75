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
/// through the environment (not the command line, which other users can read); output goes to worker.log.</summary>
public sealed class LocalProcessLauncher(Microsoft.Extensions.Options.IOptions<MoTLabOptions> options) : ILauncher
{
    public IWorkerHandle Launch(WorkerLaunch l)
    {
        Directory.CreateDirectory(l.RunDir);
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = l.RunDir, UseShellExecute = false,
        };
        psi.ArgumentList.Add(options.Value.TrainingDllPath);
        foreach (var a in new[] { "worker", "--run", l.RunId.ToString(), "--hub", l.HubUrl, "--out", l.RunDir, "--device", l.Device })
            psi.ArgumentList.Add(a);
        if (l.Threads > 0) { psi.ArgumentList.Add("--threads"); psi.ArgumentList.Add(l.Threads.ToString()); }
        psi.Environment["MOTLAB_WORKER_TOKEN"] = l.Token;
        psi.Environment["MOTLAB_CACHE"] = l.CacheDir;
        var log = new StreamWriter(Path.Combine(l.RunDir, "worker.log"), append: true) { AutoFlush = true };
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new Handle(process, log);
    }

    sealed class Handle(Process process, StreamWriter log) : IWorkerHandle
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
                if (process.HasExited) { process.WaitForExit(); exitCode = process.ExitCode; } // drains the output handlers
                process.Dispose();
                disposed = true;
            }
            lock (log) log.Dispose();
        }
    }
}
