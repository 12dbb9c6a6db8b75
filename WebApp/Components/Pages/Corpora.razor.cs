using Microsoft.AspNetCore.Components.Forms;
using MudBlazor;
using MoTLab.Shared.Config;
using MoTLab.Shared.Data;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Components.Pages;

/// <summary>Every corpus a run may use, with its format, size and token stores per tokenizer; Prepare starts a
/// preparation whose progress is read from its state every second while any is live; Preview shows the first
/// documents; Delete removes the stores (and an uploaded file).</summary>
public partial class Corpora
{
    sealed record TokenizerColumn(string Name, string Title);
    static readonly TokenizerColumn[] Tokenizers = [new(Vocabularies.Byte, "Byte"), new(Vocabularies.Gpt2, "GPT-2")];

    IReadOnlyList<CorpusCatalog.CorpusInfo> corpora = [];
    string? previewOf, previewProblem;
    IReadOnlyList<string> preview = [];
    readonly CancellationTokenSource stop = new();
    DateTime watchUntil;                    // a preparation just asked for: watched until it writes its first state

    protected override void OnInitialized()
    {
        corpora = Catalog.List(details: true);
        _ = WatchAsync(stop.Token);
    }

    /// <summary>Reads the corpora again every second while a preparation is live (or was just started).</summary>
    async Task WatchAsync(CancellationToken cancel)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(cancel))
            {
                if (DateTime.UtcNow > watchUntil && !corpora.Any(c => c.Stores?.Any(s => s.Live) == true)) continue;
                var fresh = await Task.Run(() => Catalog.List(details: true), cancel);
                await InvokeAsync(() => { corpora = fresh; StateHasChanged(); });
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>The store of a tokenizer shown: a prepared one first (the default split's before others), else one being prepared.</summary>
    static CorpusCatalog.StoreInfo? StoreOf(CorpusCatalog.CorpusInfo c, string tokenizer)
    {
        var d = new DataConfig();
        return c.Stores?.Where(s => s.Tokenizer == tokenizer)
            .OrderByDescending(s => s.Prepared is not null).ThenByDescending(s => s.Live).ThenByDescending(s => s.HeldOut == d.ValFraction)
            .FirstOrDefault();
    }

    static string SizeOf(CorpusCatalog.CorpusInfo c) => c.Bytes is not ({ } b and > 0) ? "" :
        $"{b / 1e6:N1} MB{(c.Files is > 1 ? $" · {c.Files:N0} files" : "")}";

    static string Millions(long n) => n >= 1_000_000 ? $"{n / 1e6:N2} M" : n.ToString("N0");

    async Task PrepareAsync(CorpusCatalog.CorpusInfo c, string tokenizer)
    {
        var (outcome, problem) = Preparations.Start(c.Name, tokenizer);
        if (problem is not null) Snackbar.Add($"Cannot prepare {c.Name}: {problem}", Severity.Warning);
        watchUntil = DateTime.UtcNow.AddSeconds(30);
        corpora = await Task.Run(() => Catalog.List(details: true));
        if (outcome == CorpusPreparations.Outcome.Started) Snackbar.Add($"Preparing {c.Name} with {tokenizer}", Severity.Info);
    }

    void TogglePreview(CorpusCatalog.CorpusInfo c)
    {
        if (previewOf == c.Name) { previewOf = null; return; }
        previewOf = c.Name; previewProblem = null; preview = [];
        try { preview = Catalog.Preview(c.Name); }
        catch (Exception e) when (e is CorpusException or IOException) { previewProblem = e.Message; }
    }

    async Task DeleteAsync(CorpusCatalog.CorpusInfo c)
    {
        var what = c.Kind == "upload" ? "the uploaded file and its token stores" : "its token stores (a run prepares them again when it needs them)";
        if (await Dialogs.ShowMessageBoxAsync("Delete", $"Delete {what} of {c.Name}?", yesText: "Delete", cancelText: "Keep") != true) return;
        if (Catalog.Delete(c.Name) is { } problem) Snackbar.Add(problem, Severity.Warning);
        corpora = Catalog.List(details: true);
    }

    public void Dispose() { stop.Cancel(); stop.Dispose(); }
}
