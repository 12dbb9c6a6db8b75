using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using MoTLab.WebApp.Tests;

namespace MoTLab.E2E;

/// <summary>The dashboard as the README starts it, with finished runs to read: two seeds of tiny-mot and a tiny-dense
/// baseline, 200 steps each. Its tests share it; they run one after another with the other README-command tests
/// (one <c>dotnet run</c> builds at a time).</summary>
public sealed class FinishedRuns : IAsyncLifetime
{
    public StartedDashboard Dashboard { get; private set; } = default!;
    public int MotSeed1, MotSeed2, Dense;

    public async Task InitializeAsync()
    {
        Dashboard = await StartedDashboard.DotnetRunAsync();
        using var http = Dashboard.Client();
        MotSeed1 = await CreateAsync(http, "tiny-mot", seed: 1, steps: 200);
        MotSeed2 = await CreateAsync(http, "tiny-mot", seed: 2, steps: 200);
        Dense = await CreateAsync(http, "tiny-dense", seed: 1, steps: 200);
        foreach (var id in new[] { MotSeed1, MotSeed2, Dense }) await http.WaitForRunAsync(id, r => r.Status() == "completed", seconds: 420);
    }

    /// <summary>A run of <paramref name="preset"/>'s config with its own seed and length, through POST /api/runs.</summary>
    public static async Task<int> CreateAsync(HttpClient http, string preset, long seed, int steps)
    {
        var presets = await http.GetFromJsonAsync<JsonElement>("/api/presets");
        var config = JsonNode.Parse(presets.EnumerateArray().First(p => p.GetProperty("name").GetString() == preset).GetProperty("config").GetRawText())!;
        config["train"]!["seed"] = seed;
        config["train"]!["steps"] = steps;
        var created = await http.PostAsJsonAsync("/api/runs", new { name = $"{preset} s{seed}", config });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        return (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
    }

    public async Task DisposeAsync() => await Dashboard.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class ReadmeCommand { public const string Name = "the README command"; }

/// <summary>What a researcher used to W&amp;B or TensorBoard checks first, in Chromium against the README's command:
/// the charts show the data (raw and smoothed, smoothing that does not move with the zoom, live equal to a reload),
/// Compare draws any metric with seeds folded, settings are kept, dark mode, the Runs table, form errors on their
/// fields, the log, a phone-width page, lineage, system metrics and export; and the Corpora and Sweep pages beside them.</summary>
[Collection(ReadmeCommand.Name)]
public sealed class ChartsAsResearchersReadThem(FinishedRuns runs) : InChromium, IClassFixture<FinishedRuns>
{
    Uri Base => runs.Dashboard.BaseAddress;

    /// <summary>Every trace of chart <paramref name="id"/>: name, x and y, as Plotly holds them.</summary>
    static async Task<string> TracesAsync(IPage page, string id) => await page.EvaluateAsync<string>(
        $"() => JSON.stringify((document.getElementById('{id}').data || []).map(t => ({{ name: t.name, x: t.x, y: t.y }})))");

    static Task<int> CountAsync(IPage page, string id, string trace) => page.EvaluateAsync<int>(
        $"() => {{ const t = (document.getElementById('{id}')?.data || []).find(t => t.name === '{trace}'); return t ? t.x.length : -1; }}");

    /// <summary>The visible part of a MudSelect whose (hidden) input has <paramref name="inputId"/>.</summary>
    static ILocator Select(IPage page, string inputId) => page.Locator(".mud-select", new() { Has = page.Locator(inputId) }).First;

    static readonly string[] RunCharts = ["loss-plot", "lr-plot", "grad-plot", "tps-plot", "entropy-plot", "memory-plot", "utilisation-plot"];

    [Fact]
    public async Task What_is_drawn_live_equals_a_reload_point_for_point_and_smoothing_does_not_move_with_the_zoom()
    {
        using var http = runs.Dashboard.Client();
        var (page, problems) = await OpenAsync(Base);
        int id = await FinishedRuns.CreateAsync(http, "tiny-mot", seed: 7, steps: 300);
        await page.GotoAsync($"/runs/{id}");                                       // opened while queued or running
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot')?.data?.length > 0");
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot').data[0].x.length > 0");
        int first = await CountAsync(page, "loss-plot", "train (raw)");
        await http.WaitForRunAsync(id, r => r.Status() == "completed", seconds: 300);
        await page.WaitForFunctionAsync("() => { const x = document.getElementById('loss-plot').data[0].x; return x.length && x[x.length - 1] === 300; }");
        Assert.True(first < 30, $"the page should have seen the run grow live, but it started with {first} of 30 points");
        await page.WaitForTimeoutAsync(1000);                                     // the last flush of every panel
        var live = new Dictionary<string, string>();
        foreach (var chart in RunCharts) live[chart] = await TracesAsync(page, chart);

        // every trace in step order, no step twice
        foreach (var (chart, json) in live)
            foreach (var trace in JsonDocument.Parse(json).RootElement.EnumerateArray())
            {
                var xs = trace.GetProperty("x").EnumerateArray().Select(x => x.GetDouble()).ToList();
                Assert.True(xs.Zip(xs.Skip(1)).All(p => p.Second > p.First), $"{chart} '{trace.GetProperty("name")}' is not in strict step order: {string.Join(",", xs)}");
            }
        Assert.Equal(30, JsonDocument.Parse(live["memory-plot"]).RootElement[0].GetProperty("x").GetArrayLength());   // a system sample on every logged step
        // a CPU host has no GPU samples: their trace is empty and stays out of the legend
        Assert.True(await page.EvaluateAsync<bool>("() => document.getElementById('memory-plot').data.every(t => t.x.length > 0 || t.showlegend === false)"),
            "an empty trace is listed in the legend");

        await page.ReloadAsync();
        await page.WaitForFunctionAsync("() => { const x = document.getElementById('loss-plot')?.data?.[0]?.x; return x && x.length === 30; }");
        await page.WaitForTimeoutAsync(500);
        foreach (var chart in RunCharts) Assert.Equal(live[chart], await TracesAsync(page, chart));

        // the smoothed train loss is the debiased EMA of the whole raw series, and a zoomed window reads the same values
        await page.GotoAsync($"/runs/{id}?smooth=ema-0.9");
        await page.Locator("#smoothing-weight", new() { HasText = "0.90" }).WaitForAsync();
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot')?.data?.some(t => t.name === 'train (raw)' && t.x.length === 30)");
        const string Smoothed = """
            () => {
              const d = document.getElementById('loss-plot').data, raw = d.find(t => t.name === 'train (raw)'), s = d.find(t => t.name === 'train');
              let sum = 0, w = 0; const expected = raw.y.map(v => { sum = 0.9 * sum + v; w = 0.9 * w + 1; return sum / w; });
              window.smoothedBeforeZoom = new Map(s.x.map((x, i) => [x, s.y[i]]));
              return Math.max(...expected.map((e, i) => Math.abs(e - s.y[i])));
            }
            """;
        var worst = await page.EvaluateAsync<double>(Smoothed);
        Assert.True(worst < 1e-9, $"smoothed train loss differs from the EMA of the raw series by {worst}");
        await page.EvaluateAsync("() => Plotly.relayout('loss-plot', { 'xaxis.range': [150, 250] })");
        await page.Locator("#points-caption", new() { HasText = "zoomed" }).WaitForAsync();
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot').data[0].x[0] >= 150");
        var moved = await page.EvaluateAsync<string>("""
            () => { const s = document.getElementById('loss-plot').data.find(t => t.name === 'train');
                    return JSON.stringify(s.x.map((x, i) => [x, s.y[i], window.smoothedBeforeZoom.get(x)]).filter(([x, y, before]) => y !== before)); }
            """);
        Assert.True(moved == "[]", $"zooming changed smoothed values [step, zoomed, before]: {moved}");
        problems.AssertNone("watching a run live, reloading it and zooming");
    }

    [Fact]
    public async Task Compare_draws_any_metric_folds_seeds_into_a_band_and_exports_csv()
    {
        var (page, problems) = await OpenAsync(Base);
        string ids = $"{runs.MotSeed1},{runs.MotSeed2},{runs.Dense}";
        await page.GotoAsync($"/compare?ids={ids}");
        await page.Locator("#compare-plot .legendtext", new() { HasText = "tiny-mot s1 ×2 seeds" }).WaitForAsync();
        var names = await page.EvaluateAsync<string[]>("() => document.getElementById('compare-plot').data.map(t => t.name)");
        Assert.Contains(names, n => n.Contains("2 seeds") && n.EndsWith(" max"));             // the band's upper edge …
        Assert.True(await page.EvaluateAsync<bool>("() => document.getElementById('compare-plot').data.some(t => t.fill === 'tonexty')"));   // … shaded down to its lower edge
        Assert.Contains(names, n => n.StartsWith($"#{runs.Dense} ") && n.EndsWith("(raw)"));   // the dense run: raw and smoothed

        await page.GotoAsync($"/compare?ids={ids}&metric=eval_loss&seeds=runs");
        await page.WaitForFunctionAsync($"() => document.getElementById('compare-plot')?.data?.length === 3");
        var evalX = await page.EvaluateAsync<double[]>("() => document.getElementById('compare-plot').data[0].x");
        Assert.Equal([50.0, 100, 150, 200], evalX);                                         // tiny presets evaluate every 50 steps
        await page.Locator(".reach-line", new() { HasText = "Target:" }).WaitForAsync();
        Assert.DoesNotContain(await page.Locator(".reach-line").AllInnerTextsAsync(), l => l.Contains("yet"));   // every run has ended

        using var http = runs.Dashboard.Client();
        var csv = (await http.GetStringAsync($"/api/compare?ids={ids}&metric=eval_loss&smooth=none&format=csv")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("run_id,run_name,step,tokens,elapsed_s,eval_loss,eval_loss_smoothed", csv[0]);
        Assert.Equal(12, csv.Length - 1);                                                     // 3 runs × 4 evaluations
        var bad = await http.GetAsync($"/api/compare?ids={ids}&metric=perplexity");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("'perplexity' is not a metric", await bad.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/api/compare?ids=9999")).StatusCode);
        problems.AssertNone("on the Compare page");
    }

    [Fact]
    public async Task Chart_settings_and_dark_mode_are_kept_in_the_browser_and_the_url_wins()
    {
        var (page, problems) = await OpenAsync(Base);
        await page.GotoAsync($"/runs/{runs.MotSeed1}");
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot')?.data?.[0]?.x?.length > 0");
        await page.Locator("#log-y-switch").CheckAsync();
        await page.WaitForFunctionAsync("() => location.search.includes('logy=1')");
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot').layout.yaxis.type === 'log'");

        await page.GotoAsync($"/runs/{runs.MotSeed2}");                                     // no query: the kept settings
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot')?.layout?.yaxis?.type === 'log'");
        Assert.True(await page.Locator("#log-y-switch").IsCheckedAsync());
        await page.GotoAsync($"/runs/{runs.MotSeed2}?smooth=avg-5&logy=0");                  // a link wins over what was kept
        await page.Locator("#smoothing-window").WaitForAsync();
        Assert.Equal("5", await page.Locator("#smoothing-window").InputValueAsync());
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot')?.layout?.yaxis?.type === 'linear'");

        // the clock: each logged step at the wall-clock time it was logged, on a date axis
        await page.GotoAsync($"/runs/{runs.MotSeed2}?x=clock");
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot')?.layout?.xaxis?.title?.text === 'clock (UTC)'");
        Assert.Equal("date", await page.EvaluateAsync<string>("() => document.getElementById('loss-plot')._fullLayout.xaxis.type"));
        await page.GotoAsync($"/runs/{runs.MotSeed2}?x=step");
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot')?.layout?.xaxis?.title?.text === 'step'");

        // dark mode: the charts' text turns light on a transparent paper, and it survives a reload
        await page.Locator("#dark-mode-button").ClickAsync();
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot').layout.font.color === '#e0e0e0'");
        Assert.Equal("rgba(0, 0, 0, 0)", await page.EvaluateAsync<string>("() => document.getElementById('loss-plot').layout.paper_bgcolor"));
        await page.ReloadAsync();
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot')?.layout?.font?.color === '#e0e0e0'");
        await page.Locator("#dark-mode-button").ClickAsync();
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot').layout.font.color === '#2a2a2a'");
        problems.AssertNone("changing chart settings and dark mode");
    }

    [Fact]
    public async Task The_runs_table_sorts_chooses_filters_and_groups_its_columns()
    {
        var (page, problems) = await OpenAsync(Base);
        await page.GotoAsync("/");
        await page.Locator("#runs-table tbody tr").Nth(2).WaitForAsync();
        await page.GetByText("Eval loss (last)", new() { Exact = true }).ClickAsync();
        await page.WaitForTimeoutAsync(300);
        var evals = (await page.Locator("#runs-table td[data-column='last_eval']").AllInnerTextsAsync()).Where(t => t != "–").Select(double.Parse).ToList();
        Assert.True(evals.Count >= 3);
        Assert.Equal(evals.Order().ToList(), evals);

        await page.Locator("#columns-menu button").ClickAsync();
        await page.Locator(".mud-popover-open .column-choice", new() { HasText = "Learning rate" }).ClickAsync();
        await page.Keyboard.PressAsync("Escape");
        await page.Locator("#runs-table th", new() { HasText = "Learning rate" }).WaitForAsync();
        await page.ReloadAsync();                                                            // the choice is kept
        await page.Locator("#runs-table th", new() { HasText = "Learning rate" }).WaitForAsync();

        // reach against the dense run: the share of its steps at which each run got to its final eval loss
        await Select(page, "#reach-baseline").ClickAsync();
        await page.Locator(".mud-popover-open .mud-list-item", new() { HasText = $"#{runs.Dense} " }).ClickAsync();
        await page.Locator("#runs-table th", new() { HasText = "Reach" }).WaitForAsync();
        var row = page.Locator("#runs-table tbody tr", new() { Has = page.Locator($"a[href='/runs/{runs.Dense}']") });
        Assert.Matches(@"^100\s?%$", await row.Locator("td[data-column='reach']").InnerTextAsync());
        Assert.All(await page.Locator("#runs-table td[data-column='reach']").AllInnerTextsAsync(), t => Assert.Matches(@"^(\d+\s?%|did not reach|–)$", t));

        await Select(page, "#kind-filter").ClickAsync();
        await page.Locator(".mud-popover-open .mud-list-item", new() { HasText = "Dense" }).ClickAsync();
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#runs-table tbody tr').length === 1");
        await Select(page, "#kind-filter").ClickAsync();
        await page.Locator(".mud-popover-open .mud-list-item", new() { HasText = "MoT" }).ClickAsync();
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#runs-table tbody tr').length >= 2");

        await Select(page, "#group-by").ClickAsync();
        await page.Locator(".mud-popover-open .mud-list-item", new() { HasText = "Seed" }).ClickAsync();
        await page.Locator("#runs-table", new() { HasText = "Seed: 1" }).WaitForAsync();
        await page.Locator("#runs-table", new() { HasText = "Seed: 2" }).WaitForAsync();
        problems.AssertNone("on the Runs table");
    }

    [Fact]
    public async Task A_bad_field_is_marked_on_the_field_itself_and_a_change_elsewhere_re_checks_it()
    {
        var (page, problems) = await OpenAsync(Base);
        await page.GotoAsync("/new");
        var batch = page.Locator("#batch-field");
        await batch.FillAsync("6");
        await batch.BlurAsync();
        await page.WaitForFunctionAsync("() => document.getElementById('batch-field').getAttribute('aria-invalid') === 'true'");
        var control = page.Locator(".mud-input-control", new() { Has = batch });
        Assert.Contains("multiple of the MoT group size", await control.InnerTextAsync());
        Assert.Equal(0, await page.Locator(".validation-error").CountAsync());             // on the field, not in a list elsewhere
        await batch.FillAsync("16");
        await batch.BlurAsync();
        await page.WaitForFunctionAsync("() => document.getElementById('batch-field').getAttribute('aria-invalid') === 'false'");
        var group = page.Locator("#group-field");                                             // 16 is no multiple of a group of 3
        await group.FillAsync("3");
        await group.BlurAsync();
        await page.WaitForFunctionAsync("() => document.getElementById('batch-field').getAttribute('aria-invalid') === 'true'");
        Assert.True(await page.Locator("#launch-button").IsDisabledAsync());
        problems.AssertNone("on the New-run form");
    }

    [Fact]
    public async Task A_continued_run_links_its_parent_the_log_follows_charts_export_and_a_phone_sees_one_menu()
    {
        using var http = runs.Dashboard.Client();
        var started = await http.PostAsJsonAsync($"/api/runs/{runs.MotSeed1}/transition", new { steps = 20 });
        Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync());
        int child = (await started.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        await http.WaitForRunAsync(child, r => r.Status() == "completed", seconds: 300);

        var (page, problems) = await OpenAsync(Base);
        await page.GotoAsync($"/runs/{child}");
        await page.Locator($"#lineage a[href='/runs/{runs.MotSeed1}']").WaitForAsync();
        Assert.Contains("from its step 200", await page.Locator("#lineage").InnerTextAsync());
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot')?.layout?.shapes?.length === 1 && document.getElementById('loss-plot').layout.shapes[0].x0 === 200");
        await page.GotoAsync($"/runs/{runs.MotSeed1}");
        await page.Locator($"#lineage a[href='/runs/{child}']").WaitForAsync();

        // system samples: the worker's memory on every logged step
        await page.WaitForFunctionAsync("() => { const t = document.getElementById('memory-plot')?.data?.find(t => t.name === 'worker RSS'); return t && t.x.length === 20 && t.y.every(v => v > 10); }");

        // layout: axis titles, every chart as tall as its plot (no empty band below), the routing heatmaps full width
        await page.WaitForFunctionAsync("() => document.getElementById('loss-plot')?.layout?.yaxis?.title?.text === 'loss (nats/token)'");
        Assert.True(await page.EvaluateAsync<bool>("() => [...document.querySelectorAll('.line-chart')].every(c => c.querySelector('.js-plotly-plot').layout && c.getBoundingClientRect().height <= c.querySelector('.js-plotly-plot').layout.height + 2)"),
            "a chart's box is taller than its plot");

        // export: Plotly's own PNG and SVG
        foreach (var format in new[] { "PNG", "SVG" })
        {
            await page.Locator("#loss-plot-export button").ClickAsync();
            var download = await page.RunAndWaitForDownloadAsync(() => page.Locator(".mud-popover-open .mud-menu-item", new() { HasText = format }).ClickAsync());
            Assert.Equal($"loss-plot.{format.ToLowerInvariant()}", download.SuggestedFilename);
        }

        await page.GetByRole(AriaRole.Tab, new() { Name = "Routing" }).ClickAsync();
        await page.WaitForFunctionAsync("() => document.querySelector('[id^=mixing-heatmap-]')?.data?.length > 0");
        // drawn while its tab was hidden, the heatmap is redrawn at the panel's width once the tab shows (the click
        // reaches the page through the server, so the check waits for it)
        await page.WaitForFunctionAsync("() => { const g = document.querySelector('[id^=mixing-heatmap-]'), panels = g.closest('.mud-tabs-panels').getBoundingClientRect(); return panels.width > 0 && g._fullLayout.width >= 0.9 * panels.width; }",
            null, new() { Timeout = 15_000 });

        // the log opens at its newest line and searches
        await page.GetByRole(AriaRole.Tab, new() { Name = "Log" }).ClickAsync();
        var box = page.Locator("#log-tail");
        await box.WaitForAsync();
        Assert.True(await page.EvaluateAsync<bool>("""
            () => { const box = document.getElementById('log-tail'), text = box.querySelector('.log-lines');
                    const range = document.createRange(); range.selectNodeContents(text); const rects = range.getClientRects();
                    const last = rects[rects.length - 1], b = box.getBoundingClientRect(); return last.bottom <= b.bottom + 1 && last.bottom > b.top; }
            """), "the log does not show its last line");
        await page.Locator("#log-search").FillAsync("eval");
        await page.Locator("#log-count", new() { HasText = "lines match" }).WaitForAsync();
        Assert.All((await box.InnerTextAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries), l => Assert.Contains("eval", l, StringComparison.OrdinalIgnoreCase));

        // a phone: nothing wider than the screen, the actions in one menu
        await page.SetViewportSizeAsync(390, 844);
        await page.GotoAsync($"/runs/{runs.MotSeed1}");
        await page.Locator("#run-actions-menu").WaitForAsync();
        Assert.False(await page.Locator("#clone-button").IsVisibleAsync());
        Assert.True(await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth") <= 390, "the run page is wider than a 390 px phone");
        Assert.False(await page.Locator("#nav-corpora").IsVisibleAsync());                    // the app bar's pages in one menu too
        Assert.True(await page.EvaluateAsync<bool>("() => { const b = document.getElementById('dark-mode-button').getBoundingClientRect(); return b.right <= 390; }"),
            "the app bar's last button is cut off");
        problems.AssertNone("on a continued run, its log, export and at phone width");
    }
    static ILocator CorpusRow(IPage page, string name) =>
        page.Locator("#corpora-table tbody tr", new() { Has = page.Locator($"td[data-corpus='{name}']") });

    [Fact]
    public async Task The_corpora_page_prepares_live_previews_and_deletes_and_the_form_counts_epochs()
    {
        var (page, problems) = await OpenAsync(Base);
        await page.GotoAsync("/corpora");
        await CorpusRow(page, "synthetic").Locator("td[data-column='byte'] .store-prepared").WaitForAsync();   // the finished runs prepared it

        // a real corpus prepared from the page: its progress live, then its counts
        var debian = CorpusRow(page, "debian-docs");
        await debian.Locator("td[data-column='byte'] .prepare-button").ClickAsync();
        await debian.Locator("td[data-column='byte'] .prepare-progress").WaitForAsync();
        Assert.Matches(@"[\d,]+ documents, [\d,]+ tokens, .* tokens/s", await debian.Locator("td[data-column='byte'] .prepare-state").InnerTextAsync());
        await debian.Locator("td[data-column='byte'] .store-prepared").WaitForAsync(new() { Timeout = 180_000 });
        Assert.Contains("4,923 documents", await debian.Locator("td[data-column='byte']").InnerTextAsync());

        // an upload: prepared, previewed, deleted with its file
        var text = Path.Combine(Path.GetTempPath(), $"motlab-upload-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(text, "The first line of the upload.\n" + string.Concat(Enumerable.Repeat("More text to learn from. ", 4000)));
        try
        {
            await page.Locator("input[type=file]").SetInputFilesAsync(text);
            var upload = page.Locator("#corpora-table tbody tr", new() { HasText = "upload" }).Filter(new() { Has = page.Locator("td[data-corpus]") }).First;
            await upload.WaitForAsync();
            string uploaded = (await upload.Locator("td[data-corpus]").GetAttributeAsync("data-corpus"))!;
            Assert.True(File.Exists(uploaded));
            await upload.Locator("td[data-column='byte'] .prepare-button").ClickAsync();
            await upload.Locator("td[data-column='byte'] .store-prepared").WaitForAsync();
            await upload.Locator(".preview-button").ClickAsync();
            await page.Locator(".preview-document", new() { HasText = "The first line of the upload." }).WaitForAsync();
            await upload.Locator(".delete-button").ClickAsync();
            await page.Locator(".mud-dialog button", new() { HasText = "Delete" }).ClickAsync();
            await page.WaitForFunctionAsync($"() => !document.querySelector(\"td[data-corpus='{uploaded}']\")");
            Assert.False(File.Exists(uploaded), "deleting the upload left its file");
        }
        finally { File.Delete(text); }

        // the form: the corpus's tokens and how many times the run reads them, with a warning above one epoch
        await page.GotoAsync("/new");
        await page.Locator("#corpus-tokens", new() { HasText = "training tokens" }).WaitForAsync();
        Assert.False(await page.Locator("#epochs-warning").IsVisibleAsync());
        var steps = page.Locator("#steps-field");
        await steps.FillAsync("100000");
        await steps.BlurAsync();
        await page.Locator("#epochs-warning", new() { HasText = "reads its corpus" }).WaitForAsync();

        // an upload from the form becomes the run's corpus
        var own = Path.Combine(Path.GetTempPath(), $"motlab-form-upload-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(own, string.Concat(Enumerable.Repeat("Text uploaded from the run form. ", 2000)));
        try
        {
            await page.Locator("input[type=file]").SetInputFilesAsync(own);
            await page.Locator("#corpus-tokens", new() { HasText = "motlab-form-upload-" }).WaitForAsync();
            string chosen = await page.Locator("#corpus-select").InputValueAsync();
            Assert.Contains("motlab-form-upload-", chosen);
            using var http = runs.Dashboard.Client();
            Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync($"/api/corpora/{Uri.EscapeDataString(chosen)}")).StatusCode);
        }
        finally { File.Delete(own); }
        problems.AssertNone("on the Corpora page and the New-run form");
    }
    [Fact]
    public async Task A_sweep_of_four_runs_is_launched_from_the_form_and_read_as_one_result()
    {
        var (page, problems) = await OpenAsync(Base);
        await page.GotoAsync("/new");
        var steps = page.Locator("#steps-field");
        await steps.FillAsync("20");
        await steps.BlurAsync();
        await page.Locator("#sweep-button").ClickAsync();
        var values = page.Locator("#axis-values-0");
        await values.FillAsync("0.001, -1");                                              // checked as typed: the bad run is named
        await page.Locator(".sweep-error", new() { HasText = "learning_rate=-1" }).WaitForAsync();
        Assert.True(await page.Locator("#sweep-launch").IsDisabledAsync());
        await values.FillAsync("0.001, 0.003");
        await page.Locator("#add-axis").ClickAsync();
        await page.Locator("#axis-path-1").FillAsync("train.seed");
        await page.Locator(".mud-popover-open .mud-list-item", new() { HasText = "train.seed" }).First.ClickAsync();
        await page.WaitForFunctionAsync("() => !document.querySelector('.mud-popover-open .mud-list-item')");   // the choice taken
        await page.Locator("#axis-values-1").FillAsync("1, 2");
        await page.Locator("#axis-values-1").PressAsync("Tab");                       // leaving the field commits it at once
        try { await page.Locator("#sweep-count", new() { HasText = "4 runs" }).WaitForAsync(); }
        catch (TimeoutException e)
        {
            var fields = await page.EvaluateAsync<string>("() => [...document.querySelectorAll('#sweep-panel input')].map(i => `${i.id}='${i.value}'`).join(', ')");
            throw new TimeoutException($"the sweep panel did not count 4 runs; its fields: {fields}; it reads: {await page.Locator("#sweep-panel").InnerTextAsync()}", e);
        }
        await page.WaitForFunctionAsync("() => !document.getElementById('sweep-launch').disabled");
        await page.Locator("#sweep-launch").ClickAsync();
        await page.WaitForFunctionAsync("() => location.pathname.startsWith('/sweeps/')");

        await page.Locator("#sweep-summary", new() { HasText = "4 completed" }).WaitForAsync(new() { Timeout = 300_000 });
        await page.WaitForFunctionAsync("() => document.getElementById('sweep-parcoords')?.data?.[0]?.dimensions?.[0]?.values?.length === 4");
        var labels = await page.EvaluateAsync<string[]>("() => document.getElementById('sweep-parcoords').data[0].dimensions.map(d => d.label)");
        Assert.Equal(["train.learning_rate", "train.seed", "final eval loss"], labels);
        await page.WaitForFunctionAsync("() => document.getElementById('sweep-curves')?.data?.length === 4");
        Assert.Equal(2, await page.Locator("#best-table tbody tr").CountAsync());                  // the best run per learning rate
        Assert.Equal(2, await page.Locator("#sweep-folded tbody tr").CountAsync());                 // seeds folded: two rows of two
        Assert.Matches(@"\d\.\d{4} \(\d\.\d{4} – \d\.\d{4}\)", await page.Locator("#sweep-folded tbody tr").First.InnerTextAsync());
        await page.Locator("#fold-seeds").ClickAsync();
        await page.Locator("#sweep-table tbody tr").Nth(3).WaitForAsync();
        var sweepPath = await page.EvaluateAsync<string>("() => location.pathname");
        await page.GotoAsync("/sweeps");                                                   // and listed with the others
        await page.Locator($"#sweeps-table a[href='{sweepPath}']").WaitForAsync();
        Assert.Contains("4 completed", await page.Locator("#sweeps-table tbody tr", new() { Has = page.Locator($"a[href='{sweepPath}']") }).InnerTextAsync());
        problems.AssertNone("launching a sweep and reading its page");
    }
}
