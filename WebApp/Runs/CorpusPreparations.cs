using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Options;
using MoTLab.Shared.Config;
using MoTLab.Shared.Data;

namespace MoTLab.WebApp.Runs;

/// <summary>Prepares token stores on the dashboard's machine: one <c>corpus prepare</c> process of the worker per store
/// (tokenizing takes every core, and a process keeps a crash or a memory spike out of the dashboard). Its progress is
/// the store's state.json, which the Corpora page reads; a preparation that stops resumes when asked again, and one a
/// run's worker started is found the same way. What a failed process said last is kept for the page.</summary>
public sealed class CorpusPreparations(IOptions<MoTLabOptions> options, CorpusCatalog catalog, ILogger<CorpusPreparations> log) : IDisposable
{
    readonly ConcurrentDictionary<string, Process> running = new();
    readonly ConcurrentDictionary<(string Corpus, string Tokenizer), string> failures = new();

    /// <summary>The outcome of asking for a store: started, already prepared or being prepared, or refused with the reason.</summary>
    public enum Outcome { Started, Prepared, Preparing, Refused }

    /// <summary>Starts preparing <paramref name="name"/>'s store for <paramref name="tokenizer"/> with the default split.</summary>
    public (Outcome Outcome, string? Problem) Start(string name, string tokenizer)
    {
        if (!Vocabularies.Names.Contains(tokenizer)) return (Outcome.Refused, $"tokenizer must be {string.Join(" or ", Vocabularies.Names)}");
        if (catalog.Check(name) is { } problem) return (Outcome.Refused, problem);
        Corpus corpus;
        try { corpus = Corpus.Open(name, catalog.Roots); }
        catch (CorpusException e) { return (Outcome.Refused, e.Message); }                   // a built-in corpus not installed here
        if (corpus.Pretokenized is not null) return (Outcome.Prepared, null);
        var data = new DataConfig();
        var folder = TokenStore.Folder(options.Value.CachePath, corpus.Identity, tokenizer, TokenStore.SplitOf(corpus, data.Split), data.ValFraction);
        if (TokenStore.Manifest(folder) is not null) return (Outcome.Prepared, null);
        if (running.ContainsKey(folder) || TokenStore.Preparing(folder)?.Live() == true) return (Outcome.Preparing, null);

        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { options.Value.TrainingDllPath, "corpus", "prepare", name, "--tokenizer", tokenizer }) psi.ArgumentList.Add(a);
        foreach (var root in catalog.Roots) { psi.ArgumentList.Add("--data-root"); psi.ArgumentList.Add(root); }
        psi.Environment["MOTLAB_CACHE"] = options.Value.CachePath;
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        string? last = null;
        process.ErrorDataReceived += (_, e) => { if (!string.IsNullOrWhiteSpace(e.Data)) last = e.Data; };
        process.OutputDataReceived += (_, _) => { };
        process.Exited += (_, _) =>
        {
            if (process.ExitCode != 0) failures[(name, tokenizer)] = last ?? $"corpus prepare exited with code {process.ExitCode}";
            log.LogInformation("preparing {Corpus} with {Tokenizer} ended with code {Code}", name, tokenizer, process.ExitCode);
            running.TryRemove(folder, out _);
        };
        failures.TryRemove((name, tokenizer), out _);
        if (!running.TryAdd(folder, process)) return (Outcome.Preparing, null);       // before it starts: its exit removes it
        try { process.Start(); }
        catch (System.ComponentModel.Win32Exception e) { running.TryRemove(folder, out _); return (Outcome.Refused, $"the worker could not be started: {e.Message}"); }
        process.BeginErrorReadLine(); process.BeginOutputReadLine();
        return (Outcome.Started, null);
    }

    /// <summary>What the last preparation of a corpus with a tokenizer said as it failed (its last line of output).</summary>
    public string? Failure(string corpus, string tokenizer) => failures.TryGetValue((corpus, tokenizer), out var f) ? f : null;

    /// <summary>Stops the preparations this dashboard started (each resumes when asked again).</summary>
    public void Dispose()
    {
        foreach (var p in running.Values) try { p.Kill(entireProcessTree: true); } catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { }
    }
}
