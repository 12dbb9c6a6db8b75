using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.Training.Train;

namespace MoTLab.Training.Cli;

/// <summary>`sweep`: a sweep spec (a preset or config and its axes, as the dashboard's POST /api/sweeps takes it) trained
/// headless, one run after another, each into its own folder; then summary.csv and a table of every run's axis values
/// and final / best eval loss, best first. Every run is checked before the first one starts.</summary>
public static class SweepCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "Sweep spec JSON: name, preset or config, method (grid|random), runs, seed, axes [{path, values | min, max, count, log}]", Required = true };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto", DefaultValueFactory = _ => "auto" };
        var output = new Option<string?>("--out") { Description = "Sweep folder (default sweeps/<name>-<time>)" };
        var maxRuns = new Option<int>("--max-runs") { Description = "Refuse a sweep of more runs", DefaultValueFactory = _ => 1000 };
        var command = new Command("sweep", "Train every run of a sweep, one after another, and rank them") { config, device, output, maxRuns };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var path = parse.GetValue(config)!;
            if (!File.Exists(path)) throw new UsageException($"sweep file '{path}' does not exist");
            SweepSpec spec;
            try { spec = JsonSerializer.Deserialize<SweepSpec>(File.ReadAllText(path), Json.Options) ?? throw new UsageException($"sweep file '{path}' is empty"); }
            catch (JsonException e) { throw new UsageException($"sweep file '{path}' is not a sweep spec: {e.Message}"); }
            var baseConfig = spec.Config ?? (spec.Preset is { } p ? ConfigLoader.Load(p, null) : throw new UsageException("the sweep names no preset and no config"));
            var (points, errors) = Sweeps.Expand(spec, baseConfig, parse.GetValue(maxRuns));
            var runErrors = points.SelectMany((pt, i) => ConfigValidator.Validate(pt.Config.WithTokenizerVocab()).Select(e => new ConfigError($"runs[{i}].{e.Field}", $"{pt.Label}: {e.Message}")));
            var all = errors.Concat(runErrors).ToList();
            if (all.Count > 0) throw new ConfigException(all);
            var dir = parse.GetValue(output) ?? Path.Combine("sweeps", $"{spec.Name}-{DateTime.Now:yyyyMMdd-HHmmss}");
            Run(spec, points, dir, parse.GetValue(device)!);
        }));
        return command;
    }

    static void Run(SweepSpec spec, IReadOnlyList<SweepPoint> points, string dir, string device)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "sweep.json"), JsonSerializer.Serialize(spec, Json.Indented));
        var results = new List<(int Index, SweepPoint Point, string RunDir, double? Final, double? Best)>();
        for (int i = 0; i < points.Count; i++)
        {
            var runDir = Path.Combine(dir, $"run-{i:D3}");
            Console.WriteLine($"sweep run {i + 1}/{points.Count}: {points[i].Label} → {runDir}");
            TrainCommand.Train(points[i].Config, runDir, device);
            var evals = RunFolder.ReadMetrics(runDir).Select(m => m.EvalLoss).OfType<double>().Where(double.IsFinite).ToList();
            results.Add((i, points[i], runDir, evals.Count > 0 ? evals[^1] : null, evals.Count > 0 ? evals.Min() : null));
            if (RunFolder.Checkpoints(runDir).LastOrDefault() is { } last && RunFolder.ReadState(last).Step < points[i].Config.Train.Steps)
            {
                Console.WriteLine($"stopped in run {i + 1}; the {points.Count - i - 1} runs after it were not started");
                break;
            }
        }
        var axes = spec.Axes.Select(a => a.Path).ToList();
        var csv = new StringBuilder($"run,folder,{string.Join(',', axes)},final_eval_loss,best_eval_loss\n");
        string N(double? v) => v?.ToString("R", CultureInfo.InvariantCulture) ?? "";
        foreach (var r in results)
            csv.Append($"{r.Index},{r.RunDir},{string.Join(',', axes.Select(a => Sweeps.Text(r.Point.Values[a])))},{N(r.Final)},{N(r.Best)}\n");
        File.WriteAllText(Path.Combine(dir, "summary.csv"), csv.ToString());
        Console.WriteLine($"\n{"final eval",10} {"best eval",10}  run");
        foreach (var r in results.OrderBy(r => r.Final ?? double.MaxValue))
            Console.WriteLine($"{r.Final?.ToString("F4") ?? "–",10} {r.Best?.ToString("F4") ?? "–",10}  {r.Point.Label}");
        Console.WriteLine($"summary: {Path.Combine(dir, "summary.csv")}");
    }
}
