using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using MoTLab.Shared.Config;

namespace MoTLab.WebApp.Components;

/// <summary>An axis as the sweep panel writes it: comma-separated values ("0.001, 0.003", "mot, token_choice") or a range
/// "MIN..MAX" with its number of points ("x5") and "log" for log spacing ("1e-4..1e-2 x5 log"). A number reads as a
/// number, true/false as a switch, anything else as text; what the text cannot be is the sweep's check to say.</summary>
public static partial class SweepAxisText
{
    [GeneratedRegex(@"^\s*(?<min>[-+0-9.eE]+)\s*\.\.\s*(?<max>[-+0-9.eE]+)\s*(?:[x×]\s*(?<n>\d+))?\s*(?<log>log)?\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex Range();

    public static SweepAxis Parse(string path, string text)
    {
        path = path.Trim();
        if (Range().Match(text) is { Success: true } m
            && double.TryParse(m.Groups["min"].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var min)
            && double.TryParse(m.Groups["max"].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var max))
            return new SweepAxis
            {
                Path = path, Min = min, Max = max, Log = m.Groups["log"].Success,
                Count = m.Groups["n"].Success && int.TryParse(m.Groups["n"].Value, CultureInfo.InvariantCulture, out var n) ? n : null,
            };
        var values = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Value).ToList();
        return new SweepAxis { Path = path, Values = values.Count > 0 ? values : null };
    }

    static JsonElement Value(string token) =>
        double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? JsonSerializer.SerializeToElement(d)
        : bool.TryParse(token, out var b) ? JsonSerializer.SerializeToElement(b)
        : JsonSerializer.SerializeToElement(token);
}
