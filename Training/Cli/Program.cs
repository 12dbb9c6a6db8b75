using System.CommandLine;
using MoTLab.Training.Cli;

// MoTLab.Training: train, benchmark and sample GPT models with dense, MoT or MoE feed-forwards.
var root = new RootCommand("MoTLab training engine: dense, Mixture-of-Tokens and Mixture-of-Experts GPT models")
{
    TrainCommand.Create(),
    PresetsCommand.Create(),
    BenchCommand.Create(),
    SampleCommand.Create(),
};
return root.Parse(args).Invoke();
