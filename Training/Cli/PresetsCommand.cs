using System.CommandLine;
using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;

namespace MoTLab.Training.Cli;

public static class PresetsCommand
{
    public static Command Create()
    {
        var command = new Command("presets", "List the built-in presets as JSON (name, description, parameters, FLOPs per token, config)");
        command.SetAction(_ =>
        {
            var list = Presets.All.Select(p => new
            {
                p.Name, p.Description,
                Parameters = ModelSize.Parameters(p.Config.Model),
                TrainFlopsPerToken = 3 * ModelSize.ForwardFlopsPerToken(p.Config.Model, p.Config.Train.BatchSize),
                p.Config,
            });
            Console.WriteLine(JsonSerializer.Serialize(list, Json.Indented));
        });
        return command;
    }
}
