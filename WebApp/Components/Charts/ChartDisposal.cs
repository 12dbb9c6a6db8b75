using Microsoft.JSInterop;

namespace MoTLab.WebApp.Components.Charts;

static class ChartDisposal
{
    /// <summary>A key for one chart's graph element (its data-motlab-chart attribute). Element ids are reused from page
    /// to page ("loss-plot"), and by the time a page's charts are disposed the next page's may already stand in the DOM.</summary>
    public static string NewKey() => Guid.NewGuid().ToString("N");

    /// <summary>Purges the Plotly graph of chart <paramref name="key"/> and gives its WebGL contexts back to the
    /// browser (wwwroot/charts.js): a page left by in-app navigation stays connected, and without this every visited
    /// run page would keep its contexts until Chromium drops the oldest ("Too many active WebGL contexts"). A closed tab
    /// or a dropped circuit has nothing left to release.</summary>
    public static async ValueTask ReleaseAsync(IJSRuntime js, string key)
    {
        try { await js.InvokeVoidAsync("motlabCharts.release", key); }
        catch (Exception e) when (e is JSDisconnectedException or JSException or ObjectDisposedException or TaskCanceledException) { }
    }

    /// <summary>Downloads chart <paramref name="key"/> as <paramref name="format"/> ("png" or "svg") through Plotly's own
    /// image export, named <paramref name="fileName"/>.</summary>
    public static ValueTask ExportAsync(IJSRuntime js, string key, string format, string fileName) =>
        js.InvokeVoidAsync("motlabCharts.download", key, format, fileName);
}

/// <summary>Text that Plotly draws (trace names, titles) reads a subset of HTML (&lt;a href&gt;, &lt;b&gt;, &lt;br&gt;):
/// user text is escaped so a run named "&lt;a href=…&gt;" shows as those characters, never as a link.</summary>
public static class ChartText
{
    public static string Escape(string text) => System.Net.WebUtility.HtmlEncode(text);
}
