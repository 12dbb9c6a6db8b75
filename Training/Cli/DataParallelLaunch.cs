using System.Diagnostics;
using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Training.Runtime;

namespace MoTLab.Training.Cli;

/// <summary>`train` with train.gpus = N > 1: starts N processes of this executable, one per rank (cuda:r on CUDA, the
/// CPU's cores shared out on the CPU), each training its share of every batch (<see cref="Train.ProcessGroup"/>).
/// Rank 0's output is the run's; the other ranks' errors are shown with their rank. When a rank ends badly the
/// others are ended too (a rank waiting in NCCL for a dead peer would wait for ever), and the run fails with the
/// first failing rank's reason. Ctrl-C ends every rank; the run resumes from its last checkpoint
/// (train.checkpoint_every) with the same N.</summary>
public static class DataParallelLaunch
{
    public const string RendezvousFolder = ".ranks";

    /// <returns>the exit code: 0, or the first failing rank's</returns>
    public static int Run(RunConfig cfg, string dir, string device, string? resumeDir, int? threads)
    {
        int world = cfg.Train.Gpus;
        var errors = ConfigValidator.Validate(cfg.WithTokenizerVocab());
        if (errors.Count > 0) throw new Train.ConfigException(errors);
        var devices = Devices(device, world);
        Directory.CreateDirectory(dir);
        var rendezvous = Path.Combine(dir, RendezvousFolder);
        if (Directory.Exists(rendezvous)) Directory.Delete(rendezvous, true);   // a previous launch's id or port must not be read
        Directory.CreateDirectory(rendezvous);
        var configFile = Path.Combine(rendezvous, "config.json");
        File.WriteAllText(configFile, JsonSerializer.Serialize(cfg, Json.Indented));
        int perRank = threads ?? Math.Max(1, Environment.ProcessorCount / world);

        var ranks = new List<Process>();
        var stopping = false;
        ConsoleCancelEventHandler stop = (_, e) =>
        {
            e.Cancel = true; stopping = true;
            Console.Error.WriteLine("stopping every rank; the run resumes from its last checkpoint (train.checkpoint_every)");
            foreach (var p in ranks) Kill(p);
        };
        Console.CancelKeyPress += stop;
        try
        {
            for (int r = 0; r < world; r++)
            {
                var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                // started as `dotnet MoTLab.Training.dll`: the same host and assembly (an apphost needs neither)
                if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet") psi.ArgumentList.Add(typeof(DataParallelLaunch).Assembly.Location);
                foreach (var a in new[] { "train", "--config", configFile, "--out", dir, "--device", devices[r], "--threads", perRank.ToString(),
                             "--rank", r.ToString(), "--rendezvous", rendezvous })
                    psi.ArgumentList.Add(a);
                if (resumeDir is not null) { psi.ArgumentList.Add("--resume"); psi.ArgumentList.Add(resumeDir); }
                var p = Process.Start(psi) ?? throw new InvalidOperationException($"rank {r} could not be started");
                int rank = r;
                p.OutputDataReceived += (_, e) => { if (e.Data is { } line && rank == 0) Console.WriteLine(line); };
                p.ErrorDataReceived += (_, e) => { if (e.Data is { } line) Console.Error.WriteLine(rank == 0 ? line : $"rank {rank}: {line}"); };
                p.BeginOutputReadLine();
                p.BeginErrorReadLine();
                ranks.Add(p);
                Console.WriteLine($"rank {r} of {world}: process {p.Id} on {devices[r]}");
            }
            var running = ranks.Select((p, r) => (p, r)).ToList();
            (Process P, int Rank)? failed = null;
            while (running.Count > 0)
            {
                var ended = running.FirstOrDefault(x => x.p.WaitForExit(50));
                if (ended.p is null) continue;
                ended.p.WaitForExit();   // its output read to the end
                running.Remove(ended);
                if (ended.p.ExitCode != 0 && failed is null)
                {
                    failed = ended;
                    foreach (var (p, _) in running) Kill(p);
                }
            }
            if (stopping) return 130;
            if (failed is { } f)
            {
                Console.Error.WriteLine($"error: rank {f.Rank} of {world} ended with exit code {f.P.ExitCode}{(f.P.ExitCode >= 128 ? $" (signal {f.P.ExitCode - 128})" : "")}; " +
                    "the other ranks were ended; the run resumes from its last checkpoint with the same train.gpus");
                return f.P.ExitCode is 1 or 2 ? f.P.ExitCode : 1;
            }
            return 0;
        }
        finally
        {
            Console.CancelKeyPress -= stop;
            foreach (var p in ranks) { Kill(p); p.WaitForExit(); p.Dispose(); }
            try { Directory.Delete(rendezvous, true); } catch (IOException) { }   // only the meeting point: the run folder stays
        }
    }

    /// <summary>Rank r's device: cuda:r for "cuda" (or "auto" where CUDA is), the CPU for "cpu".</summary>
    static string[] Devices(string device, int world)
    {
        var resolved = TorchRuntime.ResolveDevice(device);
        if (resolved.type != TorchSharp.DeviceType.CUDA) return Enumerable.Repeat("cpu", world).ToArray();
        if (device.StartsWith("cuda:", StringComparison.Ordinal))
            throw new Train.ConfigException([new ConfigError("train.gpus", $"a data-parallel run takes GPUs 0..{world - 1} (set CUDA_VISIBLE_DEVICES to choose them), not --device {device}")]);
        int available = TorchSharp.torch.cuda.device_count();
        if (available < world)
            throw new Train.ConfigException([new ConfigError("train.gpus", $"{world} processes need {world} GPUs; this host has {available}")]);
        return Enumerable.Range(0, world).Select(r => $"cuda:{r}").ToArray();
    }

    static void Kill(Process p)
    {
        try { if (!p.HasExited) p.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }   // it ended meanwhile
    }
}
