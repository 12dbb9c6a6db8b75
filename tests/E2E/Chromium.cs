using Microsoft.Playwright;

namespace MoTLab.E2E;

/// <summary>Debian's Chromium, headless, as every browser test starts it (Playwright cannot download browsers here).</summary>
static class Chromium
{
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright) => playwright.Chromium.LaunchAsync(new()
    {
        ExecutablePath = Environment.GetEnvironmentVariable("MOTLAB_CHROMIUM") ?? "/usr/bin/chromium",
        Headless = true,
        Args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"],
    });
}

/// <summary>A test class with one headless Chromium of its own; pages open at 1400 × 1000 and note every WebGL context.</summary>
public abstract class InChromium : IAsyncLifetime
{
    IPlaywright playwright = default!;
    IBrowser browser = default!;

    public virtual async Task InitializeAsync()
    {
        playwright = await Playwright.CreateAsync();
        browser = await Chromium.LaunchAsync(playwright);
    }

    public virtual async Task DisposeAsync()
    {
        await browser.DisposeAsync();
        playwright.Dispose();
    }

    /// <summary>A new page on <paramref name="baseAddress"/>, with what goes wrong on it recorded.</summary>
    internal async Task<(IPage Page, PageProblems Problems)> OpenAsync(Uri baseAddress)
    {
        var page = await browser.NewPageAsync(new() { BaseURL = baseAddress.ToString(), ViewportSize = new() { Width = 1400, Height = 1000 } });
        page.SetDefaultTimeout(60_000);
        await page.AddInitScriptAsync(WebGl.Track);
        return (page, new PageProblems(page));
    }
}

/// <summary>Everything a user would see go wrong in the network tab and the console of one page: responses of 400 and
/// above, requests that failed, console errors, uncaught exceptions, and Chromium's warnings about WebGL contexts ("Too many active WebGL
/// contexts"; its software renderer's performance notes are not problems).</summary>
sealed class PageProblems
{
    readonly List<string> problems = [];
    bool watching = true;

    public PageProblems(IPage page)
    {
        page.Response += (_, r) => { if (r.Status >= 400) Add($"HTTP {r.Status} {r.Request.Method} {r.Url}"); };
        // a request the browser itself called off (a navigation superseded by the next) is no failure a user sees
        page.RequestFailed += (_, r) => { if (r.Failure != "net::ERR_ABORTED") Add($"request failed: {r.Method} {r.Url} ({r.Failure})"); };
        page.Console += (_, m) => { if (m.Type == "error" || m.Text.Contains("WebGL context", StringComparison.OrdinalIgnoreCase)) Add($"console {m.Type}: {m.Text}"); };
        page.PageError += (_, e) => Add($"uncaught: {e}");
    }

    void Add(string problem) { lock (problems) if (watching) problems.Add(problem); }

    /// <summary>Stops recording: what follows is expected to fail (the server is stopped on purpose).</summary>
    public void Stop() { lock (problems) watching = false; }

    public void AssertNone(string when)
    {
        lock (problems) Assert.True(problems.Count == 0, $"{when}:\n{string.Join('\n', problems)}");
    }
}
