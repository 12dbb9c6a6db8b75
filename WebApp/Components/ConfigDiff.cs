using System.Text.Json;

namespace MoTLab.WebApp.Components;

/// <summary>Flattens run configs to dotted paths ("model.ffn.experts") for a side-by-side table.</summary>
public static class ConfigDiff
{
    public sealed record Row(string Path, IReadOnlyList<string> Values)
    {
        public bool Differs => Values.Distinct().Count() > 1;
    }

    public static IReadOnlyList<Row> Build(IReadOnlyList<string> configsJson)
    {
        var flat = configsJson.Select(j => { var d = new Dictionary<string, string>(); Flatten(JsonDocument.Parse(j).RootElement, "", d); return d; }).ToList();
        return flat.SelectMany(f => f.Keys).Distinct().Order(StringComparer.Ordinal)
            .Select(k => new Row(k, flat.Select(f => f.GetValueOrDefault(k, "—")).ToList())).ToList();
    }

    /// <summary>What a run's config is apart from its seed (and name): runs with the same key are seeds of one experiment.</summary>
    public static string SeedGroupKey(string configJson)
    {
        var flat = new Dictionary<string, string>();
        Flatten(JsonDocument.Parse(configJson).RootElement, "", flat);
        return string.Join('\n', flat.Where(kv => kv.Key is not ("train.seed" or "name")).OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));
    }

    static void Flatten(JsonElement e, string prefix, Dictionary<string, string> into)
    {
        if (e.ValueKind == JsonValueKind.Object)
            foreach (var p in e.EnumerateObject()) Flatten(p.Value, prefix.Length == 0 ? p.Name : $"{prefix}.{p.Name}", into);
        else into[prefix] = e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();
    }
}
