using System.Text.Json;
using Microsoft.AspNetCore.Components;
using MudBlazor;
using Plotly.Blazor;
using Plotly.Blazor.Traces;
using Plotly.Blazor.Traces.ParCoordsLib;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Components.Charts;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Components.Pages;

/// <summary>One sweep read as one result: a parallel-coordinates plot of the axes against each finished run's final eval
/// loss, the best run per value of a chosen axis, the eval-loss curves overlaid, and the runs' table (seeds folded into
/// mean and range when train.seed is an axis). Read again every 2 s while a run of it is queued or running.</summary>
public partial class Sweep
{
    [Parameter] public int Id { get; set; }
    [CascadingParameter(Name = ChartTheme.DarkMode)] public bool Dark { get; set; }

    SweepService.SweepView? view;
    bool missing, foldSeeds = true;
    string bestPer = "";
    PlotlyChart parcoords = default!;
    LineChart? curves;
    readonly string chartKey = ChartDisposal.NewKey();
    readonly Config plotConfig = new() { Responsive = true, DisplayLogo = false };
    readonly Plotly.Blazor.Layout plotLayout = new() { Height = 380, Margin = new Plotly.Blazor.LayoutLib.Margin { L = 70, R = 40, T = 50, B = 30 } };
    readonly IList<ITrace> plotData = [];
    bool? themed;
    readonly CancellationTokenSource stop = new();
    string drawnFor = "";

    const string SeedPath = "train.seed";
    bool SeedAxis => view?.Axes.Contains(SeedPath) == true && view.Axes.Count > 1;
    /// <summary>Still moving: a run queued or running, or a comparison that follows and has not started.</summary>
    bool Active => view?.Runs.Any(r => r.Status is RunStatus.Queued or RunStatus.Running) == true || view?.Then is { Launched: null, Problem: null };

    int loadedId;

    protected override void OnInitialized() => _ = RefreshAsync(stop.Token);

    /// <summary>Loads the sweep, and again when a link (a sibling sweep) keeps this page but changes Id.</summary>
    protected override async Task OnParametersSetAsync()
    {
        if (loadedId != Id)
        {
            loadedId = Id;
            await LoadAsync();
            bestPer = view?.Axes.FirstOrDefault(a => a != SeedPath) ?? view?.Axes.FirstOrDefault() ?? "";
            drawnFor = "";
        }
        if (ChartTheme.Follow(plotLayout, Dark, ref themed) && parcoords is not null && drawnFor != "") await parcoords.Relayout();
    }

    async Task LoadAsync()
    {
        view = await Sweeps.ViewAsync(Id);
        missing = view is null;
    }

    protected override async Task OnAfterRenderAsync(bool first)
    {
        if (view is null) return;
        // drawn again when a run's status, step or loss moved
        var state = string.Join(';', view.Runs.Select(r => $"{r.Id}:{r.Status}:{r.LastStep}:{r.LastEvalLoss}"));
        if (state == drawnFor) return;
        drawnFor = state;
        await DrawParcoordsAsync();
        await DrawCurvesAsync();
    }

