using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Runs;

/// <summary>Sweeps: a spec expanded into its runs (<see cref="Sweeps.Expand"/>), every run checked as one run is
/// (<see cref="RunRequests"/>) before anything is stored, then launched as ordinary runs on the scheduler, tagged with
/// the sweep and pointing at its row. Cancelling a sweep ends its queued runs at once and asks its running ones to
/// stop; deleting it deletes its runs.</summary>
public sealed class SweepService(IDbContextFactory<MoTLabDb> dbs, RunService runs, RunRequests requests, IOptions<MoTLabOptions> options)
{
    /// <summary>A checked sweep: its runs' requests, in order, with their points.</summary>
    public sealed record Plan(SweepSpec Spec, IReadOnlyList<SweepPoint> Points, IReadOnlyList<CreateRunRequest> Requests);

    /// <summary>The sweep's plan, or the field errors that prevent it: paths into the spec ("axes[1].values"), and per
    /// run ("runs[3].train.learning_rate") what the run validator says, with the run's axis values.</summary>
    public (Plan? Plan, Dictionary<string, string[]> Errors) Check(SweepSpec spec)
    {
        RunConfig? baseConfig = spec.Config ?? (spec.Preset is { } p ? Presets.Find(p)?.Config : null);
        if (baseConfig is null)
            return (null, new() { [spec.Preset is null ? "config" : "preset"] = [spec.Preset is null ? "give a preset or a config to sweep from" : $"unknown preset '{spec.Preset}'"] });
        if (spec.Preset is not null) baseConfig = baseConfig with { Preset = spec.Preset };
        var (points, expandErrors) = Sweeps.Expand(spec, baseConfig, options.Value.MaxSweepRuns);
        if (expandErrors.Count > 0) return (null, expandErrors.GroupBy(e => e.Field).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray()));
        var errors = new Dictionary<string, string[]>();
        var corpusChecks = new Dictionary<string, string?>();
        var list = new List<CreateRunRequest>();
        for (int i = 0; i < points.Count; i++)
        {
            var request = new CreateRunRequest { Config = points[i].Config, Device = spec.Device, Tags = [.. spec.Tags ?? []] };
            foreach (var (field, messages) in requests.Resolve(request, corpusChecks).Errors)
                errors[$"runs[{i}].{field}"] = [.. messages.Select(m => $"{points[i].Label}: {m}")];
            list.Add(request);
        }
        return errors.Count > 0 ? (null, errors) : (new Plan(spec, points, list), []);
    }

    /// <summary>Stores the sweep and launches its runs, or stores nothing and returns why.</summary>
    /// <param name="then">What follows once it and the sweeps sharing the follow-up's tag have ended (<see cref="SweepFollowUps"/>).</param>
    public async Task<(SweepRow? Sweep, Dictionary<string, string[]> Errors)> CreateAsync(SweepSpec spec, CancellationToken ct = default, SweepFollowUp? then = null)
    {
        var (plan, errors) = Check(spec);
        if (plan is null) return (null, errors);
        var sweep = new SweepRow
        {
            Name = spec.Name, SpecJson = JsonSerializer.Serialize(spec, Json.Options), CreatedAt = DateTime.UtcNow,
            ThenJson = then is null ? null : JsonSerializer.Serialize(then, Json.Options),
        };
        await using (var db = await dbs.CreateDbContextAsync(ct))
        {
            db.Sweeps.Add(sweep);
            await db.SaveChangesAsync(ct);
        }
        foreach (var r in plan.Requests)
        {
            var (run, e) = await runs.CreateAsync(r with { Tags = [.. r.Tags ?? [], Tag(sweep.Id)] }, ct, sweep.Id);
            if (run is null) throw new InvalidOperationException($"sweep {sweep.Id}: a run checked a moment ago was refused: {string.Join("; ", e.SelectMany(kv => kv.Value))}");
        }
        return (sweep, []);
    }

    /// <summary>A sweep as the Sweep page and <c>GET /api/sweeps/{id}</c> show it.</summary>
    /// <param name="Then">What follows it, with <paramref name="Siblings"/>: the sweeps it waits with (their ids and presets).</param>
    public sealed record SweepView(int Id, string Name, string Method, IReadOnlyList<string> Axes, DateTime CreatedAt, IReadOnlyList<SweepRun> Runs,
        SweepFollowUp? Then = null, IReadOnlyList<SweepLink>? Siblings = null)
    {
        public string CompareUrl => $"/compare?ids={string.Join(',', Runs.Select(r => r.Id))}&metric=eval_loss";

        /// <summary>"2 completed, 1 running, 1 queued" (the pages'; not in the API's JSON).</summary>
        [System.Text.Json.Serialization.JsonIgnore]
        public string StatusCounts => string.Join(", ", Runs.GroupBy(r => r.Status).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key.ToString().ToLowerInvariant()}"));
    }

    /// <summary>A sweep a follow-up waits for, by the preset it sweeps.</summary>
    public sealed record SweepLink(int Id, string Preset);

    /// <summary>One run of a sweep: its value on every axis (read from its config) and where it stands.</summary>
    public sealed record SweepRun(int Id, string Name, RunStatus Status, IReadOnlyDictionary<string, JsonElement?> Values, long LastStep, long TotalSteps,
        double? LastLoss, double? LastEvalLoss, double? BestEvalLoss);

    public async Task<SweepView?> ViewAsync(int id, CancellationToken ct = default)
    {
        if (await GetAsync(id, ct) is not { } sweep) return null;
        var spec = SpecOf(sweep);
        var axes = spec.Axes.Select(a => a.Path).ToList();
        var list = (await RunsOfAsync(id, ct)).Select(r => new SweepRun(r.Id, r.Name, r.Status,
            axes.ToDictionary(a => a, a => Sweeps.ValueAt(r.ConfigJson, a)), r.LastStep, r.TotalSteps, r.LastLoss, r.LastEvalLoss, r.BestEvalLoss)).ToList();
        var then = ThenOf(sweep);
        var siblings = then is null ? null : (await ListAsync(ct)).Select(s => (s.Id, Then: ThenOf(s))).Where(s => s.Then?.Tag == then.Tag)
            .Select(s => new SweepLink(s.Id, s.Then!.Preset)).OrderBy(s => s.Id).ToList();
        return new SweepView(sweep.Id, sweep.Name, spec.Method, axes, sweep.CreatedAt, list, then, siblings);
    }

    /// <summary>The tag every run of a sweep carries.</summary>
    public static string Tag(int sweepId) => $"sweep-{sweepId}";

    public static SweepSpec SpecOf(SweepRow sweep) => JsonSerializer.Deserialize<SweepSpec>(sweep.SpecJson, Json.Options)!;

    public static SweepFollowUp? ThenOf(SweepRow sweep) => sweep.ThenJson is null ? null : JsonSerializer.Deserialize<SweepFollowUp>(sweep.ThenJson, Json.Options);

    /// <summary>Records what became of a follow-up, on every sweep of its set.</summary>
    public async Task SetThenAsync(IEnumerable<int> sweepIds, SweepFollowUp then, CancellationToken ct = default)
    {
        var ids = sweepIds.ToList();
        await using var db = await dbs.CreateDbContextAsync(ct);
        var json = JsonSerializer.Serialize(then, Json.Options);
        await db.Sweeps.Where(s => ids.Contains(s.Id)).ExecuteUpdateAsync(u => u.SetProperty(s => s.ThenJson, json), ct);
    }

    public async Task<SweepRow?> GetAsync(int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return await db.Sweeps.AsNoTracking().FirstOrDefaultAsync(s => s.Id == id, ct);
    }

    public async Task<List<SweepRow>> ListAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return await db.Sweeps.AsNoTracking().OrderByDescending(s => s.Id).ToListAsync(ct);
    }

    public async Task<List<RunRow>> RunsOfAsync(int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return await db.Runs.AsNoTracking().Where(r => r.SweepId == id).OrderBy(r => r.Id).ToListAsync(ct);
    }

    /// <summary>Cancels every run of the sweep that has not ended (queued ones at once); the count it asked.</summary>
    public async Task<int> CancelAsync(int id, CancellationToken ct = default)
    {
        int asked = 0;
        foreach (var run in await RunsOfAsync(id, ct))
            if (run.Status is RunStatus.Queued or RunStatus.Running && await runs.CancelAsync(run.Id, ct) is RunService.CancelOutcome.Cancelled or RunService.CancelOutcome.Asked) asked++;
        return asked;
    }

    /// <summary>Deletes the sweep and its runs (their workers stopped, their folders removed).</summary>
    public async Task<bool> DeleteAsync(int id, Func<int, Task> stopWorker, CancellationToken ct = default)
    {
        if (await GetAsync(id, ct) is null) return false;
        foreach (var run in await RunsOfAsync(id, ct)) await runs.DeleteAsync(run.Id, stopWorker, ct);
        await using var db = await dbs.CreateDbContextAsync(ct);
        await db.Sweeps.Where(s => s.Id == id).ExecuteDeleteAsync(ct);
        return true;
    }
}
