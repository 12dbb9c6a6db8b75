using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace MoTLab.Shared.Config;

/// <summary>A sweep: a base config (a preset, or a whole config such as a run's to copy) and the axes it varies, each
/// a config path (<c>train.learning_rate</c>, <c>model.ffn.group_size</c>, <c>train.seed</c>, …). A grid takes every
/// combination of the axes' values; a random search draws <see cref="Runs"/> points. The sweep's runs are ordinary runs.</summary>
public sealed record SweepSpec
{
    public string Name { get; init; } = "sweep";
    public string? Preset { get; init; }
    /// <summary>The base config when there is no preset (the New-run form's config, or a run's).</summary>
    public RunConfig? Config { get; init; }
    /// <summary>"grid" or "random".</summary>
    public string Method { get; init; } = Sweeps.Grid;
    /// <summary>Random search: how many runs to draw.</summary>
    public int? Runs { get; init; }
    /// <summary>Random search: the seed of the draw (the same seed draws the same runs).</summary>
    public long Seed { get; init; }
    public IReadOnlyList<SweepAxis> Axes { get; init; } = [];
    /// <summary>Where the runs train (cpu, cuda, slurm, remote), as for one run.</summary>
    public string? Device { get; init; }
    public IReadOnlyList<string>? Tags { get; init; }
}

/// <summary>One axis: its config path and either its values (a grid takes each, a random search picks among them) or a
/// range (a grid takes <see cref="Count"/> points from <see cref="Min"/> to <see cref="Max"/>, evenly or, with
/// <see cref="Log"/>, evenly in the logarithm; a random search draws uniformly or log-uniformly). A whole-number field
/// takes the points rounded.</summary>
public sealed record SweepAxis
{
    public string Path { get; init; } = "";
    public IReadOnlyList<JsonElement>? Values { get; init; }
    public double? Min { get; init; }
    public double? Max { get; init; }
    public int? Count { get; init; }
    public bool Log { get; init; }
}

/// <summary>One run of a sweep: its value on each axis (by path) and its config.</summary>
public sealed record SweepPoint(IReadOnlyDictionary<string, JsonElement> Values, RunConfig Config)
{
    /// <summary>"learning_rate=0.003 experts=8": the axes' last path segments and values.</summary>
    public string Label => string.Join(' ', Values.Select(v => $"{v.Key.Split('.')[^1]}={Sweeps.Text(v.Value)}"));
}

/// <summary>Expanding a <see cref="SweepSpec"/> into its runs' configs, with every problem as a field error (a path into
/// the spec, "axes[1].values"). Each config still goes through the run validator where it is launched.</summary>
public static class Sweeps
{
    public const string Grid = "grid", Random = "random";

    /// <summary>The sweep's run count, or null when the axes do not say it (an error <see cref="Expand"/> names).</summary>
    public static long? Count(SweepSpec spec) => spec.Method switch
    {
        Random => spec.Runs,
        Grid when spec.Axes.Count > 0 && spec.Axes.All(a => Points(a) is > 0) =>
            spec.Axes.Aggregate(1L, (n, a) => n > long.MaxValue / Points(a)!.Value ? long.MaxValue : n * Points(a)!.Value),   // saturates: never wraps below the cap
        _ => null,
    };

    /// <summary>A grid axis's number of points: its values, or its range's points once whole-number fields are rounded.</summary>
    static int? Points(SweepAxis? a) => a switch
    {
        null => null,
        { Values.Count: > 0 } => a.Values.Count,
        { Min: { } min, Max: { } max, Count: > 0 } when Finite(min, max) && min <= max && FieldType(a.Path) is { } type => RangePoints(a, type).Count,
        _ => null,
    };

    static bool Finite(double min, double max) => double.IsFinite(min) && double.IsFinite(max) && double.IsFinite(max - min);

