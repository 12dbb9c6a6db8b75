using System.Globalization;
using MoTLab.Shared.Config;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Components;

/// <summary>The optional columns of the Runs table: summary metrics and hyperparameters, each with its text, its sort key
/// (one type per column, null for "none") and whether the table can be grouped by it.</summary>
public static class RunColumns
{
    public sealed record Column(string Key, string Title, Func<RunRow, RunConfig?, object?> Value, bool Default = false, bool Groupable = false, string Format = "")
    {
        public string Text(RunRow r, RunConfig? c) => Value(r, c) switch
        {
            null => "–",
            double d => d.ToString(Format.Length > 0 ? Format : "G4", CultureInfo.CurrentCulture),
            long or int when Format.Length > 0 => Convert.ToInt64(Value(r, c), CultureInfo.InvariantCulture).ToString(Format, CultureInfo.CurrentCulture),
            DateTime t => t.ToLocalTime().ToString("g", CultureInfo.CurrentCulture),
            var v => Convert.ToString(v, CultureInfo.CurrentCulture) ?? "–",
        };

        public object? SortKey(RunRow r, RunConfig? c) => Value(r, c);
    }

    public static readonly IReadOnlyList<Column> All =
    [
        new("kind", "Kind", (r, _) => r.Kind, Default: true, Groupable: true),
        new("preset", "Preset", (r, _) => r.Preset, Groupable: true),
        new("last_loss", "Train loss (last)", (r, _) => r.LastLoss, Default: true, Format: "F3"),
        new("last_eval", "Eval loss (last)", (r, _) => r.LastEvalLoss, Default: true, Format: "F3"),
        new("best_eval", "Eval loss (best)", (r, _) => r.BestEvalLoss, Default: true, Format: "F3"),
        new("tokens", "Tokens", (r, c) => c is null ? null : r.LastStep * c.Train.BatchSize * (long)c.Model.SeqLen, Format: "N0"),
        new("tok_s", "tok/s", (r, _) => r.TokensPerS, Default: true, Format: "N0"),
        new("params", "Parameters", (r, _) => r.Parameters, Format: "N0"),
        new("lr", "Learning rate", (r, c) => c?.Train.LearningRate, Groupable: true, Format: "G3"),
        new("batch", "Batch", (r, c) => c?.Train.BatchSize, Groupable: true),
        new("steps", "Steps", (r, _) => r.TotalSteps, Groupable: true),
        new("seed", "Seed", (r, c) => c?.Train.Seed, Groupable: true),
        new("d_model", "d_model", (r, c) => c?.Model.DModel, Groupable: true),
        new("layers", "Layers", (r, c) => c?.Model.Layers, Groupable: true),
        new("experts", "Experts", (r, c) => c is null || c.Model.Ffn.Kind == FfnKind.Dense ? null : c.Model.Ffn.Experts, Groupable: true),
        new("group_size", "Group size", (r, c) => c?.Model.Ffn.Kind == FfnKind.MoT ? c.Model.Ffn.GroupSize : null, Groupable: true),
        new("corpus", "Corpus", (r, c) => c?.Data.Corpus, Groupable: true),
        new("device", "Device", (r, _) => r.Device, Groupable: true),
        new("tags", "Tags", (r, _) => r.Tags, Default: true, Groupable: true),
        new("created", "Created", (r, _) => r.CreatedAt, Default: true),
    ];

    public static Column? Find(string? key) => All.FirstOrDefault(c => c.Key == key);
}
