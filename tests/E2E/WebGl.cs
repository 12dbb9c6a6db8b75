using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using MoTLab.WebApp.Tests;

namespace MoTLab.E2E;

/// <summary>Counts the WebGL contexts a page makes, and which of them are still alive with their canvas gone.</summary>
static class WebGl
{
    /// <summary>An init script: records every WebGL context the page creates.</summary>
    public const string Track = """
        (() => {
          const made = window.__motlabGl = [];
          const getContext = HTMLCanvasElement.prototype.getContext;
          HTMLCanvasElement.prototype.getContext = function (type, ...rest) {
            const c = getContext.call(this, type, ...rest);
            if (c && String(type).includes('webgl') && !made.includes(c)) made.push(c);
            return c;
          };
        })()
        """;

    /// <summary>Moves between the runs' pages in the app (no page load), as a user clicks from run to run, waiting for
    /// each loss chart; returns {made, live, leaked}: leaked counts live contexts whose canvas left the page.</summary>
    public static async Task<JsonElement> VisitRunPagesAsync(IPage page, IReadOnlyList<int> ids, int visits)
    {
        for (int i = 0; i < visits; i++)
        {
            int id = ids[i % ids.Count];
            await page.EvaluateAsync($"() => Blazor.navigateTo('/runs/{id}')");
            await page.Locator("#run-title", new() { HasText = $"#{id} " }).WaitForAsync();
            await page.WaitForFunctionAsync("() => { const g = document.getElementById('loss-plot'); return g && g.data && g.data[0] && g.data[0].x.length > 0 && g._fullLayout; }");
        }
        return await page.EvaluateAsync<JsonElement>(
            "() => { const m = window.__motlabGl; return { made: m.length, live: m.filter(c => !c.isContextLost()).length, leaked: m.filter(c => !c.isContextLost() && !c.canvas.isConnected).length }; }");
    }
}

/// <summary>Charts drawn with WebGL (every chart here: MoTLab:WebGlAbovePoints = 0) give their contexts back when the
/// user moves on: ten run pages in the app leave no live context behind and no "Too many active WebGL contexts".</summary>
public sealed class WebGlChartsAreReleased : InChromium
{
    readonly DashboardFactory dashboard = new(null, settings: new Dictionary<string, string> { ["MoTLab:WebGlAbovePoints"] = "0" });

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        dashboard.Dispose();
    }

    [Fact]
    public async Task Ten_run_pages_with_WebGL_charts_leave_no_live_context_behind()
    {
        using var http = dashboard.Client();
        var ids = new List<int>();
        for (int i = 0; i < 2; i++)
        {
            var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 20 });
            ids.Add((await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32());
        }
        foreach (var id in ids) await http.WaitForRunAsync(id, r => r.Status() == "completed");

        var (page, problems) = await OpenAsync(dashboard.BaseAddress);
        await page.GotoAsync("/");
        await page.Locator("#runs-table").WaitForAsync();
        var gl = await WebGl.VisitRunPagesAsync(page, ids, 10);
        Assert.True(gl.GetProperty("made").GetInt32() >= 40, $"the four charts of each page should have drawn with WebGL: {gl}");
        Assert.True(gl.GetProperty("leaked").GetInt32() == 0, $"WebGL contexts of charts no longer on the page are still alive: {gl}");
        problems.AssertNone("moving between run pages with WebGL charts");
    }
}
