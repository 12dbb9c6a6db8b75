using System.Text.Json;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using Microsoft.JSInterop;
using MudBlazor;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Components.Pages;

public partial class RunPage
{
    [Parameter] public int Id { get; set; }
    RunRow? run;
    RunConfig? config;
    bool missing;
    RunCurves? curves;
    readonly List<StepMetrics> waiting = [];
    RoutingPanel? routing;
    LogTail? log;
    RunEvents.Subscription? subscription;
    readonly CancellationTokenSource stop = new();

    int loadedId;
    CancellationTokenSource? listening;                    // this run's event loop; replaced when the page shows another run

    /// <summary>Loads the run on first render and again when navigation (back/forward) keeps this page but changes Id.</summary>
    protected override async Task OnParametersSetAsync()
    {
        if (loadedId == Id) return;
        loadedId = Id;
        listening?.Cancel(); subscription?.Dispose(); waiting.Clear();
        parent = null; parentStep = 0; workerCommand = null; showTransition = showFineTune = false;
        listening = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
        subscription = Events.Subscribe(Id);               // before reading history: nothing falls in between
        run = await RunService.GetAsync(Id);
        missing = run is null;
        config = run is null ? null : JsonSerializer.Deserialize<RunConfig>(run.ConfigJson, MoTLab.Shared.Json.Options);
        if (run?.ParentId is { } pid)
        {
            parent = await RunService.GetAsync(pid);
            if (config?.Train.InitFrom is { } init && Directory.Exists(init)) parentStep = RunFolder.ReadState(init).Step;
        }
        children = run is null ? [] : await RunService.ChildrenAsync(run.Id);
        _ = ListenAsync(subscription, listening.Token);
    }

    /// <summary>Hands the run's events to the panels in batches, at most 4 a second: an event after a quiet
    /// spell is drawn at once, a busy stream is gathered for the rest of the 250 ms.</summary>
    async Task ListenAsync(RunEvents.Subscription subscription, CancellationToken stop)
    {
        var sinceFlush = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            while (await subscription.Reader.WaitToReadAsync(stop))
            {
                var wait = TimeSpan.FromMilliseconds(250) - sinceFlush.Elapsed;
                if (wait > TimeSpan.Zero) await Task.Delay(wait, stop);
                sinceFlush.Restart();
                var metrics = new List<StepMetrics>(); var snaps = new List<RoutingSnapshot>(); var lines = new List<string>(); bool status = false;
                RunProgress? progress = null;
                while (subscription.Reader.TryRead(out var e))
                {
                    if (e.Metrics is { } m) metrics.AddRange(m);
                    if (e.Routing is { } r) snaps.AddRange(r);
                    if (e.Log is { } l) lines.AddRange(l);
                    if (e.Progress is { } p) progress = p;
                    status |= e.Status is not null || e.Kind is RunEventKind.Deleted or RunEventKind.Warning;
                }
                await InvokeAsync(async () =>
                {
                    if (stop.IsCancellationRequested) return;          // the page moved on to another run meanwhile
                    if (status) run = await RunService.GetAsync(Id) ?? run;        // rare: the status, warning or the run itself changed
                    else if (progress is not null) run?.Apply(progress);           // as the writer just stored it
                    // steps that came before the curves panel stood are handed to it once it does: they may not be
                    // stored yet when it reads the history
                    waiting.AddRange(metrics);
                    if (curves is not null && waiting.Count > 0) { await curves.AddLiveAsync(waiting.OrderBy(m => m.Step).ToList()); waiting.Clear(); }
                    if (routing is not null && snaps.Count > 0) await routing.AddLiveAsync(snaps);
                    if (log is not null && lines.Count > 0) log.Add(lines);
                    StateHasChanged();
                });
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>One thing the user can do with the run, drawn as a button or as a menu item.</summary>
    sealed record RunAction(string Id, string Text, string Icon, Color Color = Color.Default, bool Primary = false, string? Href = null, Func<Task>? Act = null)
    {
        public EventCallback Do => Act is null ? default : EventCallback.Factory.Create(this, Act);
    }

    IEnumerable<RunAction> Actions()
    {
        if (run is null) yield break;
        if (run.Status is RunStatus.Queued or RunStatus.Running)
            yield return new("cancel-button", "Cancel", Icons.Material.Filled.Stop, Color.Warning, Act: CancelAsync);
        if (run.Status is RunStatus.Interrupted or RunStatus.Cancelled or RunStatus.Failed)
            yield return new("resume-button", "Resume", Icons.Material.Filled.PlayArrow, Color.Primary, Primary: true, Act: ResumeAsync);
        if (MoTLab.Shared.Config.Transition.From(run.Kind) && run.Status is not (RunStatus.Queued or RunStatus.Running))
            yield return new("transition-button", "Transition to token-choice", Icons.Material.Filled.CallSplit, Act: () => { showTransition = !showTransition; return Task.CompletedTask; });
        if (FineTune.From(run.Kind) && run.Status is not (RunStatus.Queued or RunStatus.Running))
            yield return new("finetune-button", "Fine-tune with lightweight experts", Icons.Material.Filled.Tune, Act: () => { showFineTune = !showFineTune; return Task.CompletedTask; });
        yield return new("clone-button", "Re-run with edits", Icons.Material.Filled.ContentCopy, Href: $"/new?clone={run.Id}");
        yield return new("delete-button", "Delete", Icons.Material.Filled.Delete, Color.Error, Act: DeleteAsync);
    }

    List<RunRow> children = [];
    string? workerCommand;
    bool showTransition, showFineTune;
    int transitionSteps = 200;
    RunRow? parent;     // the run whose checkpoint this one started from (transition tuning), drawn beside it
    long parentStep;

    /// <summary>", 1.2 % trainable" for a lightweight-experts fine-tune, which trains only its routers and experts.</summary>
    string TrainableShare() => config?.Model.Ffn.IsLightweight == true
        ? $" ({ModelSize.TrainableShare(config.Model):P2} trainable)" : "";

    async Task TransitionAsync()
    {
        var (child, e) = await Groups.TransitionAsync(Id, transitionSteps);
        if (child is null) { Snackbar.Add(string.Join("; ", e.SelectMany(kv => kv.Value)), Severity.Warning); return; }
        Nav.NavigateTo($"/runs/{child.Id}");
    }

    async Task IssueWorkerTokenAsync()
    {
        var (token, problem) = await Remote.IssueTokenAsync(Id);
        if (token is null) { Snackbar.Add(problem!, Severity.Warning); return; }
        var hub = RemoteWorkers.HubUrl(Options.Value.HubUrl, Nav.BaseUri);
        workerCommand = RemoteWorkers.Command(Id, hub, token);
    }

    async Task CancelAsync() => await RunService.CancelAsync(Id);

    async Task ResumeAsync()
    {
        if (await RunService.ResumeAsync(Id) is { } problem) Snackbar.Add($"Cannot resume: {problem}", Severity.Warning);
        run = await RunService.GetAsync(Id) ?? run;
    }

    async Task DeleteAsync()
    {
        var ok = await Dialogs.ShowMessageBoxAsync("Delete run", $"Delete run {Id} with its metrics, checkpoints and logs? This cannot be undone.", yesText: "Delete", cancelText: "Keep");
        if (ok != true) return;
        await RunService.DeleteAsync(Id, Workers.KillAsync);
        Nav.NavigateTo("/");
    }

    public void Dispose() { stop.Cancel(); subscription?.Dispose(); }
}
