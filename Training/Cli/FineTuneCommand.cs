using MoTLab.Shared.Runs;
using System.CommandLine;
using MoTLab.Shared.Config;

namespace MoTLab.Training.Cli;

/// <summary>`finetune`: a dense checkpoint, frozen, fine-tuned with MoV or MoLoRA lightweight experts, into a new run folder.</summary>
public static class FineTuneCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "A dense checkpoint folder, or its run folder (newest checkpoint)", Required = true };
        var kind = new Option<string>("--kind") { Description = "mov ((IA)³ vectors) or molora (LoRA adapters)", Required = true };
        var experts = new Option<int>("--experts") { Description = "Lightweight experts per block", DefaultValueFactory = _ => 4 };
        var rank = new Option<int>("--rank") { Description = "MoLoRA adapter rank", DefaultValueFactory = _ => 4 };
        var steps = new Option<int>("--steps") { Description = "Steps to train the routers and experts", Required = true };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate (default: the dense run's)" };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto", DefaultValueFactory = _ => "auto" };
        var output = new Option<string?>("--out") { Description = "Run folder (default runs/<name>-<kind>-<time>)" };
        var command = new Command("finetune", "Fine-tune a frozen dense checkpoint with MoV or MoLoRA lightweight experts") { checkpoint, kind, experts, rank, steps, lr, device, output };
        RunConfig? current = null;
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var k = parse.GetValue(kind)!.ToLowerInvariant() switch
            {
                "mov" => FfnKind.MoV, "molora" => FfnKind.MoLoRA,
                var other => throw new UsageException($"--kind: '{other}' is neither mov nor molora"),
            };
            var from = RunFolder.Checkpoint(parse.GetValue(checkpoint)!);
            var dense = RunFolder.ReadConfig(from);
            if (!FineTune.From(dense.Model.Ffn.Kind)) throw new UsageException($"--checkpoint: {from} is a {dense.Model.Ffn.Kind.Info().Label} model; lightweight experts fine-tune a dense one");
            current = FineTune.WithLightweightExperts(dense, Path.GetFullPath(from), k, parse.GetValue(experts), parse.GetValue(rank), parse.GetValue(steps), parse.GetValue(lr));
            TrainCommand.Train(current, parse.GetValue(output) ?? Path.Combine("runs", $"{dense.Name}-{k.ToString().ToLowerInvariant()}-{DateTime.Now:yyyyMMdd-HHmmss}"), parse.GetValue(device)!);
        }, () => current));
        return command;
    }
}
