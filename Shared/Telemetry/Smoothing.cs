namespace MoTLab.Shared.Telemetry;

public enum SmoothingKind { None, Ema, TimeWeightedEma, RunningAverage }

/// <summary>How a noisy step series is smoothed for reading; the raw series is always drawn beside it.
/// Every kind is causal (a step's smoothed value depends on that step and the ones before it) and is computed over a
/// run's whole stored series, so a step reads the same at any zoom, live or after a reload.
/// <list type="bullet">
/// <item><b>Ema</b> (TensorBoard's): s ← w·s + x per logged point, divided by the debias weight d ← w·d + 1, so the first
/// points are not pulled towards 0; <see cref="Weight"/> w in [0, 0.999].</item>
/// <item><b>TimeWeightedEma</b> (W&amp;B's default): the same with w' = √Weight raised to the step gap measured in thousandths
/// of the run's planned steps, so a run logged every step and one logged every 100 steps are smoothed alike.</item>
/// <item><b>RunningAverage</b>: the mean of the last <see cref="Window"/> logged points (a trailing box filter).</item>
/// </list>
/// A non-finite value is passed through as it is (drawn as a gap) and does not enter the state.</summary>
public sealed record Smoothing(SmoothingKind Kind = SmoothingKind.TimeWeightedEma, double Weight = 0.6, int Window = 10)
{
    public static readonly Smoothing Off = new(SmoothingKind.None);
    public const double MaxWeight = 0.999;
    public const int MaxWindow = 10_000;

    /// <summary>The smoothing as URLs and the API spell it: <c>none</c>, <c>ema-0.9</c>, <c>twema-0.6</c>, <c>avg-20</c>.</summary>
    public override string ToString() => Kind switch
    {
        SmoothingKind.Ema => $"ema-{Weight.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)}",
        SmoothingKind.TimeWeightedEma => $"twema-{Weight.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)}",
        SmoothingKind.RunningAverage => $"avg-{Window}",
        _ => "none",
    };

    /// <summary>Reads <see cref="ToString"/>'s spelling (weights 0–0.999, windows 1–10,000); null for anything else.
    /// "none" keeps <paramref name="current"/>'s weight and window, so switching smoothing off and on again restores them.</summary>
    public static Smoothing? Parse(string? text, Smoothing? current = null)
    {
        current ??= new Smoothing();
        if (text == "none") return current with { Kind = SmoothingKind.None };
        var parts = (text ?? "").Split('-', 2);
        if (parts.Length != 2) return null;
        var culture = System.Globalization.CultureInfo.InvariantCulture;
        if (parts[0] == "avg")
            return int.TryParse(parts[1], culture, out var n) && n is >= 1 and <= MaxWindow ? current with { Kind = SmoothingKind.RunningAverage, Window = n } : null;
        if (!double.TryParse(parts[1], culture, out var w) || w is < 0 or > MaxWeight) return null;
        return parts[0] switch
        {
            "ema" => current with { Kind = SmoothingKind.Ema, Weight = w },
            "twema" => current with { Kind = SmoothingKind.TimeWeightedEma, Weight = w },
            _ => null,
        };
    }

    /// <summary>A fresh smoother for one run's series; <paramref name="plannedSteps"/> sets the time-weighted scale.</summary>
    public Smoother Start(long plannedSteps) => new(this, plannedSteps);

    /// <summary>The smoothed series of <paramref name="values"/> logged at <paramref name="steps"/> (ascending).</summary>
    public double[] Apply(IReadOnlyList<long> steps, IReadOnlyList<double> values, long plannedSteps)
    {
        var smoother = Start(plannedSteps);
        var result = new double[values.Count];
        for (int i = 0; i < result.Length; i++) result[i] = smoother.Add(steps[i], values[i]);
        return result;
    }
}

/// <summary>The running state of one <see cref="Smoothing"/> over one series: feed it every logged point in step order.
/// A copy (<see cref="Clone"/>) continues independently, which is how a live chart carries on from a stored history.</summary>
public sealed class Smoother
{
    readonly Smoothing how;
    readonly double weight, stepScale;
    double sum, debias;
    long lastStep = long.MinValue;
    readonly Queue<double> window = new();

    internal Smoother(Smoothing how, long plannedSteps)
    {
        this.how = how;
        weight = Math.Clamp(how.Weight, 0, Smoothing.MaxWeight);
        if (how.Kind == SmoothingKind.TimeWeightedEma) weight = Math.Min(Math.Sqrt(weight), Smoothing.MaxWeight);
        stepScale = 1000.0 / Math.Max(1, plannedSteps);
    }

    Smoother(Smoother other)
    {
        how = other.how; weight = other.weight; stepScale = other.stepScale;
        sum = other.sum; debias = other.debias; lastStep = other.lastStep; window = new Queue<double>(other.window);
    }

    public Smoother Clone() => new(this);

    public double Add(long step, double value)
    {
        if (!double.IsFinite(value)) return value;
        switch (how.Kind)
        {
            case SmoothingKind.Ema:
            case SmoothingKind.TimeWeightedEma:
                double w = how.Kind == SmoothingKind.Ema || lastStep == long.MinValue ? weight : Math.Pow(weight, (step - lastStep) * stepScale);
                lastStep = step;
                sum = sum * w + value;
                debias = debias * w + 1;
                return sum / debias;
            case SmoothingKind.RunningAverage:
                window.Enqueue(value); sum += value;
                if (window.Count > Math.Clamp(how.Window, 1, Smoothing.MaxWindow)) sum -= window.Dequeue();
                return sum / window.Count;
            default:
                return value;
        }
    }
}
