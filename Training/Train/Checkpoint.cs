using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using static TorchSharp.torch;

namespace MoTLab.Training.Train;

/// <summary>Where training stood when a checkpoint was written. The data position is the step
/// (batches are a function of seed and step), so this plus the tensors is everything a resume needs.</summary>
public sealed record TrainerState(long Step, long Tokens, double ElapsedS, double? LastTrainLoss, double? LastEvalLoss);

/// <summary>A checkpoint folder: model.safetensors (the weights, readable by PyTorch's safetensors loader),
/// optimizer.bin, rng.bin (torch CPU generator), state.json, config.json. Written to a temporary folder and
/// renamed, so a crash never leaves half a checkpoint. Folders from before safetensors have model.bin.</summary>
public static class Checkpoint
{
    public static string Save(string runDir, RunConfig config, Gpt model, AdamW optimizer, TrainerState state, int keep = 2)
    {
        var root = Path.Combine(runDir, "checkpoints");
        var final = Path.Combine(root, $"step-{state.Step:D8}");
        var tmp = final + ".tmp";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        SaveWeights(Path.Combine(tmp, WeightsFile), config, model);
        optimizer.Save(Path.Combine(tmp, "optimizer.bin"));
        using (var rng = get_rng_state()) File.WriteAllBytes(Path.Combine(tmp, "rng.bin"), rng.data<byte>().ToArray());
        File.WriteAllText(Path.Combine(tmp, "config.json"), JsonSerializer.Serialize(config, Json.Indented));
        File.WriteAllText(Path.Combine(tmp, "state.json"), JsonSerializer.Serialize(state, Json.Indented));
        if (Directory.Exists(final)) Directory.Delete(final, true);
        Directory.Move(tmp, final);
        foreach (var old in List(runDir).SkipLast(keep)) Directory.Delete(old, true);
        return final;
    }

    /// <summary>Complete checkpoint folders of a run, oldest first.</summary>
    public static IReadOnlyList<string> List(string runDir)
    {
        var root = Path.Combine(runDir, "checkpoints");
        if (!Directory.Exists(root)) return [];
        return Directory.GetDirectories(root, "step-*").Where(d => !d.EndsWith(".tmp") && File.Exists(Path.Combine(d, "state.json")))
            .Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>A checkpoint folder itself, or the newest checkpoint of a run folder.</summary>
    public static string Resolve(string path)
    {
        if (File.Exists(Path.Combine(path, "state.json"))) return path;
        return List(path).LastOrDefault() ?? throw new InvalidOperationException($"'{path}' is neither a checkpoint folder nor a run folder with checkpoints");
    }

    public static RunConfig ReadConfig(string checkpointDir) =>
        JsonSerializer.Deserialize<RunConfig>(File.ReadAllText(Path.Combine(checkpointDir, "config.json")), Json.Options)
        ?? throw new InvalidDataException($"{checkpointDir}/config.json is empty");

    public static TrainerState ReadState(string checkpointDir) =>
        JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(Path.Combine(checkpointDir, "state.json")), Json.Options)
        ?? throw new InvalidDataException($"{checkpointDir}/state.json is empty");

    /// <summary>Loads the model weights; a checkpoint of another architecture is a clear error.</summary>
    public const string WeightsFile = "model.safetensors";

    /// <summary>The model's weights as safetensors, its config (JSON) in the metadata so the file stands alone.</summary>
    public static void SaveWeights(string path, RunConfig config, Gpt model) =>
        SafeTensors.Save(path, model.state_dict(), new Dictionary<string, string>
        {
            ["format"] = "pt", ["motlab_config"] = JsonSerializer.Serialize(config, Json.Options),
        });

    /// <summary>Loads the model weights; a checkpoint of another architecture is a clear error naming the differences.</summary>
    /// <param name="rename">Maps a stored name to the model's (null drops it), e.g. for a MoT → token-choice transition.</param>
    /// <param name="fresh">Weights of the model the checkpoint need not hold; they keep their initial values (the
    /// routers and experts added by a lightweight-experts fine-tune).</param>
    public static void LoadModel(string checkpointDir, Gpt model, Func<string, string?>? rename = null, Func<string, bool>? fresh = null)
    {
        var path = Path.Combine(checkpointDir, WeightsFile);
        if (!File.Exists(path) && rename is null) { LoadLegacy(checkpointDir, model); return; }
        var (stored, _) = SafeTensors.Load(path);
        var tensors = rename is null ? stored : stored.Where(kv => rename(kv.Key) is not null).ToDictionary(kv => rename(kv.Key)!, kv => kv.Value);
        try
        {
            var expected = model.state_dict();
            var problems = expected.Keys.Except(tensors.Keys).Where(k => fresh?.Invoke(k) != true).Select(k => $"missing {k}")
                .Concat(tensors.Keys.Except(expected.Keys).Select(k => $"unexpected {k}"))
                .Concat(expected.Keys.Intersect(tensors.Keys).Where(k => !expected[k].shape.SequenceEqual(tensors[k].shape))
                    .Select(k => $"{k} is [{string.Join(", ", tensors[k].shape)}], the model has [{string.Join(", ", expected[k].shape)}]"))
                .ToList();
            if (problems.Count > 0)
                throw new InvalidOperationException($"checkpoint '{checkpointDir}' does not match the model: {string.Join("; ", problems.Take(5))}" +
                    (problems.Count > 5 ? $" and {problems.Count - 5} more" : ""));
            using (no_grad()) foreach (var (name, t) in expected) if (tensors.TryGetValue(name, out var v)) t.copy_(v);
        }
        finally { foreach (var t in stored.Values) t.Dispose(); }
    }

    /// <summary>model.bin (TorchSharp's own format), written before checkpoints used safetensors.</summary>
    static void LoadLegacy(string checkpointDir, Gpt model)
    {
        try { model.load(Path.Combine(checkpointDir, "model.bin"), strict: true); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IndexOutOfRangeException or EndOfStreamException)
        { throw new InvalidOperationException($"checkpoint '{checkpointDir}' does not match the model: {e.Message}", e); }
    }

    public static void LoadOptimizerAndRng(string checkpointDir, AdamW optimizer)
    {
        optimizer.Load(Path.Combine(checkpointDir, "optimizer.bin"));
        var bytes = File.ReadAllBytes(Path.Combine(checkpointDir, "rng.bin"));
        using var rng = tensor(bytes, ScalarType.Byte);
        set_rng_state(rng);
    }
}
