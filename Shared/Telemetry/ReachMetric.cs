namespace MoTLab.Shared.Telemetry;

/// <summary>The MoT paper's headline comparison: when does a run first reach the baseline's final loss,
/// as a share of the baseline's steps, wall time and tokens. Losses are compared after the same
/// smoothing (train loss is noisy); eval loss is used when both runs have it.</summary>
public static class ReachMetric
{
    public sealed record Point(long Step, double ElapsedS, long Tokens, double Loss);

    public sealed record Result(double Target, Point? Reached, double? StepFraction, double? TimeFraction, double? TokenFraction)
    {
        /// <param name="finished">The run has ended: one that never got there "did not reach" the target.</param>
        public string Describe(string name, bool finished = false) => Reached is null
            ? (finished ? $"{name}: did not reach {Target:F3}" : $"{name}: has not reached {Target:F3} yet")
            : $"{name}: {StepFraction:P0} of the steps, {TimeFraction:P0} of the time, {TokenFraction:P0} of the tokens";
    }

    /// <summary>The points with their losses smoothed as <paramref name="smoothing"/> says (over these points, in order).</summary>
    public static IReadOnlyList<Point> Smooth(IReadOnlyList<Point> points, Smoothing smoothing, long plannedSteps)
    {
        if (smoothing.Kind == SmoothingKind.None) return points;
        var smoothed = smoothing.Apply(points.Select(p => p.Step).ToList(), points.Select(p => p.Loss).ToList(), plannedSteps);
        return points.Select((p, i) => p with { Loss = smoothed[i] }).ToList();
    }

    /// <param name="toBest">Measure against the baseline's lowest loss and the point where it got there, instead of its
    /// final loss and last point: the same in a healthy run, but a run that overfits ends above its best.</param>
    public static Result? Compute(IReadOnlyList<Point> baseline, IReadOnlyList<Point> run, bool toBest = false)
    {
        if (baseline.Count == 0) return null;
        var target = toBest ? baseline.MinBy(p => p.Loss)! : baseline[^1];
        var hit = run.FirstOrDefault(p => p.Loss <= target.Loss);
        if (hit is null) return new Result(target.Loss, null, null, null, null);
        return new Result(target.Loss, hit, (double)hit.Step / target.Step, target.ElapsedS > 0 ? hit.ElapsedS / target.ElapsedS : null,
            target.Tokens > 0 ? (double)hit.Tokens / target.Tokens : null);
    }
}
