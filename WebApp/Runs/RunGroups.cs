using MoTLab.Shared.Runs;
using MoTLab.Shared.Config;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Runs;

/// <summary>Runs made from other runs or presets: a preset group ("Reproduce the paper") launched as one matched set
/// (every run validated first, nothing stored unless all are valid; same steps, device and a shared tag), and a
/// MoT run's transition to token-choice and a dense run's lightweight-experts fine-tune (linked runs starting from
/// the parent's newest checkpoint).</summary>
public sealed class RunGroups(RunService runs, RunRequests validation, SweepService sweeps)
{
    /// <param name="Sweeps">The learning-rate sweeps launched first, when the group waits for them (their runs are <paramref name="Ids"/>).</param>
    public sealed record Launched(string Tag, IReadOnlyList<int> Ids, IReadOnlyList<int>? Sweeps = null)
    {
        public string CompareUrl => $"/compare?ids={string.Join(',', Ids)}";
        /// <summary>Where to look next: the comparison, or the first learning-rate sweep while it runs.</summary>
        public string Url => Sweeps is { Count: > 0 } s ? $"/sweeps/{s[0]}" : CompareUrl;
    }

    /// <param name="learningRates">A learning rate per preset in place of the preset's own (the best of its sweep).</param>
    /// <param name="sweepLearningRates">Sweep each preset's learning rate first over this many rates (<see cref="LearningRateSweeps"/>);
    /// the group follows at each one's best once every sweep has ended (<see cref="SweepFollowUps"/>).</param>
    public async Task<(Launched? Set, Dictionary<string, string[]> Errors)> LaunchAsync(string group, int? steps, string? device, CancellationToken ct = default,
        IReadOnlyDictionary<string, double>? learningRates = null, int? sweepLearningRates = null)
    {
        if (Presets.FindGroup(group) is not { } g)
            return (null, new() { ["group"] = [$"unknown group '{group}' (one of {string.Join(", ", Presets.Groups.Select(x => x.Name))})"] });
        var tag = $"{g.Name}-{DateTime.UtcNow:yyyyMMdd-HHmmss}";
        if (sweepLearningRates is { } rates)
            return rates is >= 2 and <= 20 ? await SweepFirstAsync(g, steps, device, tag, rates, ct) : (null, new() { ["rates"] = ["a learning-rate sweep takes 2 to 20 rates"] });
        CreateRunRequest Request(string preset)
        {
            var r = new CreateRunRequest { Preset = preset, Steps = steps, Device = device, Tags = [tag, g.Name] };
            if (learningRates?.TryGetValue(preset, out var lr) != true) return r;
            var cfg = Presets.Find(preset)!.Config;
            return r with { Config = cfg with { Train = cfg.Train with { LearningRate = lr } }, Notes = $"learning rate {lr:G4}: the best of its sweep" };
        }
        var requests = g.Presets.Select(Request).ToList();
        var errors = requests.SelectMany(r => validation.Resolve(r).Errors.Select(e => (Key: $"{r.Preset}: {e.Key}", e.Value)))
            .ToDictionary(e => e.Key, e => e.Value);
        if (errors.Count > 0) return (null, errors);
        var ids = new List<int>();
        foreach (var r in requests)
            ids.Add((await runs.CreateAsync(r, ct)).Run!.Id);
        return (new Launched(tag, ids), []);
    }

    /// <summary>Every preset's learning-rate sweep, all checked before any is stored, each followed by the group.</summary>
    async Task<(Launched? Set, Dictionary<string, string[]> Errors)> SweepFirstAsync(Presets.Group g, int? steps, string? device, string tag, int rates, CancellationToken ct)
    {
        var specs = g.Presets.Select(p => (Preset: p, Spec: LearningRateSweeps.For(p, steps, device, [tag, "lr-sweep"], rates))).ToList();
        var errors = specs.SelectMany(s => sweeps.Check(s.Spec).Errors.Select(e => (Key: $"{s.Preset}: {e.Key}", e.Value))).ToDictionary(e => e.Key, e => e.Value);
        if (errors.Count > 0) return (null, errors);
        var ids = new List<int>(); var runIds = new List<int>();
        foreach (var (preset, spec) in specs)
        {
            var (sweep, e) = await sweeps.CreateAsync(spec, ct, new SweepFollowUp(g.Name, steps, device, tag, preset, specs.Count));
            if (sweep is null) return (null, e);
            ids.Add(sweep.Id);
            runIds.AddRange((await sweeps.RunsOfAsync(sweep.Id, ct)).Select(r => r.Id));
        }
        return (new Launched(tag, runIds, ids), []);
    }

    /// <summary>A token-choice run continuing <paramref name="parentId"/>'s newest checkpoint for <paramref name="steps"/>.</summary>
    public Task<(RunRow? Run, Dictionary<string, string[]> Errors)> TransitionAsync(int parentId, int steps, double capacityFactor = 2.0, CancellationToken ct = default) =>
        FromNewestCheckpointAsync(parentId, (cfg, checkpoint) => Transition.ToTokenChoice(cfg, checkpoint, steps, capacityFactor), "transition", "Transition tuning", ct);

    /// <summary>A MoV or MoLoRA fine-tune of dense run <paramref name="parentId"/>'s newest checkpoint.</summary>
    public Task<(RunRow? Run, Dictionary<string, string[]> Errors)> FineTuneAsync(int parentId, FfnKind kind, int experts, int rank, int steps, double? learningRate, CancellationToken ct = default) =>
        FromNewestCheckpointAsync(parentId, (cfg, checkpoint) => FineTune.WithLightweightExperts(cfg, checkpoint, kind, experts, rank, steps, learningRate),
            kind == FfnKind.MoV ? "mov" : "molora", "Lightweight-experts fine-tune", ct);

    /// <summary>A linked run made by <paramref name="make"/> from the parent's config and newest checkpoint; an
    /// ArgumentException from it (the wrong kind of parent) is the caller's error.</summary>
    async Task<(RunRow? Run, Dictionary<string, string[]> Errors)> FromNewestCheckpointAsync(int parentId, Func<RunConfig, string, RunConfig> make,
        string tag, string what, CancellationToken ct)
    {
        if (await runs.GetAsync(parentId, ct) is not { } parent) return (null, new() { ["id"] = [$"run {parentId} does not exist"] });
        var cfg = System.Text.Json.JsonSerializer.Deserialize<RunConfig>(parent.ConfigJson, Shared.Json.Options)!;
        if (RunFolder.Checkpoints(parent.RunDir).LastOrDefault() is not { } checkpoint)
            return (null, new() { ["id"] = [$"run {parentId} has no checkpoint yet"] });
        RunConfig child;
        try { child = make(cfg, checkpoint); }
        catch (ArgumentException e) { return (null, new() { ["id"] = [$"run {parentId}: {e.Message}"] }); }
        return await runs.CreateAsync(new CreateRunRequest
        {
            Config = child, ParentId = parentId, Device = parent.Requested.Again.ToString(), Tags = [tag],
            Notes = $"{what} from run {parentId} at {Path.GetFileName(checkpoint)}",
        }, ct);
    }
}
