using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;
using MoTLab.Shared.Telemetry;

namespace MoTLab.WebApp.Components.Charts;

/// <summary>What the curve controls choose: the x-axis (step, tokens, wall time, clock, FLOPs), log y, the smoothing, and on
/// Compare the metric and whether runs that differ only by seed are folded into one band. The settings are kept in the
/// browser (local storage, the same for every page) and in the page's URL, so a link reproduces the view; the URL wins.</summary>
public sealed class ChartSettings
{
    public string XAxis { get; set; } = "step";
    public bool LogY { get; set; }
    public Smoothing Smoothing { get; set; } = new();
    /// <summary>Compare: the metric drawn (a <see cref="MetricCatalog"/> key).</summary>
    public string Metric { get; set; } = "train_loss";
    /// <summary>Compare: runs whose configs differ only by train.seed drawn as their mean with a min–max band.</summary>
    public bool FoldSeeds { get; set; } = true;

    static readonly string[] XAxes = ["step", "tokens", "time", "clock", "flops"];

    /// <summary>A logged step's position on the chosen axis; FLOPs need the run's training FLOPs per token.</summary>
    public object X(StepMetrics m, double flopsPerToken) => XAxis switch
    {
        "tokens" => m.Tokens,
        "time" => m.ElapsedS,
        "clock" => DateTimeOffset.FromUnixTimeMilliseconds((long)(m.Time * 1000)).UtcDateTime,
        "flops" => m.Tokens * flopsPerToken,
        _ => m.Step,
    };

    public string XTitle => XAxis switch { "tokens" => "tokens", "time" => "wall time (s)", "clock" => "clock (UTC)", "flops" => "training FLOPs", _ => "step" };

    /// <summary>The settings as query parameters (for <c>NavigationManager.GetUriWithQueryParameters</c>).</summary>
    public Dictionary<string, object?> Query(bool compare) => new()
    {
        ["x"] = XAxis, ["logy"] = LogY ? "1" : "0", ["smooth"] = Smoothing.ToString(),
        ["metric"] = compare ? Metric : null, ["seeds"] = compare ? (FoldSeeds ? "band" : "runs") : null,
    };

    /// <summary>Applies what a URL's query says; unknown or malformed values are ignored (the link still opens).</summary>
    public void ApplyQuery(string uri)
    {
        var query = QueryHelpers.ParseQuery(new Uri(uri).Query);
        string? Get(string name) => query.TryGetValue(name, out var v) ? v.ToString() : null;
        Apply(Get("x"), Get("logy"), Get("smooth"), Get("metric"), Get("seeds"));
    }

    void Apply(string? x, string? logY, string? smooth, string? metric, string? seeds)
    {
        if (x is not null && XAxes.Contains(x)) XAxis = x;
        if (logY is "1" or "0") LogY = logY == "1";
        if (Smoothing.Parse(smooth, Smoothing) is { } parsed) Smoothing = parsed;
        if (MetricCatalog.Find(metric) is not null) Metric = metric!;
        if (seeds is "band" or "runs") FoldSeeds = seeds == "band";
    }

    public string ToJson() => JsonSerializer.Serialize(new Stored(XAxis, LogY, Smoothing.ToString(), Metric, FoldSeeds ? "band" : "runs"));

    /// <summary>Applies what local storage kept; a missing or unreadable entry changes nothing.</summary>
    public void ApplyJson(string? json)
    {
        if (string.IsNullOrEmpty(json)) return;
        try { if (JsonSerializer.Deserialize<Stored>(json) is { } s) Apply(s.X, s.LogY ? "1" : "0", s.Smooth, s.Metric, s.Seeds); }
        catch (JsonException) { }
    }

    sealed record Stored(string? X, bool LogY, string? Smooth, string? Metric, string? Seeds);
}
