using System.CommandLine;

namespace MoTLab.Training.Cli;

/// <summary>MoTLab.Training: train, benchmark, sample, export and serve dashboard runs for GPT models with dense,
/// Mixture-of-Tokens or Mixture-of-Experts feed-forwards.</summary>
public static class TrainingProgram
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("MoTLab training engine: dense, Mixture-of-Tokens and Mixture-of-Experts GPT models")
        {
            TrainCommand.Create(),
            PresetsCommand.Create(),
            BenchCommand.Create(),
            SampleCommand.Create(),
            WorkerCommand.Create(),
            ExportCommand.Create(),
            ReproduceCommand.Create(),
            TransitionCommand.Create(),
            FineTuneCommand.Create(),
            PlotCommand.Create(),
            CorpusCommand.Create(),
            SweepCommand.Create(),
            KernelsCommand.Create(),
        };
        return root.Parse(args).Invoke();
    }
}
