using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using Microsoft.JSInterop;
using MudBlazor;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Components.Charts;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Components.Pages;

public partial class Compare
{
    [SupplyParameterFromQuery(Name = "ids")] public string? Ids { get; set; }
    List<RunRow> runs = [];
    IReadOnlyList<ConfigDiff.Row> diff = [];
    IReadOnlyList<MetricInfo> present = [MetricCatalog.TrainLoss];
    List<List<RunRow>> seedGroups = [];                    // runs whose configs differ only by seed, in page order
    readonly Dictionary<int, Drawn> drawn = [];            // the chosen metric of each run, as drawn
    readonly Dictionary<int, Drawn> trainLoss = [];        // the smoothed train loss of each run, for the reach metric
    ChartControls? controls;
    LineChart? chart;
    readonly ChartSettings settings = new();
    bool onlyDiff = true;
    int baselineId;

    /// <summary>One run's points of one metric: the rows that have it, their values and (for step metrics) smoothed values.</summary>
    sealed record Drawn(List<StepMetrics> Rows, List<double> Values, List<double>? Smoothed);

    MetricInfo Metric => MetricCatalog.Find(settings.Metric) ?? MetricCatalog.TrainLoss;

    string CsvHref => $"/api/compare?ids={string.Join(',', runs.Select(r => r.Id))}&metric={Uri.EscapeDataString(Metric.Key)}&smooth={settings.Smoothing}&format=csv";

    protected override async Task OnInitializedAsync()
    {
        foreach (var id in (Ids ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.TryParse(s, out var i) ? i : -1).Distinct())
            if (await RunService.GetAsync(id) is { } r) runs.Add(r);
        diff = ConfigDiff.Build(runs.Select(r => r.ConfigJson).ToList());
        seedGroups = runs.GroupBy(r => ConfigDiff.SeedGroupKey(r.ConfigJson)).Select(g => g.ToList()).ToList();
        baselineId = runs.FirstOrDefault(r => r.Kind == FfnKind.Dense)?.Id ?? runs.FirstOrDefault()?.Id ?? 0;
    }

    async Task<Drawn> ReadAsync(RunRow r, MetricInfo metric)
    {
        var read = await Query.ReadChartAsync(r.Id, metric.EveryStep ? new MetricsQuery.SmoothingOf(metric, settings.Smoothing, r.TotalSteps) : null);
        var rows = new List<StepMetrics>(); var values = new List<double>(); var smoothed = read.Smoothed is null ? null : new List<double>();
        for (int i = 0; i < read.Rows.Count; i++)
        {
            var m = read.Rows[i];
            if (metric.Of(m) is not { } v) continue;
            rows.Add(m); values.Add(v); smoothed?.Add(read.Smoothed![i]);
        }
        return new Drawn(rows, values, smoothed);
    }

    /// <summary>Reads what the settings ask for and draws it; the controls call it once they applied the kept settings.</summary>
    async Task DrawAsync()
    {
        if (chart is null) return;
        var metric = Metric;
        var reads = await Task.WhenAll(runs.Select(async r =>                           // in parallel: one connection each
            (r.Id, Metric: await ReadAsync(r, metric), Train: metric == MetricCatalog.TrainLoss ? null : await ReadAsync(r, MetricCatalog.TrainLoss))));
        foreach (var (id, m, train) in reads) { drawn[id] = m; trainLoss[id] = train ?? m; }
        // what the runs logged, and their eval points, from the rows just read (every eval row is among them)
        foreach (var r in runs)
            evals[r.Id] = trainLoss[r.Id].Rows.Where(m => m.EvalLoss is not null).Select(m => new ReachMetric.Point(m.Step, m.ElapsedS, m.Tokens, m.EvalLoss!.Value)).ToList();
        present = MetricCatalog.Present(runs.Select(r => (IReadOnlyList<StepMetrics>)trainLoss[r.Id].Rows));
        if (!present.Any(p => p.Key == metric.Key)) present = [.. present, metric];
        var series = new List<LineChart.Series>();
        int colour = 0;
        foreach (var group in seedGroups)
        {
            if (settings.FoldSeeds && group.Count > 1) { series.AddRange(Band(group, RunColours.Of(colour++))); continue; }
            foreach (var r in group) series.AddRange(RunSeries(r, RunColours.Of(colour++)));
        }
        await chart.SetAsync(series, settings.XTitle, settings.LogY);
        StateHasChanged();
    }

    object X(RunRow r, StepMetrics m) => settings.X(m, r.FlopsPerToken);

