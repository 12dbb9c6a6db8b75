using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;

namespace MoTLab.Training.Cli;

/// <summary>Builds a RunConfig from --preset or --config plus the command-line overrides.</summary>
public static class ConfigLoader
{
    public static RunConfig Load(string? preset, string? configFile)
    {
        if (preset is not null && configFile is not null) throw new UsageException("give --preset or --config, not both");
        if (preset is not null)
            return (Presets.Find(preset) ?? throw new UsageException($"unknown preset '{preset}'; known: {string.Join(", ", Presets.All.Select(p => p.Name))}")).Config;
        if (configFile is not null)
        {
            if (!File.Exists(configFile)) throw new UsageException($"config file '{configFile}' does not exist");
            try
            {
                return JsonSerializer.Deserialize<RunConfig>(File.ReadAllText(configFile), Json.Options)
                    ?? throw new UsageException($"config file '{configFile}' is empty");
            }
            catch (JsonException e) { throw new UsageException($"config file '{configFile}' is not a valid run config: {e.Message}"); }
        }
        throw new UsageException("give --preset NAME or --config FILE (see `presets`)");
    }
}

/// <summary>A mistake in how the command was called; printed without a stack trace.</summary>
public sealed class UsageException(string message) : Exception(message);
