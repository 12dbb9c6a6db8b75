using MoTLab.Shared.Runs;
using System.CommandLine;
using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Shared.Telemetry;
using MoTLab.Training.Runtime;
using MoTLab.Training.Train;

namespace MoTLab.Training.Cli;

/// <summary>`reproduce`: trains a preset group (e.g. reproduce-cpu: dense, MoT, MoT /8, token-choice, expert-choice)
/// one run after another into OUT/&lt;preset&gt;, then says when each reached the baseline's (the first preset's) final
/// eval loss, as a share of its steps, time and tokens — the MoT paper's headline comparison — and writes it to
/// OUT/summary.json. Runs already finished are kept; an interrupted one continues from its checkpoint. With --only, one
/// process trains part of the set (e.g. one per GPU); a last call without --only finds them finished and summarises.
/// With --sweep-lr every model's learning rate is swept first (<see cref="LearningRateSweeps"/>: 5 rates × 20 % of the
/// steps, into OUT/lr-sweep/&lt;preset&gt;/) and the comparison trains each at its best (OUT/lr-sweep.json).</summary>
public static class ReproduceCommand
{
    public static Command Create()
    {
        var group = new Option<string>("--group") { Description = "Preset group: " + string.Join(", ", Presets.Groups.Select(g => g.Name)), Required = true };
        var steps = new Option<int?>("--steps") { Description = "Override train.steps of every run" };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto", DefaultValueFactory = _ => "auto" };
        var output = new Option<string?>("--out") { Description = "Folder for the runs (default runs/<group>)" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for libtorch (default: all cores)" };
        var only = new Option<string[]>("--only") { Description = "Train only these presets of the group (e.g. one process per GPU); no summary", AllowMultipleArgumentsPerToken = true };
        var sweepLr = new Option<int?>("--sweep-lr") { Description = $"Sweep each model's learning rate first over N rates (usually {LearningRateSweeps.Rates}), each for {LearningRateSweeps.StepShare:P0} of the steps, and compare at each one's best", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("reproduce", "Train a matched set of runs and compare them with the baseline") { group, steps, device, output, threads, only, sweepLr };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var g = Presets.FindGroup(parse.GetValue(group)!) ?? throw new UsageException(
                $"--group: unknown group '{parse.GetValue(group)}' (one of {string.Join(", ", Presets.Groups.Select(x => x.Name))})");
            TorchRuntime.SetThreads(parse.GetValue(threads));
            var root = parse.GetValue(output) ?? Path.Combine("runs", g.Name);
            var subset = parse.GetValue(only) ?? [];
            if (subset.FirstOrDefault(n => !g.Presets.Contains(n, StringComparer.OrdinalIgnoreCase)) is { } stranger)
                throw new UsageException($"--only: '{stranger}' is not in {g.Name} ({string.Join(", ", g.Presets)})");
            var curves = new List<(string Preset, IReadOnlyList<ReachMetric.Point> Eval)>();
            var names = (subset.Length > 0 ? g.Presets.Where(p => subset.Contains(p, StringComparer.OrdinalIgnoreCase)) : g.Presets).ToList();
            var rates = parse.GetResult(sweepLr) is null ? null : SweepRates(names, parse.GetValue(steps), root, parse.GetValue(device)!, parse.GetValue(sweepLr) ?? LearningRateSweeps.Rates);
            foreach (var name in names)
            {
                var cfg = Presets.Find(name)!.Config;
                if (parse.GetValue(steps) is { } s) cfg = cfg with { Train = cfg.Train with { Steps = s } };
                if (rates?[name] is { } best) cfg = cfg with { Train = cfg.Train with { LearningRate = best } };
                var dir = Path.Combine(root, name);
                TrainUnlessDone(cfg, dir, parse.GetValue(device)!, $"== {name} ({cfg.Model.Ffn.Kind.Info().Label}) → {Path.GetFullPath(dir)}");
                if (subset.Length == 0) curves.Add((name, EvalCurve(dir)));
            }
            if (subset.Length > 0) return;                                   // part of the set: the last call summarises
            var summary = Summarise(curves);
            foreach (var line in summary) Console.WriteLine(line.Text);
            File.WriteAllText(Path.Combine(root, "summary.json"), JsonSerializer.Serialize(summary, Json.Indented));
        }));
        return command;
    }

    /// <summary>Trains <paramref name="cfg"/> into <paramref name="dir"/> from its newest checkpoint there, unless it has
    /// trained to its last step already (its checkpoint or its metrics say so: metrics alone also count as done).</summary>
    static void TrainUnlessDone(RunConfig cfg, string dir, string device, string header)
    {
        Directory.CreateDirectory(dir);
        string? resume = RunFolder.Checkpoints(dir).Count > 0 ? dir : null;
        long resumed = resume is null ? -1 : RunFolder.ReadState(RunFolder.Checkpoint(dir)).Step;
        if (resumed >= cfg.Train.Steps || LastStep(dir) >= cfg.Train.Steps) return;
        Console.WriteLine(header);
        using var files = new JsonlSink(dir, resumed);
        using var trainer = new Trainer(cfg, dir, device, [files, new ConsoleSink(cfg.Train.Steps)], resume);
        trainer.Run();
    }

    /// <summary>Each preset's learning-rate sweep, trained run by run into ROOT/lr-sweep/PRESET/run-N (a finished run is
    /// kept); its best rate per preset, also written to ROOT/lr-sweep.json.</summary>
    static Dictionary<string, double?> SweepRates(IReadOnlyList<string> presets, int? steps, string root, string device, int count)
    {
        if (count is < 2 or > 20) throw new UsageException("--sweep-lr: a learning-rate sweep takes 2 to 20 rates");
        var best = new Dictionary<string, double?>();
        var report = new Dictionary<string, object>();
        foreach (var name in presets)
        {
            var spec = LearningRateSweeps.For(name, steps, device, rates: count);
            var (points, errors) = Sweeps.Expand(spec, Presets.Find(name)!.Config, 100);
            if (errors.Count > 0) throw new ConfigException(errors);
            var results = new List<(double LearningRate, double? FinalLoss)>();
            for (int i = 0; i < points.Count; i++)
            {
                var cfg = points[i].Config;
                var dir = Path.Combine(root, "lr-sweep", name, $"run-{i}");
                try { TrainUnlessDone(cfg, dir, device, $"== {name}: learning rate {cfg.Train.LearningRate:G4} for {cfg.Train.Steps} steps → {Path.GetFullPath(dir)}"); }
                catch (TrainingDivergedException e)                           // too high a rate: this run loses, the sweep goes on
                {
                    Console.WriteLine($"{name}: learning rate {cfg.Train.LearningRate:G4} diverged ({e.Message})");
                    results.Add((cfg.Train.LearningRate, null));
                    continue;
                }
                results.Add((cfg.Train.LearningRate, EvalCurve(dir) is { Count: > 0 } eval ? eval[^1].Loss : null));
            }
            best[name] = LearningRateSweeps.Best(results);
            if (best[name] is null) Console.WriteLine($"{name}: no learning rate of its sweep trained to an eval loss; it trains at its preset's own");
            report[name] = new { rates = results.Select(r => new { learning_rate = r.LearningRate, final_eval_loss = r.FinalLoss }), best = best[name] };
            Console.WriteLine($"{name}: best learning rate {best[name]:G4} of {string.Join(", ", results.Select(r => $"{r.LearningRate:G4} → {r.FinalLoss:F4}"))}");
        }
        File.WriteAllText(Path.Combine(root, "lr-sweep.json"), JsonSerializer.Serialize(report, Json.Indented));
        return best;
    }

    static long LastStep(string dir) => RunFolder.ReadMetrics(dir).LastOrDefault()?.Step ?? -1;

    /// <summary>(step, elapsed, tokens, eval loss) of every evaluated step in a run folder's metrics.jsonl.</summary>
    static IReadOnlyList<ReachMetric.Point> EvalCurve(string dir) =>
        RunFolder.ReadMetrics(dir).Where(m => m.EvalLoss is not null).Select(m => new ReachMetric.Point(m.Step, m.ElapsedS, m.Tokens, m.EvalLoss!.Value)).ToList();

    public sealed record Line(string Preset, double? FinalEvalLoss, double? StepFraction, double? TimeFraction, double? TokenFraction,
        double? BestEvalLoss, long? BestStep, double? BestStepFraction, double? BestTimeFraction, string Text);

    /// <summary>Per run: its final and best eval loss, and when it first reached the baseline's final eval loss and the
    /// baseline's best one (as shares of the baseline's steps and time to get there; null = never).</summary>
    static List<Line> Summarise(List<(string Preset, IReadOnlyList<ReachMetric.Point> Eval)> curves)
    {
        var (baseName, baseline) = curves[0];
        return curves.Select(c =>
        {
            var final = c.Eval.Count > 0 ? c.Eval[^1].Loss : (double?)null;
            var best = c.Eval.Count > 0 ? c.Eval.MinBy(p => p.Loss) : null;
            var bestText = best is null ? "" : $"; best {best.Loss:F4} at step {best.Step}";
            if (c.Preset == baseName)
                return new Line(c.Preset, final, 1, 1, 1, best?.Loss, best?.Step, 1, 1, $"{c.Preset}: final eval loss {final:F4}{bestText} (the baseline)");
            var r = ReachMetric.Compute(baseline, c.Eval);
            var b = ReachMetric.Compute(baseline, c.Eval, toBest: true);
            return new Line(c.Preset, final, r?.StepFraction, r?.TimeFraction, r?.TokenFraction, best?.Loss, best?.Step, b?.StepFraction, b?.TimeFraction,
                $"{c.Preset}: final eval loss {final:F4}{bestText}; " + Reach(r, "final") + "; " + Reach(b, "best"));

            string Reach(ReachMetric.Result? x, string which) => x?.Reached is not { } hit ? $"did not reach {baseName}'s {which} eval loss"
                : $"reached {baseName}'s {which} eval loss {x.Target:F4} at step {hit.Step}: {x.StepFraction:P0} of the steps, {x.TimeFraction:P0} of the time";
        }).ToList();
    }
}