    /// <summary>The runs of <paramref name="spec"/> from <paramref name="baseConfig"/>, at most <paramref name="cap"/>,
    /// or the errors that prevent them (nothing is expanded then).</summary>
    public static (IReadOnlyList<SweepPoint> Points, IReadOnlyList<ConfigError> Errors) Expand(SweepSpec spec, RunConfig baseConfig, int cap)
    {
        var errors = new List<ConfigError>();
        void Check(bool ok, string field, string message) { if (!ok) errors.Add(new(field, message)); }
        Check(spec.Method is Grid or Random, "method", "must be grid or random");
        Check(spec.Axes.Count > 0, "axes", "a sweep needs at least one axis");
        Check(!string.IsNullOrWhiteSpace(spec.Name) && spec.Name.Length <= 100, "name", "must be 1–100 characters");
        for (int i = 0; i < spec.Axes.Count; i++)
        {
            var a = spec.Axes[i];
            string at = $"axes[{i}]";
            if (a is null) { errors.Add(new(at, "an axis: its path, and its values or a range")); continue; }
            var type = FieldType(a.Path);
            Check(type is not null, $"{at}.path", $"'{a.Path}' is no config field that takes a value (e.g. {string.Join(", ", Paths().Take(4))})");
            Check(spec.Axes.Take(i).All(b => b?.Path != a.Path), $"{at}.path", $"'{a.Path}' is swept twice");
            bool hasValues = a.Values is { Count: > 0 }, hasRange = a.Min is not null || a.Max is not null;
            Check(hasValues || hasRange, at, "give its values, or a range (min and max)");
            Check(!(hasValues && hasRange), at, "give its values or a range, not both");
            if (hasRange)
            {
                Check(a.Min is not null && a.Max is not null && a.Min <= a.Max, $"{at}.min", "a range needs min ≤ max");
                Check(a.Min is not { } mn || a.Max is not { } mx || Finite(mn, mx), $"{at}.min", "a range's ends must be finite numbers, and so must their difference");
                Check(!a.Log || a.Min > 0, $"{at}.min", "a log range needs min > 0");
                Check(spec.Method == Random || a.Count is >= 1 and <= 1000, $"{at}.count", "a grid over a range needs its number of points (1–1000)");
                Check(type is null || IsNumber(type), $"{at}.min", $"'{a.Path}' is not a number: give its values");
            }
        }
        if (spec.Method == Random) Check(spec.Runs is >= 1, "runs", "a random search needs the number of runs to draw (≥ 1)");
        if (errors.Count > 0) return ([], errors);
        long count = Count(spec)!.Value;
        if (count > cap) return ([], [new(spec.Method == Grid ? "axes" : "runs", $"the sweep would launch {count:N0} runs, more than the {cap:N0} a sweep may have (MoTLab:MaxSweepRuns)")]);

        var rng = new Random(unchecked((int)spec.Seed ^ (int)(spec.Seed >> 32)));
        var axisValues = spec.Axes.Select(a => a.Values?.ToList() ?? (spec.Method == Grid ? RangePoints(a, FieldType(a.Path)!) : null)).ToList();
        var combos = spec.Method == Grid
            ? Product(axisValues.Select(v => v!.Count).ToList()).Select(ix => ix.Select((k, j) => axisValues[j]![k]).ToList())
            : Enumerable.Range(0, (int)count).Select(_ => spec.Axes.Select((a, j) => axisValues[j] is { } vs ? vs[rng.Next(vs.Count)] : Draw(a, FieldType(a.Path)!, rng)).ToList());
        var root = JsonSerializer.SerializeToNode(baseConfig, Json.Options)!.AsObject();
        var points = new List<SweepPoint>();
        int run = 0;
        foreach (var combo in combos)
        {
            var node = root.DeepClone().AsObject();
            var values = new Dictionary<string, JsonElement>();
            for (int j = 0; j < combo.Count; j++) { Set(node, spec.Axes[j].Path, combo[j]); values[spec.Axes[j].Path] = combo[j]; }
            try
            {
                var cfg = node.Deserialize<RunConfig>(Json.Options)!;
                var point = new SweepPoint(values, cfg with { Name = $"{spec.Name} {string.Join(' ', values.Select(v => $"{v.Key.Split('.')[^1]}={Text(v.Value)}"))}" });
                points.Add(point);
            }
            catch (JsonException e)
            {
                errors.Add(new($"runs[{run}]", $"{string.Join(", ", values.Select(v => $"{v.Key} = {Text(v.Value)}"))}: not a value the config takes ({e.Message.Split(" Path:")[0]})"));
            }
            run++;
        }
        return errors.Count > 0 ? ([], errors) : (points, []);
    }

