namespace MoTLab.Shared.Telemetry;

/// <summary>The MoT paper's headline comparison: when does a run first reach the baseline's final loss,
/// as a share of the baseline's steps, wall time and tokens. Losses are compared after the same EMA
/// smoothing (train loss is noisy); eval loss is used when both runs have it.</summary>
public static class ReachMetric
{
    public sealed record Point(long Step, double ElapsedS, long Tokens, double Loss);

    public sealed record Result(double Target, Point? Reached, double? StepFraction, double? TimeFraction, double? TokenFraction)
    {
        public string Describe(string name) => Reached is null
            ? $"{name}: has not reached {Target:F3} yet"
            : $"{name}: {StepFraction:P0} of the steps, {TimeFraction:P0} of the time, {TokenFraction:P0} of the tokens";
    }

    public static IReadOnlyList<Point> Smooth(IReadOnlyList<Point> points, double ema)
    {
        if (ema <= 0) return points;
        var result = new List<Point>(points.Count);
        double? s = null;
        foreach (var p in points) { s = s is null ? p.Loss : ema * s.Value + (1 - ema) * p.Loss; result.Add(p with { Loss = s.Value }); }
        return result;
    }

    public static Result? Compute(IReadOnlyList<Point> baseline, IReadOnlyList<Point> run)
    {
        if (baseline.Count == 0) return null;
        var final = baseline[^1];
        var hit = run.FirstOrDefault(p => p.Loss <= final.Loss);
        if (hit is null) return new Result(final.Loss, null, null, null, null);
        return new Result(final.Loss, hit, (double)hit.Step / final.Step, final.ElapsedS > 0 ? hit.ElapsedS / final.ElapsedS : null,
            final.Tokens > 0 ? (double)hit.Tokens / final.Tokens : null);
    }
}