    async Task RefreshAsync(CancellationToken cancel)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
        try
        {
            while (await timer.WaitForNextTickAsync(cancel))
            {
                if (!Active) continue;
                await InvokeAsync(async () => { await LoadAsync(); StateHasChanged(); });
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>The runs' final eval loss (the last train loss for a run that never evaluated).</summary>
    static double? Loss(SweepService.SweepRun r) => r.LastEvalLoss ?? r.LastLoss;

    static string Leaf(string path) => path.Split('.')[^1];
    static string Text(JsonElement? v) => v is { } e ? MoTLab.Shared.Config.Sweeps.Text(e) : "–";
    static double? Number(JsonElement? v) => v is { ValueKind: JsonValueKind.Number } e ? e.GetDouble() : null;

    /// <summary>Sorts numbers as numbers and everything else as text.</summary>
    static IComparable SortKey(JsonElement? v) => Number(v) is { } d ? d : (IComparable)Text(v);

    /// <summary>For each value of the chosen axis, the finished run with the lowest final eval loss.</summary>
    IEnumerable<(string Value, SweepService.SweepRun Best)> BestPer() => view is null || bestPer == "" ? [] :
        view.Runs.Where(r => r.Status == RunStatus.Completed && Loss(r) is not null)
            .GroupBy(r => Text(r.Values[bestPer]))
            .OrderBy(g => g.Select(r => SortKey(r.Values[bestPer])).First())
            .Select(g => (g.Key, g.MinBy(r => Loss(r))!));

    sealed record SeedGroup(IReadOnlyDictionary<string, JsonElement?> Values, List<SweepService.SweepRun> Runs)
    {
        List<double> Losses => Runs.Where(r => r.Status == RunStatus.Completed).Select(Loss).OfType<double>().ToList();
        public double? Mean => Losses is { Count: > 0 } l ? l.Average() : null;
        public double? Min => Losses is { Count: > 0 } l ? l.Min() : null;
        public double? Max => Losses is { Count: > 0 } l ? l.Max() : null;
    }

    /// <summary>Runs that differ only by seed, as one row: their mean final eval loss and its range.</summary>
    IEnumerable<SeedGroup> Folded() => view!.Runs
        .GroupBy(r => string.Join('|', view.Axes.Where(a => a != SeedPath).Select(a => Text(r.Values[a]))))
        .Select(g => new SeedGroup(g.First().Values, [.. g]));

    /// <summary>One dimension per axis that varies among the finished runs (numbers on a log scale when they span a factor
    /// of 20 or more; text as categories) and the final eval loss, which also colours the lines: one line per finished run.</summary>
    async Task DrawParcoordsAsync()
    {
        var done = view!.Runs.Where(r => r.Status == RunStatus.Completed && Loss(r) is not null).ToList();
        var dims = new List<Dimension>();
        foreach (var axis in view.Axes)
        {
            var values = done.Select(r => r.Values[axis]).ToList();
            if (values.Select(Text).Distinct().Count() == 1 && view.Axes.Count > 1) continue;   // one value (a fixed override): no axis to read
            if (values.All(v => Number(v) is not null))
            {
                var xs = values.Select(v => Number(v)!.Value).ToList();
                bool log = xs.Count > 0 && xs.All(x => x > 0) && xs.Max() / xs.Min() >= 20;
                dims.Add(new Dimension { Label = log ? $"log10 {axis}" : axis, Values = xs.Select(x => (object)(log ? Math.Log10(x) : x)).ToList() });
            }
            else
            {
                var categories = values.Select(Text).Distinct().Order().ToList();
                dims.Add(new Dimension
                {
                    Label = axis, Values = values.Select(v => (object)categories.IndexOf(Text(v))).ToList(),
                    TickVals = categories.Select((_, i) => (object)i).ToList(), TickText = categories.Select(c => (object)c).ToList(),
                });
            }
        }
        var losses = done.Select(r => (object)Loss(r)!.Value).ToList();
        dims.Add(new Dimension { Label = "final eval loss", Values = losses });
        plotData.Clear();
        plotData.Add(new ParCoords
        {
            Dimensions = dims,
            Line = new Line { ColorArray = losses, ColorScale = "Viridis", ReverseScale = true, ShowScale = true },
        });
        await parcoords.React();
    }

    /// <summary>Each run's eval loss against step, overlaid.</summary>
    async Task DrawCurvesAsync()
    {
        if (curves is null) return;
        var series = new List<LineChart.Series>();
        int colour = 0;
        foreach (var r in view!.Runs)
        {
            var rows = (await Query.ReadChartAsync(r.Id, null)).Rows.Where(m => m.EvalLoss is not null).ToList();
            series.Add(new($"#{r.Id} {string.Join(' ', view.Axes.Select(a => $"{Leaf(a)}={Text(r.Values[a])}"))}",
                rows.Select(m => (object)m.Step).ToList(), rows.Select(m => LineChart.Plot(m.EvalLoss!.Value)).ToList(), RunColours.Of(colour++), Markers: true));
        }
        await curves.SetAsync(series, "step", logY: false);
    }

    async Task CancelAsync()
    {
        await Sweeps.CancelAsync(Id);
        await LoadAsync();
    }

    async Task DeleteAsync()
    {
        var ok = await Dialogs.ShowMessageBoxAsync("Delete sweep", $"Delete sweep {Id} and its {view!.Runs.Count} runs with their metrics, checkpoints and logs? This cannot be undone.",
            yesText: "Delete", cancelText: "Keep");
        if (ok != true) return;
        await Sweeps.DeleteAsync(Id, Workers.KillAsync);
        Nav.NavigateTo("/");
    }

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        stop.Dispose();
        await ChartDisposal.ReleaseAsync(JS, chartKey);
    }
}