    /// <summary>The value at <paramref name="path"/> of a config as JSON (a run's config.json), or null when it has none.</summary>
    public static JsonElement? ValueAt(string configJson, string path)
    {
        JsonNode? node = JsonNode.Parse(configJson);
        foreach (var part in path.Split('.')) node = node is JsonObject o ? o[part] : null;
        return node is null ? null : JsonSerializer.SerializeToElement(node);
    }

    /// <summary>A value as a label shows it (strings without quotes, numbers as written).</summary>
    public static string Text(JsonElement v) => v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText();

    /// <summary>The grid points of a range axis, rounded for a whole-number field (repeats dropped).</summary>
    static List<JsonElement> RangePoints(SweepAxis a, Type type)
    {
        double min = a.Min!.Value, max = a.Max!.Value; int n = a.Count!.Value;
        var xs = Enumerable.Range(0, n).Select(k => n == 1 ? min : a.Log
            ? Math.Exp(Math.Log(min) + (Math.Log(max) - Math.Log(min)) * k / (n - 1))
            : min + (max - min) * k / (n - 1));
        return xs.Select(x => Number(x, type)).DistinctBy(e => e.GetRawText()).ToList();
    }

    static JsonElement Draw(SweepAxis a, Type type, Random rng)
    {
        double u = rng.NextDouble(), min = a.Min!.Value, max = a.Max!.Value;
        return Number(a.Log ? Math.Exp(Math.Log(min) + (Math.Log(max) - Math.Log(min)) * u) : min + (max - min) * u, type);
    }

    /// <summary>A number for a field: rounded to a whole number for int and long fields, else to 4 significant digits
    /// (a learning rate of 0.0031622776601683794 reads as 0.003162).</summary>
    static JsonElement Number(double x, Type type) => IsWhole(type)
        ? JsonSerializer.SerializeToElement((long)Math.Round(x))
        : JsonSerializer.SerializeToElement(double.Parse(x.ToString("G4", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));

    static IEnumerable<int[]> Product(List<int> sizes)
    {
        var ix = new int[sizes.Count];
        while (true)
        {
            yield return (int[])ix.Clone();
            int d = sizes.Count - 1;
            while (d >= 0 && ++ix[d] == sizes[d]) ix[d--] = 0;
            if (d < 0) yield break;
        }
    }

    static void Set(JsonObject node, string path, JsonElement value)
    {
        var parts = path.Split('.');
        for (int i = 0; i < parts.Length - 1; i++)
            node = node[parts[i]] as JsonObject ?? (JsonObject)(node[parts[i]] = new JsonObject());
        node[parts[^1]] = JsonNode.Parse(value.GetRawText());
    }

    /// <summary>The type of the config field at <paramref name="path"/> (snake_case, as in config.json), or null when the
    /// path names no field that holds one value (a number, text, a switch or a kind).</summary>
    public static Type? FieldType(string path)
    {
        var type = typeof(RunConfig);
        foreach (var part in path.Split('.'))
        {
            var info = Json.Options.GetTypeInfo(type);
            if (info.Kind != JsonTypeInfoKind.Object || info.Properties.FirstOrDefault(p => p.Name == part) is not { } property) return null;
            type = property.PropertyType;
        }
        return IsValue(type) ? type : null;
    }

    /// <summary>Every config path a sweep can vary, in config order.</summary>
    public static IReadOnlyList<string> Paths() => PathsCache ??= [.. PathsOf(typeof(RunConfig), "")];
    static List<string>? PathsCache;

    static IEnumerable<string> PathsOf(Type type, string prefix)
    {
        foreach (var p in Json.Options.GetTypeInfo(type).Properties)
        {
            var path = prefix + p.Name;
            if (path is "name" or "preset" || p.PropertyType == typeof(string) && path.EndsWith("init_from", StringComparison.Ordinal)) continue;
            if (IsValue(p.PropertyType)) yield return path;
            else if (Json.Options.GetTypeInfo(p.PropertyType).Kind == JsonTypeInfoKind.Object)
                foreach (var inner in PathsOf(p.PropertyType, path + ".")) yield return inner;
        }
    }

    static bool IsValue(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        return t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal);
    }

    static bool IsWhole(Type t) => (Nullable.GetUnderlyingType(t) ?? t) is var u && (u == typeof(int) || u == typeof(long));

    static bool IsNumber(Type t) => (Nullable.GetUnderlyingType(t) ?? t) is var u && (u == typeof(int) || u == typeof(long) || u == typeof(double) || u == typeof(float));
}
