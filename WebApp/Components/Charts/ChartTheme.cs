using Plotly.Blazor;

namespace MoTLab.WebApp.Components.Charts;

/// <summary>Chart colours for the dashboard's light and dark modes: a transparent paper (the page's own background shows
/// through), text and grid lines that read on it. The layout cascades the mode to every chart as <see cref="DarkMode"/>.</summary>
public static class ChartTheme
{
    public const string DarkMode = "MoTLab.DarkMode";

    /// <summary>Applies <paramref name="dark"/>'s colours unless <paramref name="applied"/> says they are on already;
    /// true when the layout changed (a drawn chart then needs a relayout).</summary>
    public static bool Follow(Plotly.Blazor.Layout layout, bool dark, ref bool? applied)
    {
        if (applied == dark) return false;
        Apply(layout, dark);
        applied = dark;
        return true;
    }

    static void Apply(Plotly.Blazor.Layout layout, bool dark)
    {
        string text = dark ? "#e0e0e0" : "#2a2a2a", grid = dark ? "rgba(255,255,255,0.14)" : "rgba(0,0,0,0.10)", line = dark ? "rgba(255,255,255,0.35)" : "rgba(0,0,0,0.35)";
        layout.PaperBgColor = "rgba(0,0,0,0)";
        layout.PlotBgColor = "rgba(0,0,0,0)";
        layout.Font = new Plotly.Blazor.LayoutLib.Font { Color = text };
        foreach (var x in layout.XAxis ?? []) { x.GridColor = grid; x.LineColor = line; x.ZeroLineColor = line; x.Color = text; }
        foreach (var y in layout.YAxis ?? []) { y.GridColor = grid; y.LineColor = line; y.ZeroLineColor = line; y.Color = text; }
    }

    /// <summary>A "#RRGGBB" colour at 20 % opacity, for a band's fill.</summary>
    public static string? Translucent(string? colour) =>
        colour is { Length: 7 } c && c[0] == '#'
            ? $"rgba({Convert.ToInt32(c[1..3], 16)},{Convert.ToInt32(c[3..5], 16)},{Convert.ToInt32(c[5..7], 16)},0.2)"
            : colour;
}
