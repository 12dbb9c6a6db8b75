using Microsoft.Extensions.Options;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;

namespace MoTLab.WebApp.Runs;

/// <summary>Turns a create-run request (a preset or a config, with overrides) into the run's config, or into the field
/// errors, keyed by JSON path, that prevent it: the config's own rules, the corpus, the checkpoint it starts from, the
/// device and the memory the run would need.</summary>
public sealed class RunRequests(CorpusCatalog corpora, IOptions<MoTLabOptions> options)
{
    /// <summary>Tags a run may carry (each at most 50 characters): a run's row, and so every Runs page, stays small.</summary>
    public const int MaxTags = 20;

    /// <summary>The run to create and where it asked to train, or the field errors (JSON paths) that prevent it.</summary>
    /// <param name="corpusChecks">Corpus checks already made (a sweep's runs share their corpus: opened once).</param>
    public (RunConfig? Config, DeviceRequest Device, Dictionary<string, string[]> Errors) Resolve(CreateRunRequest r, IDictionary<string, string?>? corpusChecks = null)
    {
        var errors = new Dictionary<string, List<string>>();
        void Add(string field, string message) => (errors.TryGetValue(field, out var l) ? l : errors[field] = []).Add(message);
        RunConfig cfg;
        if (r.Config is not null) cfg = r.Config with { Preset = r.Preset ?? r.Config.Preset };
        else if (r.Preset is not null)
        {
            var p = Presets.Find(r.Preset);
            if (p is null) { Add("preset", $"unknown preset '{r.Preset}'"); return (null, default, Flatten(errors)); }
            cfg = p.Config;
        }
        else { Add("preset", "give a preset or a config"); return (null, default, Flatten(errors)); }

        if (!string.IsNullOrWhiteSpace(r.Name)) cfg = cfg with { Name = r.Name.Trim() };
        if (r.Steps is { } s) cfg = cfg with { Train = cfg.Train with { Steps = s } };
        if (!string.IsNullOrWhiteSpace(r.Corpus)) cfg = cfg with { Data = cfg.Data with { Corpus = r.Corpus } };
        cfg = cfg.WithTokenizerVocab();
        var device = DeviceRequest.Parse(r.Device ?? "cpu");
        if (DeviceProblem(device) is { } deviceProblem) { Add("device", deviceProblem); device = null; }
        var (memory, memoryName) = device is { } d ? Memory(d) : (null, "");
        foreach (var e in ConfigValidator.ValidateRun(cfg, cuda: device?.Pool == DevicePool.Gpu, memory, memoryName)) Add(e.Field, e.Message);
        string? CheckCorpus(string c) => corpusChecks is null ? corpora.Check(c) : corpusChecks.TryGetValue(c, out var known) ? known : corpusChecks[c] = corpora.Check(c);
        if (CheckCorpus(cfg.Data.Corpus) is { } problem) Add("data.corpus", problem);
        if (cfg.Train.InitFrom is { } init && InitFromProblem(init) is { } initProblem) Add("train.init_from", initProblem);
        if (cfg.Train.Gpus > 1) Add("train.gpus", $"{cfg.Train.Gpus} processes are started by `MoTLab.Training train --gpus {cfg.Train.Gpus}`; the dashboard trains a run in one process: set it to 1");
        if (r.Tags is { Count: > MaxTags }) Add("tags", $"at most {MaxTags} tags");
        else if (r.Tags is { } tags && tags.Any(t => t is null || t.Length > 50 || t.Contains(','))) Add("tags", "each tag: at most 50 characters, no commas");
        if (r.Notes is { Length: > 10_000 }) Add("notes", "at most 10,000 characters");
        return errors.Count > 0 ? (null, default, Flatten(errors)) : (cfg, device!.Value, []);   // a bad device is an error above
    }

    /// <summary>Weights may only come from a checkpoint of this dashboard's own runs.</summary>
    string? InitFromProblem(string path)
    {
        var full = Path.GetFullPath(path);
        if (!full.StartsWith(options.Value.RunsPath + Path.DirectorySeparatorChar, StringComparison.Ordinal)) return "must be a checkpoint of one of this dashboard's runs";
        try { RunFolder.Checkpoint(full); return null; }
        catch (InvalidOperationException e) { return e.Message; }
    }

    /// <summary>Why this dashboard cannot train on <paramref name="device"/> (null when it can).</summary>
    string? DeviceProblem(DeviceRequest? device) => device switch
    {
        null => $"must be cpu, cuda, cuda:N with N < {options.Value.Gpus} (GPUs configured), slurm (a batch job) or remote (a worker you start yourself)",
        { Pool: DevicePool.Slurm } when options.Value.Slurm is null => "this dashboard has no Slurm pool (MoTLab:Slurm in appsettings.json)",
        { Pool: DevicePool.Gpu } when options.Value.Gpus == 0 => "this dashboard has no GPUs configured (MoTLab:Gpus in appsettings.json)",
        { Pool: DevicePool.Gpu, Gpu: { } g } when g >= options.Value.Gpus => $"cuda:{g} is not one of the {options.Value.Gpus} GPUs configured (cuda:0 … cuda:{options.Value.Gpus - 1}, or cuda for any)",
        _ => null,
    };

    /// <summary>The memory a run on <paramref name="device"/> must fit in: this machine's for CPU runs, MoTLab:GpuMemoryGB
    /// for GPU runs when set; unknown (null) for a GPU without it and for workers elsewhere (Slurm, remote).</summary>
    (double? Bytes, string Name) Memory(DeviceRequest device) => device.Pool switch
    {
        DevicePool.Remote or DevicePool.Slurm => (null, ""),
        DevicePool.Gpu => (options.Value.GpuMemoryGB > 0 ? options.Value.GpuMemoryGB * 1024.0 * 1024 * 1024 : null, "GPU memory (MoTLab:GpuMemoryGB)"),
        _ => (GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, "this machine's memory"),
    };

    static Dictionary<string, string[]> Flatten(Dictionary<string, List<string>> e) => e.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
}
