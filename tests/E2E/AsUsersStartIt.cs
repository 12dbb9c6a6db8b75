using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using MoTLab.WebApp.Tests;

namespace MoTLab.E2E;

/// <summary>The dashboard started exactly as the README and the Dockerfile start it, opened in Chromium: every
/// request answers below 400, the console stays clean, MudBlazor's layout renders, Blazor's error UI stays hidden,
/// charts give their WebGL contexts back when the user moves between run pages, and a dropped server shows the
/// reconnect state. The WebApplicationFactory tests run in Development and cannot stand in for this.</summary>
[Collection(ReadmeCommand.Name)]
public sealed class AsUsersStartIt : InChromium
{
    /// <summary>The Runs page with MudBlazor's stylesheet applied, its app bar and table drawn, and no error bar.</summary>
    static async Task AssertRunsPageRenderedAsync(IPage page, int rows)
    {
        await page.GotoAsync("/");
        await page.Locator(".mud-appbar", new() { HasText = "MoTLab" }).WaitForAsync();
        await page.Locator("#runs-table").WaitForAsync();
        if (rows > 0) await page.Locator("#runs-table tbody tr").Nth(rows - 1).WaitForAsync();
        Assert.True(await page.EvaluateAsync<bool>(
            "() => [...document.styleSheets].some(s => (s.href || '').includes('MudBlazor.min.css') && s.cssRules.length > 0)"),
            "MudBlazor's stylesheet did not load");
        Assert.Equal("fixed", await page.EvaluateAsync<string>("() => getComputedStyle(document.querySelector('.mud-appbar')).position"));
        Assert.False(await page.Locator("#blazor-error-ui").IsVisibleAsync(), "Blazor's error UI is showing");
    }

    static async Task AssertStaticFilesAsync(HttpClient http)
    {
        foreach (var path in new[] { "/favicon.ico", "/favicon.svg", "/app.css", "/_framework/blazor.web.js", "/_content/MudBlazor/MudBlazor.min.css" })
            Assert.True((await http.GetAsync(path)).IsSuccessStatusCode, $"{path} did not answer 200");
    }

    [Fact]
    public async Task The_readme_command_serves_a_working_dashboard_that_releases_its_charts_and_shows_reconnecting()
    {
        await using var dashboard = await StartedDashboard.DotnetRunAsync();
        using var http = dashboard.Client();
        await AssertStaticFilesAsync(http);
        var ids = new List<int>();
        const string Markup = "<b>bold</b> <a href=\"https://evil.example/\">link</a>";   // a name Plotly would read as HTML
        foreach (var preset in new[] { "tiny-mot", "tiny-moe", "tiny-dense" })
        {
            var created = await http.PostAsJsonAsync("/api/runs", new { preset, steps = 30, name = preset == "tiny-mot" ? Markup : preset });
            Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
            ids.Add((await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32());
        }
        foreach (var id in ids) await http.WaitForRunAsync(id, r => r.Status() == "completed");

        var (page, problems) = await OpenAsync(dashboard.BaseAddress);
        await AssertRunsPageRenderedAsync(page, rows: 3);

        // run 1 → 2 → 3 → 1 … in the app (no page load), as a user clicks between runs: ten pages of charts
        var gl = await WebGl.VisitRunPagesAsync(page, ids, 10);
        Assert.True(gl.GetProperty("leaked").GetInt32() == 0, $"WebGL contexts of charts no longer on the page are still alive: {gl}");

        await page.EvaluateAsync("() => Blazor.navigateTo('/new')");
        await page.GetByLabel("Batch size").WaitForAsync();
        await page.EvaluateAsync($"() => Blazor.navigateTo('/compare?ids={ids[0]},{ids[2]}')");
        await page.WaitForFunctionAsync("() => { const g = document.getElementById('compare-plot'); return g && g.data && g.data.length === 4; }");
        // the legend shows the run's name as its characters: no link, no bold
        await page.Locator("#compare-plot .legendtext", new() { HasText = "<b>bold</b>" }).WaitForAsync();
        Assert.Equal(0, await page.Locator("#compare-plot a, #compare-plot .legendtext b").CountAsync());
        problems.AssertNone("in the dashboard started with `dotnet run --project WebApp`");

        // the server goes away under an open page: the page says so instead of going quietly dead
        problems.Stop();
        await dashboard.KillAsync();
        await page.Locator("#components-reconnect-modal").WaitForAsync(new() { State = WaitForSelectorState.Visible });
        Assert.True(await page.GetByText("Connection to the dashboard lost").IsVisibleAsync()
                    || await page.GetByText("Could not reconnect").IsVisibleAsync());
    }

    [Fact]
    public async Task The_published_folder_serves_a_working_dashboard_as_the_docker_image_runs_it()
    {
        var folder = Directory.CreateTempSubdirectory("motlab-publish").FullName;
        try
        {
            var publish = new ProcessStartInfo("dotnet") { WorkingDirectory = StartedDashboard.RepositoryRoot(), RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "publish", "WebApp", "-c", "Release", "-o", folder }) publish.ArgumentList.Add(a);   // the Dockerfile's command
            using (var p = Process.Start(publish)!)
            {
                var log = p.StandardOutput.ReadToEndAsync();
                var err = p.StandardError.ReadToEndAsync();
                await p.WaitForExitAsync();
                Assert.True(p.ExitCode == 0, $"dotnet publish failed:\n{await log}\n{await err}");
            }

            await using var dashboard = await StartedDashboard.PublishedAsync(folder);
            using var http = dashboard.Client();
            await AssertStaticFilesAsync(http);
            var (page, problems) = await OpenAsync(dashboard.BaseAddress);
            await AssertRunsPageRenderedAsync(page, rows: 0);
            await page.EvaluateAsync("() => Blazor.navigateTo('/new')");
            await page.GetByLabel("Batch size").WaitForAsync();
            problems.AssertNone("in the published dashboard run as `dotnet MoTLab.WebApp.dll`");

            // the worker ships in the published folder (worker/), with its own dependencies: a run trains there
            Assert.False(File.Exists(Path.Combine(folder, "TorchSharp.dll")), "the dashboard's own folder holds TorchSharp");
            var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 5 });
            Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
            await http.WaitForRunAsync((await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32(), r => r.Status() == "completed");
        }
        finally { try { Directory.Delete(folder, true); } catch (IOException) { } }
    }
}
