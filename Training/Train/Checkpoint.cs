using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.Training.Model;
using static TorchSharp.torch;

namespace MoTLab.Training.Train;

/// <summary>Writes and loads a checkpoint folder (<see cref="RunFolder"/>): model.safetensors (the weights, readable by
/// PyTorch's safetensors loader), optimizer.bin, rng.bin (torch CPU generator), state.json, config.json. Written to a
/// temporary folder and renamed, so a crash never leaves half a checkpoint. Folders from before safetensors have model.bin.</summary>
public static class Checkpoint
{
    public static string Save(string runDir, RunConfig config, Gpt model, AdamW optimizer, TrainerState state, int keep = 2)
    {
        var final = RunFolder.CheckpointAt(runDir, state.Step);
        var tmp = final + ".tmp";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        SaveWeights(Path.Combine(tmp, WeightsFile), config, model);
        optimizer.Save(Path.Combine(tmp, "optimizer.bin"));
        using (var rng = get_rng_state()) File.WriteAllBytes(Path.Combine(tmp, "rng.bin"), rng.data<byte>().ToArray());
        File.WriteAllText(Path.Combine(tmp, RunFolder.ConfigFile), JsonSerializer.Serialize(config, Json.Indented));
        File.WriteAllText(Path.Combine(tmp, RunFolder.StateFile), JsonSerializer.Serialize(state, Json.Indented));
        if (Directory.Exists(final)) Directory.Delete(final, true);
        Directory.Move(tmp, final);
        foreach (var old in RunFolder.Checkpoints(runDir).SkipLast(keep)) Directory.Delete(old, true);
        return final;
    }

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
