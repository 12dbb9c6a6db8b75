using MoTLab.Shared.Runs;
using System.CommandLine;
using MoTLab.Shared;

namespace MoTLab.Training.Cli;

/// <summary>`plot`: draws run folders' curves (eval loss by default) into one PNG, for reports that must show figures
/// without a browser: docs/reproduction.md's figures are made this way from the metrics.jsonl files kept beside it.</summary>
public static class PlotCommand
{
    public static Command Create()
    {
        var runs = new Argument<string[]>("runs") { Description = "Run folders (each with metrics.jsonl); the legend uses the folder names", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out") { Description = "PNG file to write", Required = true };
        var metric = new Option<string>("--metric") { Description = "eval_loss or train_loss", DefaultValueFactory = _ => "eval_loss" };
        var title = new Option<string?>("--title") { Description = "Figure title" };
        var xAxis = new Option<string>("--x") { Description = "step or tokens", DefaultValueFactory = _ => "step" };
        var until = new Option<long?>("--until") { Description = "Only steps up to this one (zoom into the start of runs)" };
        var command = new Command("plot", "Draw run folders' loss curves into a PNG") { runs, output, metric, title, xAxis, until };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var m = parse.GetValue(metric)!;
            if (m is not ("eval_loss" or "train_loss")) throw new UsageException($"--metric: '{m}' is neither eval_loss nor train_loss");
            var x = parse.GetValue(xAxis)!;
            if (x is not ("step" or "tokens")) throw new UsageException($"--x: '{x}' is neither step nor tokens");
            long last = parse.GetValue(until) ?? long.MaxValue;
            if (last < 1) throw new UsageException($"--until: {last} is not a step (must be at least 1)");
            var plot = new ScottPlot.Plot();
            foreach (var dir in parse.GetValue(runs)!)
            {
                var file = Path.Combine(dir, RunFolder.MetricsFile);
                if (!File.Exists(file)) throw new UsageException($"{dir}: no metrics.jsonl (not a run folder)");
                var points = RunFolder.ReadMetrics(dir).Where(s => s.Step <= last)
                    .Select(s => (X: x == "step" ? s.Step : (double)s.Tokens, Y: m == "eval_loss" ? s.EvalLoss : s.TrainLoss))
                    .Where(p => p.Y is { } y && double.IsFinite(y)).ToList();
                var line = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y!.Value).ToArray());
                line.LegendText = Path.GetFileName(Path.TrimEndingDirectorySeparator(dir));
                line.MarkerSize = m == "eval_loss" ? 5 : 0;
            }
            plot.Title(parse.GetValue(title) ?? m.Replace('_', ' '));
            plot.XLabel(x == "step" ? "step" : "tokens");
            plot.YLabel(m == "eval_loss" ? "eval loss (nats/token)" : "train loss (nats/token)");
            plot.ShowLegend(ScottPlot.Alignment.UpperRight);
            var png = parse.GetValue(output)!;
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(png))!);
            plot.SavePng(png, 900, 540);
            Console.WriteLine($"wrote {Path.GetFullPath(png)}");
        }));
        return command;
    }
}
