using MoTLab.Shared.Runs;
using System.CommandLine;
using MoTLab.Shared.Config;

namespace MoTLab.Training.Cli;

/// <summary>`transition`: continues a MoT checkpoint as a token-choice MoE sharing its controller and experts
/// (transition tuning), into a new run folder.</summary>
public static class TransitionCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "A MoT checkpoint folder, or its run folder (newest checkpoint)", Required = true };
        var steps = new Option<int>("--steps") { Description = "Steps to train the token-choice model", Required = true };
        var capacity = new Option<double>("--capacity-factor") { Description = "Token-choice capacity factor", DefaultValueFactory = _ => 2.0 };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto", DefaultValueFactory = _ => "auto" };
        var output = new Option<string?>("--out") { Description = "Run folder (default runs/<name>-tc-<time>)" };
        var command = new Command("transition", "Continue a MoT checkpoint as a token-choice MoE (transition tuning)") { checkpoint, steps, capacity, device, output };
        RunConfig? current = null;
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var from = RunFolder.Checkpoint(parse.GetValue(checkpoint)!);
            var mot = RunFolder.ReadConfig(from);
            if (!Transition.From(mot.Model.Ffn.Kind)) throw new UsageException($"--checkpoint: {from} is a {mot.Model.Ffn.Kind.Info().Label} model; transition starts from MoT");
            current = Transition.ToTokenChoice(mot, Path.GetFullPath(from), parse.GetValue(steps), parse.GetValue(capacity));
            TrainCommand.Train(current, parse.GetValue(output) ?? Path.Combine("runs", $"{mot.Name}-tc-{DateTime.Now:yyyyMMdd-HHmmss}"), parse.GetValue(device)!);
        }, () => current));
        return command;
    }
}
