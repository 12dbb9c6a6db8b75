using System.Globalization;
using MoTLab.Shared.Config;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Components;

/// <summary>What a Runs-table row knows of its run: the row, its parsed config, and its reach (the share of the chosen
/// baseline's steps at which it first got to the baseline's final eval loss; +∞ when it did not; null without a baseline).</summary>
public sealed record RunFacts(RunRow Run, RunConfig? Config, double? Reach = null);

/// <summary>The optional columns of the Runs table: summary metrics and hyperparameters, each with its text, its sort key
/// (one type per column, null for "none") and whether the table can be grouped by it.</summary>
public static class RunColumns
{
    public sealed record Column(string Key, string Title, Func<RunFacts, object?> Value, bool Default = false, bool Groupable = false, string Format = "")
    {
        public string Text(RunFacts f) => Value(f) switch
        {
            null => "–",
            double.PositiveInfinity => "did not reach",
            double d => d.ToString(Format.Length > 0 ? Format : "G4", CultureInfo.CurrentCulture),
            long or int when Format.Length > 0 => Convert.ToInt64(Value(f), CultureInfo.InvariantCulture).ToString(Format, CultureInfo.CurrentCulture),
            DateTime t => t.ToLocalTime().ToString("g", CultureInfo.CurrentCulture),
            var v => Convert.ToString(v, CultureInfo.CurrentCulture) ?? "–",
        };

        public object? SortKey(RunFacts f) => Value(f);
    }

    public static readonly IReadOnlyList<Column> All =
    [
        new("kind", "Kind", f => f.Run.Kind.Info().Label, Default: true, Groupable: true),
        new("preset", "Preset", f => f.Run.Preset, Groupable: true),
        new("last_loss", "Train loss (last)", f => f.Run.LastLoss, Default: true, Format: "F3"),
        new("last_eval", "Eval loss (last)", f => f.Run.LastEvalLoss, Default: true, Format: "F3"),
        new("best_eval", "Eval loss (best)", f => f.Run.BestEvalLoss, Default: true, Format: "F3"),
        new("tokens", "Tokens", f => f.Config is null ? null : f.Run.LastStep * f.Config.Train.BatchSize * (long)f.Config.Model.SeqLen, Format: "N0"),
        new("reach", "Reach (of the baseline's steps)", f => f.Reach, Format: "P0"),
        new("tok_s", "tok/s", f => f.Run.TokensPerS, Default: true, Format: "N0"),
        new("params", "Parameters", f => f.Run.Parameters, Format: "N0"),
        new("lr", "Learning rate", f => f.Config?.Train.LearningRate, Groupable: true, Format: "G3"),
        new("batch", "Batch", f => f.Config?.Train.BatchSize, Groupable: true),
        new("steps", "Steps", f => f.Run.TotalSteps, Groupable: true),
        new("seed", "Seed", f => f.Config?.Train.Seed, Groupable: true),
        new("d_model", "d_model", f => f.Config?.Model.DModel, Groupable: true),
        new("layers", "Layers", f => f.Config?.Model.Layers, Groupable: true),
        new("experts", "Experts", f => f.Config is null || f.Config.Model.Ffn.Kind == FfnKind.Dense ? null : f.Config.Model.Ffn.Experts, Groupable: true),
        new("group_size", "Group size", f => f.Config?.Model.Ffn.Kind == FfnKind.MoT ? f.Config.Model.Ffn.GroupSize : null, Groupable: true),
        new("corpus", "Corpus", f => f.Config?.Data.Corpus, Groupable: true),
        new("device", "Device", f => f.Run.Device, Groupable: true),
        new("tags", "Tags", f => f.Run.Tags, Default: true, Groupable: true),
        new("created", "Created", f => f.Run.CreatedAt, Default: true),
    ];

    public static Column? Find(string? key) => All.FirstOrDefault(c => c.Key == key);
}
