using System.Data.Common;
using System.Reflection;
using System.Text.Json;
using MoTLab.Shared.Telemetry;

namespace MoTLab.WebApp.Data;

/// <summary>The Metrics table's value columns: one per number of <see cref="StepMetrics"/>, named as its property, in
/// its declaration order (Step and Tokens are the row's own columns, EvalExtra its JSON column). A metric added to
/// StepMetrics is stored, read back and exported through this list alone, once a migration adds its column.
/// SQLite has no NaN (it stores NaN as NULL): a NaN is written NULL and its key named in the row's NotANumber, and a
/// NULL of a metric every step has (a non-nullable property) reads back as NaN.</summary>
public static class MetricColumns
{
    /// <summary>One value column: its name (the property's), its key (metrics.jsonl's and the CSV's), and whether the
    /// metric may be absent from a step.</summary>
    public sealed record Column(string Name, string Key, bool Optional, Func<StepMetrics, double?> Get, Action<StepMetrics, double?> Set);

    public static readonly IReadOnlyList<Column> All = typeof(StepMetrics).GetProperties()
        .Where(p => p.PropertyType == typeof(double) || p.PropertyType == typeof(double?))
        .OrderBy(p => p.MetadataToken)
        .Select(Of)
        .ToList();

    static Column Of(PropertyInfo p)
    {
        var key = JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name);
        if (p.PropertyType == typeof(double?))
        {
            var get = p.GetMethod!.CreateDelegate<Func<StepMetrics, double?>>();
            var set = p.SetMethod!.CreateDelegate<Action<StepMetrics, double?>>();   // init-only: used on rows being built
            return new(p.Name, key, true, get, set);
        }
        var getValue = p.GetMethod!.CreateDelegate<Func<StepMetrics, double>>();
        var setValue = p.SetMethod!.CreateDelegate<Action<StepMetrics, double>>();
        return new(p.Name, key, false, m => getValue(m), (m, v) => setValue(m, v ?? double.NaN));
    }

    static readonly JsonSerializerOptions ExtraJson = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>Maps the columns (EF shadow properties of <see cref="MetricRow"/>, nullable REAL).</summary>
    public static void Map(Microsoft.EntityFrameworkCore.Metadata.Builders.EntityTypeBuilder<MetricRow> e)
    {
        foreach (var c in All) e.Property<double?>(c.Name);
    }

    /// <summary>Adds <paramref name="m"/> of run <paramref name="runId"/> to <paramref name="db"/> (saved with its changes).</summary>
    public static void Add(MoTLabDb db, int runId, StepMetrics m)
    {
        var nan = new List<string>();
        var entry = db.Metrics.Add(new MetricRow
        {
            RunId = runId, Step = m.Step, Tokens = m.Tokens,
            EvalExtraJson = m.EvalExtra is { Count: > 0 } x ? JsonSerializer.Serialize(x, ExtraJson) : null,
        });
        foreach (var c in All)
        {
            var v = c.Get(m);
            if (v is { } d && double.IsNaN(d)) { nan.Add(c.Key); v = null; }
            entry.Property(c.Name).CurrentValue = v;
        }
        entry.Entity.NotANumber = nan.Count > 0 ? string.Join(',', nan) : null;
    }

    /// <summary>The SELECT list <see cref="Read"/> reads, in its order.</summary>
    public static readonly string SelectList = "Step, Tokens, EvalExtraJson, NotANumber, " + string.Join(", ", All.Select(c => c.Name));

    /// <summary>The step of the reader's current row, selected with <see cref="SelectList"/>.</summary>
    public static StepMetrics Read(DbDataReader r)
    {
        var nan = r.IsDBNull(3) ? [] : r.GetString(3).Split(',');
        var m = new StepMetrics
        {
            Step = r.GetInt64(0), Tokens = r.GetInt64(1),
            EvalExtra = r.IsDBNull(2) ? null : JsonSerializer.Deserialize<Dictionary<string, double>>(r.GetString(2), ExtraJson),
        };
        for (int i = 0; i < All.Count; i++)
        {
            var c = All[i];
            c.Set(m, !r.IsDBNull(4 + i) ? r.GetDouble(4 + i) : !c.Optional || nan.Contains(c.Key) ? double.NaN : null);
        }
        return m;
    }

    /// <summary>The CSV of a run's steps: a header of the keys, then one line per step.</summary>
    public static readonly string CsvHeader = "step,tokens," + string.Join(',', All.Select(c => c.Key)) + "\n";

    public static string CsvLine(StepMetrics m) =>
        string.Join(',', [m.Step.ToString(System.Globalization.CultureInfo.InvariantCulture), m.Tokens.ToString(System.Globalization.CultureInfo.InvariantCulture),
            .. All.Select(c => CsvNumber(c.Get(m)))]) + "\n";

    /// <summary>A value as every CSV of the dashboard writes it: round-trip precision, invariant culture, empty when absent.</summary>
    public static string CsvNumber(double? v) => v?.ToString("R", System.Globalization.CultureInfo.InvariantCulture) ?? "";
}
