using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using MoTLab.Shared.Runs;

namespace MoTLab.WebApp.Tests;

/// <summary>Listening beyond loopback, nothing works without the access token — except a worker, which
/// opens the hub with its own per-run token.</summary>
public sealed class AccessTests : IDisposable
{
    const string Token = "s3cret-token-for-tests";
    readonly DashboardFactory dashboard = new(null, exposedWithToken: Token);

    HttpClient Client(bool redirects = false) => new(new HttpClientHandler { AllowAutoRedirect = redirects, UseCookies = true })
        { BaseAddress = dashboard.BaseAddress };

    [Fact]
    public async Task Api_hub_and_pages_need_the_token()
    {
        using var anonymous = Client();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/runs")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense" })).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/openapi/v1.json")).StatusCode);
        var page = await anonymous.GetAsync("/runs/1");
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.StartsWith("/login", page.Headers.Location!.OriginalString);

        await using var noToken = new HubConnectionBuilder().WithUrl(new Uri(dashboard.BaseAddress, RunsHubContract.Path)).Build();
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => noToken.StartAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);

        using var wrong = Client();
        wrong.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "not-it");
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/api/runs")).StatusCode);

        using var bearer = Client();
        bearer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        Assert.Equal(HttpStatusCode.OK, (await bearer.GetAsync("/api/runs")).StatusCode);
        await using var watcher = new HubConnectionBuilder()
            .WithUrl(new Uri(dashboard.BaseAddress, RunsHubContract.Path), o => o.AccessTokenProvider = () => Task.FromResult<string?>(Token)).Build();
        await watcher.StartAsync();
    }

    [Fact]
    public async Task A_browser_logs_in_once_and_a_worker_still_reports_with_its_run_token()
    {
        using var browser = Client();
        var login = await browser.GetStringAsync("/login?return=/new");
        var antiforgery = System.Text.RegularExpressions.Regex.Match(login, "name=\"(__RequestVerificationToken[^\"]*)\" value=\"([^\"]+)\"");
        Assert.True(antiforgery.Success, login);
        async Task<HttpResponseMessage> Post(string token) => await browser.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
            { [antiforgery.Groups[1].Value] = antiforgery.Groups[2].Value, ["return"] = "/new", ["token"] = token }));
        Assert.Contains("error=1", (await Post("wrong")).Headers.Location!.OriginalString);
        var ok = await Post(Token);
        Assert.Equal("/new", ok.Headers.Location!.OriginalString);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/new")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/api/runs")).StatusCode);        // the cookie works for the API too

        var created = await browser.PostAsJsonAsync("/api/runs", new { preset = "tiny-mot", steps = 20 });
        int id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        for (var t = DateTime.UtcNow; ; await Task.Delay(250))
        {
            var status = (await browser.GetFromJsonAsync<JsonElement>($"/api/runs/{id}")).GetProperty("run").GetProperty("status").GetString();
            if (status == "completed") break;
            Assert.True(status is "queued" or "running", $"run ended {status}");
            Assert.True(DateTime.UtcNow - t < TimeSpan.FromMinutes(2));
        }
    }

    public void Dispose() => dashboard.Dispose();
}
