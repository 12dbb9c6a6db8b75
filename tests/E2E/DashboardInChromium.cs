using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using MoTLab.WebApp.Tests;

namespace MoTLab.E2E;

/// <summary>The dashboard as a user sees it: Debian's Chromium, headless, driven by Playwright.
/// Screenshots go to screenshots/ beside the test assembly.</summary>
public sealed class DashboardInChromium : IAsyncLifetime
{
    readonly DashboardFactory dashboard = new();
    IPlaywright playwright = default!;
    IBrowser browser = default!;
    IPage page = default!;
    static readonly string Shots = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "screenshots")).FullName;

    public async Task InitializeAsync()
    {
        playwright = await Playwright.CreateAsync();
        browser = await Chromium.LaunchAsync(playwright);
        page = await browser.NewPageAsync(new() { BaseURL = dashboard.BaseAddress.ToString(), ViewportSize = new() { Width = 1400, Height = 1000 } });
        page.SetDefaultTimeout(60_000);
    }

    public async Task DisposeAsync()
    {
        await browser.DisposeAsync();
        playwright.Dispose();
        dashboard.Dispose();
    }

    Task Shot(string name) => page.ScreenshotAsync(new() { Path = Path.Combine(Shots, name + ".png"), FullPage = true });

    Task<int> PlotLength(string id, string field = "x") =>
        page.EvaluateAsync<int>($"() => {{ const g = document.getElementById('{id}'); return g && g.data && g.data[0] && g.data[0].{field} ? g.data[0].{field}.length : 0; }}");

    Task LossCurveDrawnAsync() =>
        page.WaitForFunctionAsync("() => { const g = document.getElementById('loss-plot'); return g?.data?.[0]?.x?.length > 0; }");

    /// <summary>Waits until the page's location satisfies <paramref name="condition"/> (JavaScript over `location`) and
    /// returns its path and query. Blazor navigates with pushState, so the location is polled: a navigation that lands
    /// before WaitForURL subscribes would be missed. A timeout names the error alerts the page shows instead.</summary>
    async Task<string> NavigatedAsync(string condition)
    {
        try { await page.WaitForFunctionAsync($"() => {condition}"); }
        catch (TimeoutException e)
        {
            var alerts = await page.Locator(".mud-alert").AllInnerTextsAsync();
            throw new TimeoutException($"no navigation to {condition} from {page.Url}; alerts: [{string.Join(" | ", alerts)}]", e);
        }
        return await page.EvaluateAsync<string>("() => location.pathname + location.search");
    }

    /// <summary>The id of the run the page moved to from run <paramref name="runId"/>'s page.</summary>
    async Task<int> NavigatedFromRunAsync(int runId) =>
        int.Parse((await NavigatedAsync($"location.pathname.startsWith('/runs/') && location.pathname !== '/runs/{runId}'")).Split('/')[^1]);

    [Fact]
    public async Task Launch_tiny_mot_from_the_form_watch_it_live_then_compare_with_a_dense_run()
    {
        // New run: tiny-mot is the form's default preset; a bad batch size is caught before launch
        await page.GotoAsync("/new");
        var batch = page.GetByLabel("Batch size");
        await batch.FillAsync("6");
        await batch.BlurAsync();
        await page.GetByText("multiple of the MoT group size").First.WaitForAsync();
        Assert.True(await page.Locator("#launch-button").IsDisabledAsync());
        await Shot("new-run-validation");
        await batch.FillAsync("16");
        await batch.BlurAsync();
        var steps = page.GetByLabel("Steps", new() { Exact = true });
        await steps.FillAsync("300");
        await steps.BlurAsync();
        var evalGroups = page.GetByLabel("Extra eval at group sizes", new() { Exact = false });            // MoT also evaluated mixing 8 tokens
        await evalGroups.FillAsync("8");
        await evalGroups.BlurAsync();
        // the server has taken both edits when the estimate shows 300 steps × 16 × 64 tokens
        await page.Locator("#estimate", new() { HasText = "307,200 tokens in all" }).WaitForAsync();
        await page.Locator("#launch-button:not([disabled])").ClickAsync();
        int motId = int.Parse((await NavigatedAsync("location.pathname.startsWith('/runs/')")).Split('/')[^1]);

        // Run page: the loss chart gains points while training runs
        await page.WaitForFunctionAsync("() => { const g = document.getElementById('loss-plot'); return g?.data?.[0]?.x?.length >= 2; }");
        int first = await PlotLength("loss-plot");
        await page.WaitForFunctionAsync($"() => document.getElementById('loss-plot').data[0].x.length > {first}");
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot').data.some(t => t.name === 'eval group_8' && t.x.length > 0)");
        await Shot("run-live-curves");

        // Routing tab: the MoT mixing heatmap shows the group (4 tokens) × 8 experts
        await page.GetByRole(AriaRole.Tab, new() { Name = "Routing" }).ClickAsync();
        await page.WaitForFunctionAsync("() => { const g = document.getElementById('mixing-heatmap-1'); return g && g.data && g.data[0] && g.data[0].z.length === 4 && g.data[0].z[0].length === 8; }");
        await Shot("run-mixing-heatmap");

        // a dense baseline through the API, then Compare
        using var http = dashboard.Client();
        var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 300 });
        int denseId = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        foreach (var id in new[] { motId, denseId })
            for (var t = DateTime.UtcNow; ; await Task.Delay(500))
            {
                var status = (await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}")).GetProperty("run").GetProperty("status").GetString();
                if (status == "completed") break;
                Assert.True(status is "queued" or "running", $"run {id} ended {status}");
                Assert.True(DateTime.UtcNow - t < TimeSpan.FromMinutes(3), $"run {id} did not finish");
            }

        // Sample tab: text from the finished run's newest checkpoint
        await page.GotoAsync($"/runs/{motId}");
        await page.GetByRole(AriaRole.Tab, new() { Name = "Sample" }).ClickAsync();
        await page.GetByLabel("Prompt").FillAsync("12+3");
        await page.Locator("#sample-button").ClickAsync();
        var sample = page.Locator("#sample-output");
        await sample.WaitForAsync();
        Assert.StartsWith("12+3", await sample.InnerTextAsync());
        Assert.Contains("discrete routing", await page.Locator(".mud-alert").First.InnerTextAsync());
        await Shot("run-sample");

        await page.GotoAsync($"/compare?ids={motId},{denseId}");
        await page.WaitForFunctionAsync("() => { const g = document.getElementById('compare-plot'); return g && g.data && g.data.length === 4 && g.data[3].x.length > 0; }");
        var reach = page.Locator(".reach-line");
        await reach.First.WaitForAsync();
        var lines = await reach.AllInnerTextsAsync();
        Assert.Contains(lines, l => l.StartsWith("Target:"));
        Assert.Contains(lines, l => l.Contains($"#{motId}") && (l.Contains("of the steps") || l.Contains("did not reach")));
        Assert.True(await page.Locator("#config-diff tr.diff-row", new() { HasText = "model.ffn.kind" }).CountAsync() == 1);
        await Shot("compare");

        // Runs page lists both, completed
        await page.GotoAsync("/");
        await page.Locator("#runs-table .status-chip", new() { HasText = "Completed" }).Nth(1).WaitForAsync();
        await Shot("runs");
    }

    [Fact]
    public async Task Transition_a_MoT_run_then_launch_the_reproduce_set_from_the_browser()
    {
        using var http = dashboard.Client();
        var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-mot", steps = 60 });
        int motId = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        await http.WaitForRunAsync(motId, r => r.Status() == "completed");

        // Run page: Transition to token-choice → a linked run whose curve continues the parent's
        await page.GotoAsync($"/runs/{motId}");
        await LossCurveDrawnAsync();   // interactive
        await page.Locator("#transition-button").ClickAsync();
        var steps = page.Locator("#transition-steps");
        await steps.FillAsync("40");
        await steps.BlurAsync();
        await page.Locator("#transition-start").ClickAsync();
        int childId = await NavigatedFromRunAsync(motId);
        await page.Locator("#run-title", new() { HasText = $"#{childId} " }).WaitForAsync();      // the same page, showing the new run
        await page.GoBackAsync(new() { WaitUntil = WaitUntilState.Commit });
        await page.Locator("#run-title", new() { HasText = $"#{motId} " }).WaitForAsync();        // and back again
        await page.GoForwardAsync(new() { WaitUntil = WaitUntilState.Commit });
        await http.WaitForRunAsync(childId, r => r.Status() == "completed");
        await page.ReloadAsync();
        await page.WaitForFunctionAsync("() => { const g = document.getElementById('loss-plot'); return g && g.data && g.data.some(t => t.name?.includes('(parent)')) && g.data[0]?.x?.length > 0; }");
        // the child's first point lies after the parent's step 60
        Assert.True(await page.EvaluateAsync<double>("() => document.getElementById('loss-plot').data[0].x[0]") > 60);
        await Shot("transition");

        // New run: Reproduce the paper (laptop set, 2 steps each) opens the five runs on the Compare page
        await page.GotoAsync("/new");
        await page.Locator("#estimate", new() { HasText = "tokens in all" }).WaitForAsync();                                    // interactive
        await page.GetByLabel("Steps (empty: each preset's own)").FillAsync("2");
        await page.GetByLabel("Steps (empty: each preset's own)").BlurAsync();
        await page.Locator("#launch-group-button").ClickAsync();
        var compare = await NavigatedAsync("location.pathname === '/compare' && location.search.includes('ids=')");
        var ids = Uri.UnescapeDataString(compare.Split("ids=")[1]).Split(',').Select(int.Parse).ToList();
        Assert.Equal(5, ids.Count);
        var presets = new List<string>();
        foreach (var id in ids)
        {
            var run = await http.GetRunAsync(id);
            Assert.Contains("reproduce-cpu", run.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
            presets.Add(run.GetProperty("preset").GetString()!);
        }
        Assert.Equal(["cpu-dense", "cpu-mot", "cpu-mot-16e8", "cpu-moe", "cpu-ec"], presets);
        await Shot("reproduce-set");
    }

    [Fact]
    public async Task Fine_tune_a_dense_run_with_lightweight_experts_from_the_run_page()
    {
        using var http = dashboard.Client();
        var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 30 });
        int denseId = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        await http.WaitForRunAsync(denseId, r => r.Status() == "completed");

        await page.GotoAsync($"/runs/{denseId}");
        await LossCurveDrawnAsync();   // interactive
        await page.Locator("#finetune-button").ClickAsync();
        await page.Locator("#finetune-trainable", new() { HasText = "parameters train" }).WaitForAsync();   // MoV by default, its share shown before launch
        var steps = page.Locator("#finetune-steps");
        await steps.FillAsync("25");
        await steps.BlurAsync();
        await page.Locator("#finetune-start").ClickAsync();
        int childId = await NavigatedFromRunAsync(denseId);
        var child = await http.WaitForRunAsync(childId, r => r.Status() is "completed" or "failed");
        Assert.Equal("completed", child.Status());
        Assert.Equal("mov", child.GetProperty("kind").GetString());
        await page.ReloadAsync();
        await page.GetByText("trainable)").WaitForAsync();                                           // "N params (x % trainable)"
        await page.GetByRole(AriaRole.Tab, new() { Name = "Routing" }).ClickAsync();
        // router weights per expert (4 by default) in both blocks, like any sparse run's heatmaps
        foreach (var block in new[] { 0, 1 })
            await page.WaitForFunctionAsync($"() => {{ const g = document.getElementById('usage-heatmap-{block}'); return g && g.data && g.data[0] && g.data[0].z.length >= 1 && g.data[0].z[0].length === 4; }}");
        await Shot("finetune");
    }
}
