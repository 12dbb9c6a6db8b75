using MoTLab.Shared.Config;
using MoTLab.Shared.Data;
using MoTLab.Training.Train;

namespace MoTLab.Training.Cli;

/// <summary>One plain sentence for why training stopped, naming what to change; the same for `train` and `worker`.</summary>
public static class FailureReason
{
    /// <summary>Failures with a known cause and remedy; anything else is a bug and keeps its type name.</summary>
    public static bool IsExpected(Exception e) => e is UsageException or ConfigException or CorpusException or TrainingDivergedException
        or InvalidOperationException or ArgumentException or FileNotFoundException || IsOutOfMemory(e) || IsDiskFull(e);

    public static string Describe(Exception e, RunConfig? config = null)
    {
        if (IsOutOfMemory(e))
        {
            var shape = config is null ? "" : $" at batch {config.Train.BatchSize} × sequence {config.Model.SeqLen}";
            return $"CUDA out of memory{shape}: lower train.batch_size or the model size, or train in bf16. {FirstLine(e.Message)}";
        }
        if (IsDiskFull(e))
            return $"disk full: {FirstLine(e.Message)}. Free space in the run folder's file system, then Resume from the last checkpoint.";
        return e is UsageException or ConfigException or CorpusException or TrainingDivergedException ? e.Message : $"{e.GetType().Name}: {e.Message}";
    }

    static bool IsOutOfMemory(Exception e) =>
        e.Message.Contains("CUDA out of memory", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("CUDA error: out of memory", StringComparison.OrdinalIgnoreCase);

    const int ENOSPC = 28;
    static bool IsDiskFull(Exception e) =>
        e is IOException io && ((io.HResult & 0xFFFF) == ENOSPC || io.Message.Contains("No space left on device", StringComparison.Ordinal));

    static string FirstLine(string s) => s.Split('\n', 2)[0].Trim();
}
