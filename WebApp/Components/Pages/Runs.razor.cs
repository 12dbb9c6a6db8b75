using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Forms;
using Microsoft.AspNetCore.Components.Web;
using Microsoft.JSInterop;
using MudBlazor;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Components.Pages;

public partial class Runs
{
    List<RunRow> runs = [];
    HashSet<RunRow> selected = [];
    string? search;
    RunStatus? statusFilter;
    RunEvents.Subscription? subscription;
    readonly CancellationTokenSource stop = new();

    FfnKind? kindFilter;
    string? tagFilter, groupBy;
    TableGroupDefinition<RunRow>? grouping;
    HashSet<string> shown = RunColumns.All.Where(c => c.Default).Select(c => c.Key).ToHashSet();
    readonly Dictionary<int, RunConfig?> configs = [];
    const string ColumnsKey = "motlab.runs.columns", GroupKey = "motlab.runs.group";

    IEnumerable<RunRow> Shown => runs.Where(r => (kindFilter is null || r.Kind == kindFilter) && (tagFilter is null || TagsOf(r).Contains(tagFilter)));
    List<RunColumns.Column> Columns => RunColumns.All.Where(c => shown.Contains(c.Key)).ToList();
    static string[] TagsOf(RunRow r) => r.Tags.Split(',', StringSplitOptions.RemoveEmptyEntries);

    RunFacts Facts(RunRow r) => new(r, Config(r), reachBaseline is null ? null : reach.TryGetValue(r.Id, out var f) ? f : double.PositiveInfinity);

    int? reachBaseline;
    Dictionary<int, double> reach = [];

    /// <summary>The reach column against run <paramref name="baselineId"/>: for every listed run, the share of the baseline's
    /// steps at which its eval loss first got to the baseline's final eval loss (as on the Compare page); the column is
    /// shown when a baseline is chosen.</summary>
    async Task ReachAgainstAsync(int? baselineId)
    {
        reachBaseline = baselineId;
        reach = [];
        if (baselineId is not { } b) return;
        var others = runs.Where(r => r.Id != b).Take(500).Select(r => r.Id).ToList();
        var evals = await Query.EvalPointsAsync([b, .. others]);
        foreach (var id in others)
            if (ReachMetric.Compute(evals[b], evals[id])?.StepFraction is { } f) reach[id] = f;
        if (evals[b].Count > 0) reach[b] = 1;
        shown.Add("reach");
    }

    RunConfig? Config(RunRow r)
    {
        if (!configs.TryGetValue(r.Id, out var c))
        {
            try { c = System.Text.Json.JsonSerializer.Deserialize<RunConfig>(r.ConfigJson, MoTLab.Shared.Json.Options); }
            catch (System.Text.Json.JsonException) { c = null; }
            configs[r.Id] = c;
        }
        return c;
    }

    /// <summary>The columns and grouping the browser kept (local storage).</summary>
    protected override async Task OnAfterRenderAsync(bool first)
    {
        if (!first) return;
        try
        {
            if (await JS.InvokeAsync<string?>("localStorage.getItem", ColumnsKey) is { Length: > 0 } kept)
                shown = kept.Split(',').Where(k => RunColumns.Find(k) is not null).ToHashSet();
            var g = await JS.InvokeAsync<string?>("localStorage.getItem", GroupKey);
            if (RunColumns.Find(g) is { Groupable: true }) await GroupByAsync(g);
        }
        catch (JSException) { }
        StateHasChanged();
    }

    async Task ToggleColumnAsync(string key)
    {
        if (!shown.Remove(key)) shown.Add(key);
        try { await JS.InvokeVoidAsync("localStorage.setItem", ColumnsKey, string.Join(',', shown)); } catch (JSException) { }
    }

    async Task GroupByAsync(string? key)
    {
        groupBy = key;
        var column = RunColumns.Find(key);
        grouping = column is null ? null : new TableGroupDefinition<RunRow>
        {
            GroupName = column.Title, Indentation = false, Expandable = true,
            Selector = r => column.Text(Facts(r)),
        };
        try { await JS.InvokeVoidAsync("localStorage.setItem", GroupKey, key ?? ""); } catch (JSException) { }
    }

    protected override async Task OnInitializedAsync()
    {
        await ReloadAsync();
        subscription = Events.Subscribe(null);
        _ = ListenAsync();
    }

    async Task ListenAsync()
    {
        try
        {
            while (await subscription!.Reader.WaitToReadAsync(stop.Token))
            {
                while (subscription.Reader.TryRead(out _)) { }
                await InvokeAsync(ReloadAsync);
                await Task.Delay(1000, stop.Token);          // at most one refresh a second
            }
        }
        catch (OperationCanceledException) { }
    }

    async Task ReloadAsync()
    {
        var ids = selected.Select(r => r.Id).ToHashSet();
        runs = await RunService.ListAsync(search, statusFilter);
        selected = runs.Where(r => ids.Contains(r.Id)).ToHashSet();
        StateHasChanged();
    }

    static double Progress(RunRow r) => r.TotalSteps == 0 ? 0 : 100.0 * r.LastStep / r.TotalSteps;
    static string Fmt(double? v) => v is { } x ? x.ToString("F3") : "–";

    static string Eta(RunRow r)
    {
        if (r.Status != RunStatus.Running || r.ElapsedS is not { } e || r.LastStep == 0) return "";
        var left = TimeSpan.FromSeconds(e / r.LastStep * (r.TotalSteps - r.LastStep));
        return $"· ETA {left:hh\\:mm\\:ss}";
    }

    void Compare() => Nav.NavigateTo($"/compare?ids={string.Join(',', selected.Select(r => r.Id).Order())}");

    async Task CancelAsync(RunRow r)
    {
        await RunService.CancelAsync(r.Id);
        Snackbar.Add($"Cancelling run {r.Id}", Severity.Info);
    }

    async Task DeleteAsync(RunRow r)
    {
        var ok = await Dialogs.ShowMessageBoxAsync("Delete run", $"Delete run {r.Id} \"{r.Name}\" with its metrics, checkpoints and logs? This cannot be undone.",
            yesText: "Delete", cancelText: "Keep");
        if (ok != true) return;
        await RunService.DeleteAsync(r.Id, Workers.KillAsync);
        Snackbar.Add($"Deleted run {r.Id}", Severity.Success);
        await ReloadAsync();
    }

    public void Dispose() { stop.Cancel(); subscription?.Dispose(); }
}
