using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Training.Model.Gpu;
using MoTLab.Training.Runtime;
using MoTLab.Training.Train;
using TorchSharp;
using static TorchSharp.torch;

namespace MoTLab.Training.Cli;

/// <summary>`bench`: times full training steps (forward, loss, backward, clip, AdamW) of a preset on random
/// tokens and prints one JSON line. Nothing is written to disk.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "Preset name", Required = true };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "auto" };
        var steps = new Option<int>("--steps") { Description = "Timed steps", DefaultValueFactory = _ => 20 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed steps first", DefaultValueFactory = _ => 3 };
        var batch = new Option<int?>("--batch") { Description = "Override train.batch_size" };
        var precision = new Option<string?>("--precision") { Description = "auto, fp32 or bf16" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for libtorch" };
        var omit = new Option<StepStages>("--omit") { Description = "Leave a stage out to measure its cost: backward, clip or optimizer", DefaultValueFactory = _ => StepStages.None };
        var command = new Command("bench", "Benchmark training steps of a preset; prints one JSON line") { preset, device, steps, warmup, batch, precision, threads, omit };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var cfg = ConfigLoader.Load(parse.GetValue(preset), null);
            int n = parse.GetValue(steps), w = parse.GetValue(warmup);
            cfg = cfg with { Train = cfg.Train with { Steps = w + n, CheckpointEvery = 0 } };
            if (parse.GetValue(batch) is { } b) cfg = cfg with { Train = cfg.Train with { BatchSize = b } };
            if (parse.GetValue(precision) is { } p) cfg = cfg with { Train = cfg.Train with { Precision = p } };
            TorchRuntime.SetThreads(parse.GetValue(threads));
            Console.WriteLine(JsonSerializer.Serialize(Measure(cfg, parse.GetValue(device)!, w, n, parse.GetValue(omit)), Json.Options));
        }));
        return command;
    }

    public static BenchResult Measure(RunConfig cfg, string device, int warmup, int steps, StepStages omit = StepStages.None)
    {
        var vocab = Vocabularies.SizeOf(cfg.Data.Tokenizer);
        var rng = new Random(0);
        var tokens = new ushort[Math.Max(1 << 20, cfg.Model.SeqLen * 4)];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = (ushort)rng.Next(vocab);
        var runDir = Directory.CreateTempSubdirectory("motlab-bench").FullName;
        try
        {
            using var trainer = new Trainer(cfg, runDir, device, [], tokens: tokens) { Omit = omit };
            for (int i = 0; i < warmup; i++) trainer.Step();
            Sync(trainer.Device);
            long launchesBefore = GpuKernels.Launches;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++) trainer.Step();
            Sync(trainer.Device);
            double seconds = sw.Elapsed.TotalSeconds;
            double tps = (double)steps * cfg.Train.BatchSize * cfg.Model.SeqLen / seconds;
            double peak = TorchRuntime.PeakFlops(trainer.Device, trainer.Compute);
            double flops = 3 * ModelSize.ForwardFlopsPerToken(trainer.Config.Model, cfg.Train.BatchSize);
            double? matmul = trainer.Device.type == DeviceType.CPU ? TorchRuntime.MeasureMatmulFlops(CPU, 512, 0.5) / 1e9 : null;
            double achieved = flops * tps / 1e9;
            return new BenchResult(cfg.Preset ?? cfg.Name, omit == StepStages.None ? null : omit.ToString().ToLowerInvariant(), trainer.Device.ToString(), trainer.Compute.ToString(), get_num_threads(),
                cfg.Train.BatchSize, cfg.Model.SeqLen, steps, tps, seconds * 1000 / steps, trainer.Model.EstimateMfu(cfg.Train.BatchSize, tps, peak),
                achieved, matmul, achieved / matmul, trainer.Model.ParameterCount(), flops, Process.GetCurrentProcess().PeakWorkingSet64, GpuMemoryMiB(trainer.Device),
                GpuKernels.Describe(trainer.Device), (double)(GpuKernels.Launches - launchesBefore) / steps);
        }
        finally { Directory.Delete(runDir, true); }
    }

    static void Sync(Device d) { if (d.type == DeviceType.CUDA) cuda.synchronize(d); }

    /// <summary>GPU memory this process holds on all GPUs (nvidia-smi; libtorch's caching allocator keeps its peak), or
    /// null. Summed: a run on cuda:N also holds a small context on GPU 0, which nvidia-smi lists first.</summary>
    static long? GpuMemoryMiB(Device d)
    {
        if (d.type != DeviceType.CUDA) return null;
        try
        {
            var psi = new ProcessStartInfo("nvidia-smi", ["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]) { RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            var lines = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            p.WaitForExit();
            var mine = lines.Select(l => l.Split(',')).Where(f => f[0].Trim() == Environment.ProcessId.ToString()).ToList();
            return mine.Count == 0 ? null : mine.Sum(f => long.Parse(f[1].Trim()));
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }
}

/// <summary>One bench line. On the CPU, MatmulGflops is a plain 512² matmul timed in the same process with the same threads,
/// and MatmulShare the achieved rate over it: the share of that ceiling these shapes reach (null on a GPU). Kernels says
/// which kernels were available, KernelLaunchesPerStep how many of MoTLab's own a timed step launched (0: every op
/// took its libtorch path).</summary>
public sealed record BenchResult(string Preset, string? Omitted, string Device, string Compute, int Threads, int Batch, int SeqLen, int Steps,
    double TokensPerS, double StepMs, double Mfu, double AchievedGflops, double? MatmulGflops, double? MatmulShare, long Params, double TrainFlopsPerToken,
    long PeakRssBytes, long? GpuMemoryMib, string Kernels, double KernelLaunchesPerStep);
