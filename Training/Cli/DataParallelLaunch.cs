using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Training.Runtime;

namespace MoTLab.Training.Cli;

/// <summary>`train` with train.gpus = N > 1: starts N processes of this executable, one per rank (on CUDA each sees one
/// GPU, the r-th of CUDA_VISIBLE_DEVICES or of the host, as cuda:0; on the CPU they share out its cores), each training
/// its share of every batch (<see cref="Train.ProcessGroup"/>). Rank 0's output is the run's; the other ranks' errors
/// are shown with their rank. When a rank ends badly the others are ended too (a rank waiting in NCCL for a dead peer
/// would wait for ever), and the run fails with that rank's exit. Ctrl-C asks every rank, through its standard input,
/// to stop at the next logged step, where rank 0 writes a checkpoint; a second Ctrl-C, SIGTERM or SIGHUP ends them at
/// once. A rank whose standard input closes (the launcher gone) ends itself.</summary>
public static class DataParallelLaunch
{
    public const string RendezvousFolder = ".ranks";

    /// <returns>the exit code: 0, or the failing rank's</returns>
    public static int Run(RunConfig cfg, string dir, string device, string? resumeDir, int? threads)
    {
        int world = cfg.Train.Gpus;
        var errors = ConfigValidator.Validate(cfg.WithTokenizerVocab());
        if (errors.Count > 0) throw new Train.ConfigException(errors);
        var gpus = Gpus(device, world);
        Directory.CreateDirectory(dir);
        var rendezvous = Path.Combine(dir, RendezvousFolder);
        if (Directory.Exists(rendezvous)) Directory.Delete(rendezvous, true);   // a previous launch's id or port must not be read
        Directory.CreateDirectory(rendezvous);
        var configFile = Path.Combine(rendezvous, "config.json");
        File.WriteAllText(configFile, JsonSerializer.Serialize(cfg, Json.Indented));
        int perRank = threads ?? Math.Max(1, Environment.ProcessorCount / world);

        var ranks = new List<Process>();
        int interrupts = 0;
        void EndAll() { lock (ranks) foreach (var p in ranks) Kill(p); }
        ConsoleCancelEventHandler onCtrlC = (_, e) =>
        {
            e.Cancel = true;
            if (Interlocked.Increment(ref interrupts) > 1) { Console.Error.WriteLine("ending every rank now"); EndAll(); return; }
            Console.Error.WriteLine("stopping every rank at the next logged step (rank 0 writes a checkpoint); Ctrl-C again ends them at once");
            lock (ranks)
                foreach (var p in ranks)
                    try { p.StandardInput.WriteLine("stop"); p.StandardInput.Flush(); } catch (IOException) { }   // it has ended
        };
        Console.CancelKeyPress += onCtrlC;
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; Interlocked.Increment(ref interrupts); EndAll(); });
        using var onHup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => { ctx.Cancel = true; Interlocked.Increment(ref interrupts); EndAll(); });
        try
        {
            for (int r = 0; r < world; r++)
            {
                var psi = new ProcessStartInfo(Environment.ProcessPath!)
                    { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                // started as `dotnet MoTLab.Training.dll`: the same host and assembly (an apphost needs neither)
                if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet") psi.ArgumentList.Add(typeof(DataParallelLaunch).Assembly.Location);
                if (gpus is not null) psi.Environment["CUDA_VISIBLE_DEVICES"] = gpus[r];
                foreach (var a in new[] { "train", "--config", configFile, "--out", dir, "--device", gpus is null ? "cpu" : "cuda:0",
                             "--threads", perRank.ToString(), "--rank", r.ToString(), "--rendezvous", rendezvous })
                    psi.ArgumentList.Add(a);
                if (resumeDir is not null) { psi.ArgumentList.Add("--resume"); psi.ArgumentList.Add(resumeDir); }
                var p = Process.Start(psi) ?? throw new InvalidOperationException($"rank {r} could not be started");
                int rank = r;
                p.OutputDataReceived += (_, e) => { if (e.Data is { } line && rank == 0) Console.WriteLine(line); };
                p.ErrorDataReceived += (_, e) => { if (e.Data is { } line) Console.Error.WriteLine(rank == 0 ? line : $"rank {rank}: {line}"); };
                p.BeginOutputReadLine();
                p.BeginErrorReadLine();
                lock (ranks) ranks.Add(p);
                Console.WriteLine($"rank {r} of {world}: process {p.Id} on {(gpus is null ? "cpu" : $"GPU {gpus[r]}")}");
            }
            var running = ranks.Select((p, r) => (P: p, Rank: r)).ToList();
            var suspects = new List<(Process P, int Rank)>();   // ranks that ended badly by themselves, not ended by us
            while (running.Count > 0)
            {
                var ended = running.FirstOrDefault(x => x.P.WaitForExit(50));
                if (ended.P is null) continue;
                ended.P.WaitForExit();   // its output read to the end
                running.Remove(ended);
                if (ended.P.ExitCode == 0 || suspects.Count > 0) continue;
                // the peers of a dying rank fail too, a moment later (their connection closes): give them that moment,
                // then end the rest; the blame goes to a rank killed by a signal, else to the first to end
                suspects.Add(ended);
                var grace = Stopwatch.StartNew();
                while (grace.ElapsedMilliseconds < 500 && running.Any(x => !x.P.HasExited)) Thread.Sleep(20);
                suspects.AddRange(running.Where(x => x.P.HasExited && x.P.ExitCode != 0));
                EndAll();
            }
            if (interrupts > 0) return suspects.Count == 0 ? 0 : 130;
            if (suspects.OrderByDescending(f => f.P.ExitCode >= 128).ThenBy(f => f.P.ExitTime).FirstOrDefault() is { P: not null } f)
            {
                Console.Error.WriteLine($"error: rank {f.Rank} of {world} ended with exit code {f.P.ExitCode}{(f.P.ExitCode >= 128 ? $" (signal {f.P.ExitCode - 128})" : "")}; " +
                    "the other ranks were ended; the run resumes from its last checkpoint with --resume");
                return f.P.ExitCode is 1 or 2 ? f.P.ExitCode : 1;
            }
            return 0;
        }
        finally
        {
            Console.CancelKeyPress -= onCtrlC;
            EndAll();
            foreach (var p in ranks) { p.WaitForExit(); p.Dispose(); }
            try { Directory.Delete(rendezvous, true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }   // only the meeting point: the run folder stays
        }
    }

    /// <summary>Each rank's GPU (what its CUDA_VISIBLE_DEVICES is set to) for "cuda", or "auto" where CUDA is: the first
    /// <paramref name="world"/> of this process's CUDA_VISIBLE_DEVICES, or of the host's GPUs; null on the CPU.</summary>
    static string[]? Gpus(string device, int world)
    {
        var resolved = TorchRuntime.ResolveDevice(device);
        if (resolved.type != TorchSharp.DeviceType.CUDA) return null;
        if (device.StartsWith("cuda:", StringComparison.Ordinal))
            throw new Train.ConfigException([new ConfigError("train.gpus", $"a data-parallel run takes its GPUs from CUDA_VISIBLE_DEVICES (or the host's first {world}), not --device {device}: give --device cuda")]);
        var visible = Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES") is { Length: > 0 } list
            ? list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            : Enumerable.Range(0, TorchSharp.torch.cuda.device_count()).Select(i => i.ToString()).ToArray();
        if (visible.Length < world)
            throw new Train.ConfigException([new ConfigError("train.gpus", $"{world} processes need {world} GPUs; {visible.Length} are visible here")]);
        return visible.Take(world).ToArray();
    }

    static void Kill(Process p)
    {
        try { if (!p.HasExited) p.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }   // it ended meanwhile
    }
}
