namespace MoTLab.Training.Train;

/// <summary>Linear warmup to the peak, then cosine decay to min_ratio·peak at the last step.</summary>
public static class LrSchedule
{
    public static double At(long step, long totalSteps, double peak, double warmupFraction, double minRatio)
    {
        long warmup = (long)Math.Round(totalSteps * warmupFraction);
        if (step < warmup) return peak * (step + 1) / warmup;
        long decaySteps = Math.Max(1, totalSteps - 1 - warmup);
        double progress = Math.Clamp((double)(step - warmup) / decaySteps, 0, 1);
        double cosine = 0.5 * (1 + Math.Cos(Math.PI * progress));
        return peak * (minRatio + (1 - minRatio) * cosine);
    }
}
