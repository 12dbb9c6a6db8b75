using System.Text.Json;
using MoTLab.Shared.Config;

namespace MoTLab.Shared.Runs;

/// <summary>Where training stood when a checkpoint was written. The data position is the step
/// (batches are a function of seed and step), so this plus the tensors is everything a resume needs.</summary>
public sealed record TrainerState(long Step, long Tokens, double ElapsedS, double? LastTrainLoss, double? LastEvalLoss);

/// <summary>A run's folder, as the worker writes it and the dashboard reads it:
/// <list type="bullet">
/// <item><c>config.json</c>: the run's resolved config;</item>
/// <item><c>metrics.jsonl</c>: one <see cref="Telemetry.StepMetrics"/> per logged step; <c>routing.jsonl</c>: one
///   <see cref="Telemetry.RoutingSnapshot"/> per sparse layer every snapshot_every steps;</item>
/// <item><c>worker.log</c>: the worker's output;</item>
/// <item><c>checkpoints/step-NNNNNNNN/</c>: model.safetensors, optimizer.bin, rng.bin, config.json, state.json
///   (<see cref="TrainerState"/>), written as <c>….tmp</c> and renamed, so a folder with state.json is complete.</item>
/// </list></summary>
public static class RunFolder
{
    public const string ConfigFile = "config.json", MetricsFile = "metrics.jsonl", RoutingFile = "routing.jsonl", LogFile = "worker.log",
        CheckpointsFolder = "checkpoints", StateFile = "state.json";

    public static string Log(string runDir) => Path.Combine(runDir, LogFile);

    /// <summary>The folder a checkpoint at <paramref name="step"/> is written to.</summary>
    public static string CheckpointAt(string runDir, long step) => Path.Combine(runDir, CheckpointsFolder, $"step-{step:D8}");

    /// <summary>Complete checkpoint folders of a run, oldest first.</summary>
    public static IReadOnlyList<string> Checkpoints(string runDir)
    {
        var root = Path.Combine(runDir, CheckpointsFolder);
        if (!Directory.Exists(root)) return [];
        return Directory.GetDirectories(root, "step-*").Where(d => !d.EndsWith(".tmp") && File.Exists(Path.Combine(d, StateFile)))
            .Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>A checkpoint folder itself, or the newest checkpoint of a run folder.</summary>
    public static string Checkpoint(string path)
    {
        if (File.Exists(Path.Combine(path, StateFile))) return path;
        return Checkpoints(path).LastOrDefault() ?? throw new InvalidOperationException($"'{path}' is neither a checkpoint folder nor a run folder with checkpoints");
    }

    public static RunConfig ReadConfig(string checkpointDir) =>
        JsonSerializer.Deserialize<RunConfig>(File.ReadAllText(Path.Combine(checkpointDir, ConfigFile)), Json.Options)
        ?? throw new InvalidDataException($"{checkpointDir}/{ConfigFile} is empty");

    public static TrainerState ReadState(string checkpointDir) =>
        JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(Path.Combine(checkpointDir, StateFile)), Json.Options)
        ?? throw new InvalidDataException($"{checkpointDir}/{StateFile} is empty");

    /// <summary>The run's logged steps from its metrics.jsonl, oldest first; none where the file is missing.</summary>
    public static IEnumerable<Telemetry.StepMetrics> ReadMetrics(string runDir)
    {
        var file = Path.Combine(runDir, MetricsFile);
        return File.Exists(file)
            ? File.ReadLines(file).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<Telemetry.StepMetrics>(l, Json.Options)
                ?? throw new InvalidDataException($"{file} holds a null line"))
            : [];
    }
}