    /// <summary>One run: its raw values, faint, behind the smoothed line (or the values alone when not smoothed).</summary>
    IEnumerable<LineChart.Series> RunSeries(RunRow r, string colour)
    {
        var d = drawn[r.Id];
        return LineChart.RawAndSmoothed($"#{r.Id} {r.Name}", d.Rows.Select(m => X(r, m)).ToList(), d.Values, d.Smoothed, colour, $"run-{r.Id}", markers: !Metric.EveryStep);
    }

    /// <summary>Seeds of one experiment: the mean of their (smoothed) values at the points of the run that logged most,
    /// with the min–max range shaded; each run's value at a point is read off its own series by linear interpolation in
    /// step. Where a seed has not got to yet (it is still running), the band is over the seeds that have.</summary>
    IEnumerable<LineChart.Series> Band(List<RunRow> group, string colour)
    {
        var longest = group.MaxBy(r => drawn[r.Id].Rows.Count)!;
        var curves = group.Select(r => drawn[r.Id]).Select(d => (Steps: d.Rows.Select(m => (double)m.Step).ToArray(), Values: (d.Smoothed ?? d.Values).ToArray())).ToList();
        var xs = new List<object>(); var mean = new List<object>(); var lo = new List<object>(); var hi = new List<object>();
        foreach (var m in drawn[longest.Id].Rows)
        {
            var at = curves.Select(c => Interpolate(c.Steps, c.Values, m.Step)).Where(double.IsFinite).ToList();
            if (at.Count == 0) continue;
            xs.Add(X(longest, m)); mean.Add(at.Average()); lo.Add(at.Min()); hi.Add(at.Max());
        }
        string name = $"{group[0].Name} ×{group.Count} seeds (#{string.Join(", #", group.Select(r => r.Id))})", key = $"seeds-{group[0].Id}";
        yield return new($"{name} min", xs, lo, colour, Width: 0, Group: key, ShowLegend: false);
        yield return new($"{name} max", xs, hi, colour, Width: 0, Group: key, ShowLegend: false, FillToPrevious: true);
        yield return new(name, xs, mean, colour, Group: key, Markers: !Metric.EveryStep);
    }

    static double Interpolate(double[] steps, double[] values, double step)
    {
        if (steps.Length == 0 || step < steps[0] || step > steps[^1]) return double.NaN;
        int i = Array.BinarySearch(steps, step);
        if (i >= 0) return values[i];
        i = ~i;                                                      // steps[i - 1] < step < steps[i]
        double t = (step - steps[i - 1]) / (steps[i] - steps[i - 1]);
        return values[i - 1] + t * (values[i] - values[i - 1]);
    }

    IReadOnlyList<ReachMetric.Point> Points(RunRow r, bool useEval)
    {
        if (useEval) return evals.GetValueOrDefault(r.Id) ?? [];
        if (trainLoss.GetValueOrDefault(r.Id) is not { } d) return [];
        return d.Rows.Select((m, i) => new ReachMetric.Point(m.Step, m.ElapsedS, m.Tokens, (d.Smoothed ?? d.Values)[i])).ToList();
    }

    readonly Dictionary<int, List<ReachMetric.Point>> evals = [];   // every eval point of each run

    IEnumerable<string> ReachLines()
    {
        var baseline = runs.FirstOrDefault(r => r.Id == baselineId);
        if (baseline is null) yield break;
        bool useEval = runs.All(r => evals.GetValueOrDefault(r.Id) is { Count: > 0 });
        var basePoints = Points(baseline, useEval);
        if (basePoints.Count == 0) { yield return "The baseline has no metrics yet."; yield break; }
        yield return $"Target: #{baseline.Id} {baseline.Name}'s final {(useEval ? "eval" : "smoothed train")} loss {basePoints[^1].Loss:F3} at step {basePoints[^1].Step}.";
        foreach (var line in Reached(toBest: false)) yield return line;
        // an overfitting baseline ends above its best, and "reached its final loss" flatters everyone: say so, and measure against the best too
        var best = basePoints.MinBy(p => p.Loss)!;
        if (best.Step == basePoints[^1].Step) yield break;
        yield return $"The baseline ended above its best loss {best.Loss:F3} (step {best.Step}); against that, as shares of the steps it took:";
        foreach (var line in Reached(toBest: true)) yield return line;

        IEnumerable<string> Reached(bool toBest) => runs.Where(r => r.Id != baselineId)
            .Select(r => ReachMetric.Compute(basePoints, Points(r, useEval), toBest)?.Describe($"#{r.Id} {r.Name} ({r.Kind.Info().Label})", finished: r.Status is not (RunStatus.Queued or RunStatus.Running)))
            .OfType<string>();
    }
}
