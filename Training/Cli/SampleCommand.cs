using MoTLab.Training.Data;
using MoTLab.Shared.Runs;
using System.CommandLine;
using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using MoTLab.Training.Runtime;
using MoTLab.Training.Train;
using TorchSharp;

namespace MoTLab.Training.Cli;

/// <summary>`sample`: generate text from a checkpoint.</summary>
public static class SampleCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint folder, or a run folder (uses its newest checkpoint)", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "Text to continue", DefaultValueFactory = _ => "" };
        var tokens = new Option<int>("--tokens") { Description = "Tokens to generate", DefaultValueFactory = _ => 200 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature (0 = greedy)", DefaultValueFactory = _ => 0.8 };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0 = all)", DefaultValueFactory = _ => 40 };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "cpu" };
        var command = new Command("sample", "Generate text from a checkpoint") { checkpoint, prompt, tokens, temperature, topK, seed, device };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var dir = RunFolder.Checkpoint(parse.GetValue(checkpoint)!);
            var cfg = RunFolder.ReadConfig(dir);
            var dev = TorchRuntime.ResolveDevice(parse.GetValue(device)!);
            using var model = new Gpt(cfg.Model);
            Checkpoint.LoadModel(dir, model);
            model.to(dev);
            if (cfg.Model.Ffn.Kind == FfnKind.MoT)
                Console.Error.WriteLine("note: MoT at batch 1 has no group to mix; each token is routed whole to its highest-scoring expert (discrete routing).");
            var tokenizer = Tokenizers.Create(cfg.Data.Tokenizer);
            Console.WriteLine(Sampler.Generate(model, tokenizer, parse.GetValue(prompt)!, parse.GetValue(tokens), parse.GetValue(temperature), parse.GetValue(topK), parse.GetValue(seed), dev));
        }));
        return command;
    }
}
