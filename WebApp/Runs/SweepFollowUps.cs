using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;

namespace MoTLab.WebApp.Runs;

/// <summary>A preset group's comparison that waits for learning-rate sweeps ("Reproduce the paper" with each model's
/// rate swept first): once every sweep sharing <see cref="Tag"/> has ended, the group is launched with each preset at
/// its sweep's best rate. <see cref="Launched"/> (the comparison's runs) or <see cref="Problem"/> records the outcome.</summary>
/// <param name="Sweeps">How many sweeps the set has (it is not followed up before all of them are stored).</param>
public sealed record SweepFollowUp(string Group, int? Steps, string? Device, string Tag, string Preset, int Sweeps, IReadOnlyList<int>? Launched = null, string? Problem = null)
{
    public string? CompareUrl => Launched is { Count: > 0 } ids ? $"/compare?ids={string.Join(',', ids)}" : null;
}

/// <summary>Starts what follows sweeps (<see cref="SweepFollowUp"/>) once they have ended, checking every few seconds;
/// the state lives in the database, so a follow-up survives a restart. A set in which a run was cancelled, or a model
/// none of whose runs finished, is not followed up; the reason is recorded and shown on the Sweep page.</summary>
public sealed class SweepFollowUps(SweepService sweeps, RunGroups groups, ILogger<SweepFollowUps> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(3));
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
                try { await StepAsync(stop); }
                catch (Exception e) when (e is not OperationCanceledException) { log.LogError(e, "following up sweeps"); }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Follows up every set whose sweeps have all ended.</summary>
    public async Task StepAsync(CancellationToken ct)
    {
        var pending = (await sweeps.ListAsync(ct)).Select(s => (Row: s, Then: SweepService.ThenOf(s)))
            .Where(x => x.Then is { Launched: null, Problem: null }).GroupBy(x => x.Then!.Tag);
        foreach (var set in pending)
        {
            var members = new List<(int Id, SweepFollowUp Then, SweepService.SweepView View)>();
            foreach (var (row, then) in set) if (await sweeps.ViewAsync(row.Id, ct) is { } view) members.Add((row.Id, then!, view));
            var first = members[0].Then;
            bool storing = (members.Count < first.Sweeps || members.Any(m => m.View.Runs.Count == 0))
                && DateTime.UtcNow - members.Max(m => m.View.CreatedAt) < TimeSpan.FromMinutes(1);             // the rest, or their runs, are being stored
            if (storing || members.Any(m => m.View.Runs.Any(r => r.Status is RunStatus.Queued or RunStatus.Running))) continue;
            string? problem = members.Count < first.Sweeps ? $"{first.Sweeps - members.Count} of the learning-rate sweeps were deleted, so the comparison was not started"
                : members.Any(m => m.View.Runs.Any(r => r.Status == RunStatus.Cancelled)) ? "a run of the learning-rate sweeps was cancelled, so the comparison was not started" : null;
            var rates = new Dictionary<string, double>();
            foreach (var m in members.Where(_ => problem is null))
            {
                var best = LearningRateSweeps.Best(m.View.Runs.Where(r => r.Status == RunStatus.Completed)
                    .Select(r => (r.Values["train.learning_rate"]?.GetDouble() ?? double.NaN, r.LastEvalLoss ?? r.LastLoss)));
                if (best is { } b) rates[m.Then.Preset] = b;
                else problem = $"no run of {m.Then.Preset}'s learning-rate sweep finished, so the comparison was not started";
            }
            SweepFollowUp outcome;
            if (problem is not null) outcome = first with { Problem = problem };
            else
            {
                var (launched, errors) = await groups.LaunchAsync(first.Group, first.Steps, first.Device, ct, learningRates: rates);
                outcome = launched is null ? first with { Problem = string.Join("; ", errors.SelectMany(e => e.Value.Select(v => $"{e.Key}: {v}"))) } : first with { Launched = launched.Ids };
            }
            foreach (var m in members) await sweeps.SetThenAsync([m.Id], outcome with { Preset = m.Then.Preset }, ct);
            log.LogInformation("sweeps {Tag}: {Outcome}", first.Tag, outcome.Problem ?? $"launched {outcome.CompareUrl}");
        }
    }
}
