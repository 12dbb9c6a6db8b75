using MoTLab.Shared.Runs;
using System.CommandLine;
using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using MoTLab.Training.Runtime;
using MoTLab.Training.Train;
using TorchSharp;
using static TorchSharp.torch;

namespace MoTLab.Training.Cli;

/// <summary>`export`: gives a checkpoint its model.safetensors (older checkpoints have only model.bin) and,
/// with --reference, writes reference.safetensors: a batch of token ids and MoTLab's outputs on it, so another
/// implementation (tests/benchmarks/motlab_torch.py) can be checked against MoTLab.</summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint folder, or a run folder (uses its newest checkpoint)", Required = true };
        var format = new Option<string>("--format") { Description = "Only safetensors", DefaultValueFactory = _ => "safetensors" };
        var reference = new Option<int>("--reference") { Description = "Also write reference.safetensors for a batch of this many random sequences (0 = no)" };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "cpu" };
        var precision = new Option<string>("--precision") { Description = "Compute dtype of the reference forward: fp32 or bf16", DefaultValueFactory = _ => "fp32" };
        var command = new Command("export", "Write a checkpoint's weights as safetensors (and a reference forward)") { checkpoint, format, reference, device, precision };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (parse.GetValue(format) != "safetensors") throw new UsageException("--format: only safetensors is supported");
            TorchRuntime.Initialise();
            var dir = RunFolder.Checkpoint(parse.GetValue(checkpoint)!);
            var cfg = RunFolder.ReadConfig(dir);
            var compute = parse.GetValue(precision) switch
            {
                "fp32" => ScalarType.Float32, "bf16" => ScalarType.BFloat16,
                var p => throw new UsageException($"--precision: '{p}' is not fp32 or bf16"),
            };
            using var model = new Gpt(cfg.Model, compute);
            Checkpoint.LoadModel(dir, model);
            var weights = Path.Combine(dir, Checkpoint.WeightsFile);
            if (!File.Exists(weights)) Checkpoint.SaveWeights(weights, cfg, model);
            Console.WriteLine(weights);
            if (parse.GetValue(reference) is > 0 and var batch)
                Console.WriteLine(WriteReference(model, cfg, dir, batch, TorchRuntime.ResolveDevice(parse.GetValue(device)!), parse.GetValue(precision)!));
        }));
        return command;
    }

    /// <summary>Random tokens (seed 0) through the model in eval mode: the last position's logits (B, V) and every
    /// next-token loss (B, T−1), fp32.</summary>
    static string WriteReference(Gpt model, RunConfig cfg, string dir, int batch, Device device, string precision)
    {
        if (cfg.Model.Ffn.Kind == FfnKind.MoT && batch % cfg.Model.Ffn.GroupSize != 0)
            throw new UsageException($"--reference: {batch} is not a multiple of the MoT group size");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        model.to(device).eval();
        var generator = new Generator(0);
        var ids = randint(0, cfg.Model.VocabSize, [batch, cfg.Model.SeqLen], generator: generator, dtype: ScalarType.Int64); // (B, T)
        var logits = model.forward(ids.to(device)).to_type(ScalarType.Float32).cpu();                                     // (B, T, V)
        var loss = nn.functional.cross_entropy(logits[.., ..^1].reshape(-1, cfg.Model.VocabSize), ids[.., 1..].reshape(-1),
            reduction: nn.Reduction.None).view(batch, cfg.Model.SeqLen - 1);                                               // (B, T−1)
        var path = Path.Combine(dir, "reference.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor>
        {
            ["input_ids"] = ids, ["logits_last"] = logits[.., -1].contiguous(), ["token_loss"] = loss,
        }, new Dictionary<string, string> { ["device"] = device.ToString(), ["precision"] = precision });
        return path;
    }
}
