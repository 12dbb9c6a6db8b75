using MoTLab.Shared.Runs;
using System.CommandLine;
using MoTLab.Shared.Config;
using MoTLab.Training.Runtime;
using MoTLab.Training.Train;

namespace MoTLab.Training.Cli;

/// <summary>`train`: the headless trainer; writes config.json, metrics.jsonl, routing.jsonl and checkpoints.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var preset = new Option<string?>("--preset") { Description = "Preset name (see `presets`)" };
        var config = new Option<string?>("--config") { Description = "Run config JSON file (snake_case, as written to config.json)" };
        var steps = new Option<int?>("--steps") { Description = "Override train.steps" };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto", DefaultValueFactory = _ => "auto" };
        var output = new Option<string?>("--out") { Description = "Run folder (default runs/<name>-<time>)" };
        var corpus = new Option<string?>("--corpus") { Description = "Override data.corpus: synthetic, dotnet-docs, linux-docs, debian-docs, or a file/folder of text, JSON Lines or Parquet, or of nanoGPT train.bin/val.bin" };
        var seed = new Option<long?>("--seed") { Description = "Override train.seed" };
        var resume = new Option<string?>("--resume") { Description = "Continue a run folder from its newest checkpoint" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for libtorch (default: all cores, shared out among data-parallel processes)" };
        var gpus = new Option<int?>("--gpus") { Description = "Override train.gpus: processes training the run data parallel, one per GPU on CUDA" };
        var rank = new Option<int?>("--rank") { Description = "This process's rank in a data-parallel run (set by the launcher)", Hidden = true };
        var rendezvous = new Option<string?>("--rendezvous") { Description = "Where a data-parallel run's processes meet (set by the launcher)", Hidden = true };
        var command = new Command("train", "Train a model headless") { preset, config, steps, device, output, corpus, seed, resume, threads, gpus, rank, rendezvous };
        RunConfig? current = null;
        command.SetAction(parse => CliErrors.Run(() =>
        {
            string? resumeDir = parse.GetValue(resume);
            RunConfig cfg = resumeDir is not null && parse.GetValue(preset) is null && parse.GetValue(config) is null
                ? RunFolder.ReadConfig(RunFolder.Checkpoint(resumeDir))
                : ConfigLoader.Load(parse.GetValue(preset), parse.GetValue(config));
            if (parse.GetValue(steps) is { } s) cfg = cfg with { Train = cfg.Train with { Steps = s } };
            if (parse.GetValue(seed) is { } sd) cfg = cfg with { Train = cfg.Train with { Seed = sd } };
            if (parse.GetValue(corpus) is { } c) cfg = cfg with { Data = cfg.Data with { Corpus = c } };
            if (parse.GetValue(gpus) is { } g) cfg = cfg with { Train = cfg.Train with { Gpus = g } };
            current = cfg;
            var dir = resumeDir ?? parse.GetValue(output) ?? Path.Combine("runs", $"{cfg.Name}-{DateTime.Now:yyyyMMdd-HHmmss}");
            if (cfg.Train.Gpus > 1 && parse.GetValue(rank) is null)
                return DataParallelLaunch.Run(cfg, dir, parse.GetValue(device)!, resumeDir, parse.GetValue(threads));
            TorchRuntime.SetThreads(parse.GetValue(threads));
            if (parse.GetValue(rank) is { } r)
            {
                var on = TorchRuntime.ResolveDevice(parse.GetValue(device)!);
                using var group = ProcessGroup.Join(r, cfg.Train.Gpus, parse.GetValue(rendezvous)
                    ?? throw new UsageException("--rank needs --rendezvous (both are set by the data-parallel launcher)"), on);
                Train(cfg, dir, parse.GetValue(device)!, resumeDir, group);
            }
            else Train(cfg, dir, parse.GetValue(device)!, resumeDir);
            return 0;
        }, () => current));
        return command;
    }

    /// <summary>A rank's standard input is its launcher: "stop" asks it to stop with the others at the next logged step;
    /// the end of the stream means the launcher is gone (killed, or its terminal closed), and the rank ends rather than
    /// train on alone or hold its GPU waiting for peers that will not come.</summary>
    static void WatchLauncher(CancellationTokenSource cancel, int rank) => new Thread(() =>
    {
        while (Console.In.ReadLine() is { } line)
            if (line.Trim() == "stop")
                try { cancel.Cancel(); } catch (ObjectDisposedException) { return; }   // training has ended already
        Console.Error.WriteLine($"rank {rank}: the launcher ended; stopping");
        Environment.Exit(1);
    }) { IsBackground = true, Name = "motlab-launcher-watch" }.Start();

    /// <summary>Trains <paramref name="cfg"/> into <paramref name="dir"/> with progress on the console: what `train`,
    /// `transition` and `finetune` share. Ctrl-C stops after the current step, which is checkpointed.</summary>
    /// <param name="group">this process's data-parallel group: rank 0 writes the run folder and the console, the
    /// other ranks neither, and Ctrl-C is the launcher's to handle</param>
    internal static void Train(RunConfig cfg, string dir, string device, string? resumeDir = null, ProcessGroup? group = null)
    {
        var console = new ConsoleSink(cfg.Train.Steps);
        long resumedStep = resumeDir is null ? -1 : RunFolder.ReadState(RunFolder.Checkpoint(resumeDir)).Step;
        Directory.CreateDirectory(dir);
        bool root = group is null || group.IsRoot;
        using var files = root ? new JsonlSink(dir, resumedStep) : null;
        using var trainer = new Trainer(cfg, dir, device, root ? [files!, console] : [], resumeDir, group: group);
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler stop = group is null
            ? (_, e) => { e.Cancel = true; cancel.Cancel(); console.OnLog("stopping after this step (checkpoint follows)"); }
            : (_, e) => e.Cancel = true;   // the launcher asks every rank through its standard input
        if (group is not null) WatchLauncher(cancel, group.Rank);
        Console.CancelKeyPress += stop;
        try
        {
            var state = trainer.Run(cancel.Token);
            if (root) console.OnLog($"done: step {state.Step}, train loss {state.LastTrainLoss:F4}, eval loss {state.LastEvalLoss:F4}, run folder {Path.GetFullPath(dir)}");
        }
        finally { Console.CancelKeyPress -= stop; }
    }
}

/// <summary>Turns expected failures (bad config, bad corpus, bad usage, out of memory, disk full) into one clear line and exit code 2.</summary>
public static class CliErrors
{
    /// <param name="config">The run's config once known, so a failure can name its shapes.</param>
    public static int Run(Action action, Func<RunConfig?>? config = null) => Run(() => { action(); return 0; }, config);

    /// <summary>As <see cref="Run(Action, Func{RunConfig?}?)"/>, for an action that returns its own exit code.</summary>
    public static int Run(Func<int> action, Func<RunConfig?>? config = null)
    {
        try { return action(); }
        catch (Exception e) when (FailureReason.IsExpected(e))
        {
            Console.Error.WriteLine($"error: {FailureReason.Describe(e, config?.Invoke())}");
            return 2;
        }
    }
}
