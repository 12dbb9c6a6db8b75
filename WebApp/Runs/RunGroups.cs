using MoTLab.Shared.Config;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Runs;

/// <summary>Runs made from other runs or presets: a preset group ("Reproduce the paper") launched as one matched set
/// (every run validated first, nothing stored unless all are valid; same steps, device and a shared tag), and a
/// MoT run's transition to token-choice (a linked run starting from its newest checkpoint).</summary>
public sealed class RunGroups(RunService runs)
{
    public sealed record Launched(string Tag, IReadOnlyList<int> Ids)
    {
        public string CompareUrl => $"/compare?ids={string.Join(',', Ids)}";
    }

    public async Task<(Launched? Set, Dictionary<string, string[]> Errors)> LaunchAsync(string group, int? steps, string? device, CancellationToken ct = default)
    {
        if (Presets.FindGroup(group) is not { } g)
            return (null, new() { ["group"] = [$"unknown group '{group}' (one of {string.Join(", ", Presets.Groups.Select(x => x.Name))})"] });
        var tag = $"{g.Name}-{DateTime.UtcNow:yyyyMMdd-HHmmss}";
        var requests = g.Presets.Select(p => new CreateRunRequest { Preset = p, Steps = steps, Device = device, Tags = [tag, g.Name] }).ToList();
        var errors = requests.SelectMany(r => runs.Resolve(r).Errors.Select(e => (Key: $"{r.Preset}: {e.Key}", e.Value)))
            .ToDictionary(e => e.Key, e => e.Value);
        if (errors.Count > 0) return (null, errors);
        var ids = new List<int>();
        foreach (var r in requests)
            ids.Add((await runs.CreateAsync(r, ct)).Run!.Id);
        return (new Launched(tag, ids), []);
    }

    /// <summary>A token-choice run continuing <paramref name="parentId"/>'s newest checkpoint for <paramref name="steps"/>.</summary>
    public async Task<(RunRow? Run, Dictionary<string, string[]> Errors)> TransitionAsync(int parentId, int steps, double capacityFactor = 2.0, CancellationToken ct = default)
    {
        if (await runs.GetAsync(parentId, ct) is not { } parent) return (null, new() { ["id"] = [$"run {parentId} does not exist"] });
        var cfg = System.Text.Json.JsonSerializer.Deserialize<RunConfig>(parent.ConfigJson, Shared.Json.Options)!;
        if (cfg.Model.Ffn.Kind != FfnKind.MoT) return (null, new() { ["id"] = [$"run {parentId} is {parent.Kind}; only a MoT run transitions to token-choice"] });
        if (Training.Train.Checkpoint.List(parent.RunDir).LastOrDefault() is not { } checkpoint)
            return (null, new() { ["id"] = [$"run {parentId} has no checkpoint yet"] });
        return await runs.CreateAsync(new CreateRunRequest
        {
            Config = Transition.ToTokenChoice(cfg, checkpoint, steps, capacityFactor), ParentId = parentId, Device = DevicePools.Requestable(parent.Device), Tags = ["transition"],
            Notes = $"Transition tuning from run {parentId} at {Path.GetFileName(checkpoint)}",
        }, ct);
    }
}
