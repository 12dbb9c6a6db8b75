using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;

namespace MoTLab.WebApp.Tests;

/// <summary>What an adversarial probe of the dashboard found, one test each: every one of these failed before the
/// fix it names (docs/reliability.md lists them).</summary>
[Collection(Workers.B)]
public sealed class SecurityTests : IDisposable
{
    readonly DashboardFactory dashboard = new(null, settings: new Dictionary<string, string> { ["MoTLab:MaxUploadMB"] = "1", ["MoTLab:CancelGraceSeconds"] = "3" });
    readonly string outside = Directory.CreateTempSubdirectory("motlab-outside").FullName;
    public void Dispose() { dashboard.Dispose(); try { Directory.Delete(outside, true); } catch (IOException) { } }

    static string Prose(int repeats) => string.Concat(Enumerable.Repeat("Tokens from different examples at one position are mixed. ", repeats));

    async Task<int> CreateAsync(HttpClient http, object body)
    {
        var created = await http.PostAsJsonAsync("/api/runs", body);
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        return (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
    }

    static async Task<string> ErrorsAsync(HttpResponseMessage r)
    {
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        return await r.Content.ReadAsStringAsync();
    }

    [Fact]
    public async Task A_corpus_folder_holding_a_link_out_of_the_roots_or_a_fifo_is_refused_and_stores_nothing()
    {
        using var http = dashboard.Client();
        File.WriteAllText(Path.Combine(outside, "secret.txt"), "the password is hunter2");
        var folder = Directory.CreateDirectory(Path.Combine(dashboard.CorpusRoot, "docs")).FullName;
        File.WriteAllText(Path.Combine(folder, "ok.txt"), Prose(100));
        File.CreateSymbolicLink(Path.Combine(folder, "leak.txt"), Path.Combine(outside, "secret.txt"));
        var body = await ErrorsAsync(await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", corpus = folder }));
        Assert.Contains("leak.txt", body);
        Assert.Contains("outside the data roots", body);

        File.Delete(Path.Combine(folder, "leak.txt"));
        var fifo = Path.Combine(dashboard.CorpusRoot, "pipe.txt");
        using (var p = Process.Start("mkfifo", [fifo])!) await p.WaitForExitAsync();
        Assert.Contains("not a regular file", await ErrorsAsync(await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", corpus = fifo })));
        Assert.Equal(0, (await http.GetFromJsonAsync<JsonElement>("/api/runs")).GetArrayLength());
    }

    [Fact]
    public async Task A_corpus_swapped_for_a_link_after_the_run_was_accepted_fails_the_run_in_the_worker()
    {
        using var http = dashboard.Client();
        File.WriteAllText(Path.Combine(outside, "secret.txt"), Prose(100));
        var corpus = Path.Combine(dashboard.CorpusRoot, "swap.txt");
        File.WriteAllText(corpus, Prose(100));
        int blocker = await CreateAsync(http, new { preset = "tiny-dense", steps = 100_000 });            // holds the one CPU slot
        await http.WaitForRunAsync(blocker, r => r.Status() == "running");
        int id = await CreateAsync(http, new { preset = "tiny-dense", steps = 20, corpus });
        File.Delete(corpus);
        File.CreateSymbolicLink(corpus, Path.Combine(outside, "secret.txt"));
        Assert.Equal(HttpStatusCode.Accepted, (await http.PostAsync($"/api/runs/{blocker}/cancel", null)).StatusCode);
        var run = await http.WaitForRunAsync(id, r => r.Status() is "failed" or "completed");
        Assert.Equal("failed", run.Status());
        Assert.Contains("outside the data roots", run.Text("error"));
    }

    [Fact]
    public async Task Cancel_ends_a_worker_that_does_not_stop_and_a_finished_run_answers_409()
    {
        using var http = dashboard.Client();
        int id = await CreateAsync(http, new { preset = "tiny-dense", steps = 100_000 });
        var running = await http.WaitForRunAsync(id, r => r.Status() == "running" && r.GetProperty("last_step").GetInt64() > 0);
        var pid = Process.GetProcesses().Single(p =>
        {
            try { return File.ReadAllText($"/proc/{p.Id}/cmdline").Contains($"--run\0{id}\0") && File.ReadAllText($"/proc/{p.Id}/cmdline").Contains(dashboard.DataFolder); }
            catch (IOException) { return false; }
        }).Id;
        using (var stop = Process.Start("kill", ["-STOP", pid.ToString()])!) await stop.WaitForExitAsync();   // deaf to the hub's Cancel
        Assert.Equal(HttpStatusCode.Accepted, (await http.PostAsync($"/api/runs/{id}/cancel", null)).StatusCode);
        var cancelled = await http.WaitForRunAsync(id, r => r.Status() != "running", 60);
        Assert.Equal("cancelled", cancelled.Status());
        Assert.Contains("did not stop within 3 s of Cancel and was killed", cancelled.Text("error"));
        Assert.True(await FaultTests.DeadWithinAsync(pid, TimeSpan.FromSeconds(10)), $"worker {pid} still runs");

        var again = await http.PostAsync($"/api/runs/{id}/cancel", null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Contains("ended already", await again.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Tags_and_list_fields_are_bounded_and_bad_numbers_and_parents_are_refused()
    {
        using var http = dashboard.Client();
        var tags = Enumerable.Range(0, 100_000).Select(i => $"tag-{i}-" + new string('x', 36)).ToArray();
        Assert.Contains("at most 20 tags", await ErrorsAsync(await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", tags })));
        var preset = (await http.GetFromJsonAsync<JsonElement>("/api/presets")).EnumerateArray().First(p => p.GetProperty("name").GetString() == "tiny-mot").GetProperty("config");
        var config = JsonNode(preset);
        config["train"]!["weight_decay"] = "Infinity";
        Assert.Contains("train.weight_decay", await ErrorsAsync(await http.PostAsJsonAsync("/api/runs", new { config })));
        config = JsonNode(preset);
        config["model"]!["ffn"]!["eval_group_sizes"] = new System.Text.Json.Nodes.JsonArray([.. Enumerable.Range(0, 100).Select(_ => (System.Text.Json.Nodes.JsonNode?)4)]);
        Assert.Contains("model.ffn.eval_group_sizes", await ErrorsAsync(await http.PostAsJsonAsync("/api/runs", new { config })));
        Assert.Contains("run 999 does not exist", await ErrorsAsync(await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", parent_id = 999 })));
        Assert.Equal(0, (await http.GetFromJsonAsync<JsonElement>("/api/runs")).GetArrayLength());

        int id = await CreateAsync(http, new { preset = "tiny-dense", steps = 1, tags = Enumerable.Range(0, 20).Select(i => $"t{i}").ToArray() });
        var page = await http.GetAsync("/api/runs?limit=1&offset=0");
        Assert.Equal("1", page.Headers.GetValues("X-Total-Count").Single());
        Assert.Equal(id, (await page.Content.ReadFromJsonAsync<JsonElement>())[0].GetProperty("id").GetInt32());
    }

    static System.Text.Json.Nodes.JsonNode JsonNode(JsonElement e) => System.Text.Json.Nodes.JsonNode.Parse(e.GetRawText())!;

    [Fact]
    public async Task Bad_requests_get_a_4xx_that_says_what_is_wrong_never_a_500()
    {
        using var http = dashboard.Client();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/runs?status=completed")).StatusCode);       // the spelling the API writes
        var status = await ErrorsAsync(await http.GetAsync("/api/runs?status=finished"));
        Assert.Contains("completed", status);
        var json = await ErrorsAsync(await http.PostAsync("/api/runs", new StringContent("{\"preset\": \"tiny-dense\", \"steps\": \"many\"}", Encoding.UTF8, "application/json")));
        Assert.Contains("$.steps", json);
        Assert.Contains("not valid", await ErrorsAsync(await http.PostAsync("/api/runs", new StringContent("{\"preset\": ", Encoding.UTF8, "application/json"))));

        var multipart = new StringContent("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nunfinished", Encoding.UTF8);
        multipart.Headers.ContentType = MediaTypeHeaderValue.Parse("multipart/form-data; boundary=b");
        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsync("/api/corpora/upload", multipart)).StatusCode);
        var login = new StringContent("--b\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nunfinished", Encoding.UTF8);
        login.Headers.ContentType = MediaTypeHeaderValue.Parse("multipart/form-data; boundary=b");
        var loginStatus = (int)(await http.PostAsync("/login", login)).StatusCode;
        Assert.True(loginStatus is >= 400 and < 500, $"malformed multipart to /login: {loginStatus}");
        var fields = new FormUrlEncodedContent(Enumerable.Range(0, 5000).Select(i => KeyValuePair.Create($"f{i}", "v")));
        var fieldsStatus = (int)(await http.PostAsync("/login", fields)).StatusCode;
        Assert.True(fieldsStatus is >= 400 and < 500, $"5,000 form fields to /login: {fieldsStatus}");
    }

    [Fact]
    public async Task An_upload_past_the_limit_is_cut_off_and_an_unwritable_uploads_folder_answers_507()
    {
        using var http = dashboard.Client();
        var uploads = Path.Combine(dashboard.DataFolder, "uploads");
        static MultipartFormDataContent File(string text) => new() { { new StringContent(text), "file", "corpus.txt" } };
        // ~3.5 MB against a 1 MB limit, sent as curl sends a large body (Expect: 100-continue): the refusal comes before
        // the body, where a client still sending when the dashboard answers and closes may see only the reset
        var tooBig = new HttpRequestMessage(HttpMethod.Post, "/api/corpora/upload") { Content = File(Prose(60_000)) };
        tooBig.Headers.ExpectContinue = true;
        var big = await http.SendAsync(tooBig);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        Assert.Contains("MaxUploadMB", await big.Content.ReadAsStringAsync());
        Assert.Empty(Directory.GetFiles(uploads));
        Assert.Equal(HttpStatusCode.Created, (await http.PostAsync("/api/corpora/upload", File(Prose(1000)))).StatusCode);

        Directory.Delete(uploads, true);
        System.IO.File.WriteAllText(uploads, "a file where the uploads folder should be");
        var blocked = await http.PostAsync("/api/corpora/upload", File(Prose(1000)));
        Assert.Equal((HttpStatusCode)507, blocked.StatusCode);
        Assert.Contains("could not be stored", await blocked.Content.ReadAsStringAsync());
        System.IO.File.Delete(uploads);
    }

    [Fact]
    public async Task Other_websites_cannot_change_anything_nor_reach_the_dashboard_by_another_name()
    {
        using var http = dashboard.Client();
        int id = await CreateAsync(http, new { preset = "tiny-dense", steps = 1, device = "remote" });
        foreach (var (header, value) in new[] { ("Origin", "http://evil.example"), ("Sec-Fetch-Site", "cross-site") })
        {
            var cancel = new HttpRequestMessage(HttpMethod.Post, $"/api/runs/{id}/cancel");
            cancel.Headers.Add(header, value);
            Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(cancel)).StatusCode);
            var upload = new HttpRequestMessage(HttpMethod.Post, "/api/corpora/upload") { Content = new MultipartFormDataContent { { new StringContent(Prose(100)), "file", "x.txt" } } };
            upload.Headers.Add(header, value);
            Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(upload)).StatusCode);
        }
        Assert.Equal("queued", (await http.GetRunAsync(id)).Status());
        var rebound = new HttpRequestMessage(HttpMethod.Get, "/api/runs");
        rebound.Headers.Host = "evil.example";
        Assert.Equal(HttpStatusCode.BadRequest, (await http.SendAsync(rebound)).StatusCode);
        var own = new HttpRequestMessage(HttpMethod.Post, $"/api/runs/{id}/cancel");                 // the dashboard's own page
        own.Headers.Add("Origin", dashboard.BaseAddress.GetLeftPart(UriPartial.Authority));
        own.Headers.Add("Sec-Fetch-Site", "same-origin");
        Assert.Equal(HttpStatusCode.Accepted, (await http.SendAsync(own)).StatusCode);
    }

    [Fact]
    public async Task A_worker_token_reaches_its_own_run_only_and_NaN_from_one_run_loses_no_other_runs_steps()
    {
        using var http = dashboard.Client();
        int a = await CreateAsync(http, new { preset = "tiny-dense", steps = 100, device = "remote" });
        int b = await CreateAsync(http, new { preset = "tiny-dense", steps = 100, device = "remote" });
        async Task<string> TokenAsync(int id) => (await (await http.PostAsync($"/api/runs/{id}/worker-token", null)).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("token").GetString()!;
        string ta = await TokenAsync(a), tb = await TokenAsync(b);
        var hub = new Uri(dashboard.BaseAddress, RunsHubContract.Path).ToString();
        HubConnection Worker(string token) => new HubConnectionBuilder().WithUrl(hub, o => o.AccessTokenProvider = () => Task.FromResult<string?>(token))
            .AddJsonProtocol(o => RunsHubContract.Payload(o.PayloadSerializerOptions)).Build();   // as the worker connects
        await using var wa = Worker(ta);
        await using var wb = Worker(tb);
        await wa.StartAsync(); await wb.StartAsync();
        await wa.InvokeAsync<WorkerAssignment>(RunsHubContract.Hello, a, ta);
        await wb.InvokeAsync<WorkerAssignment>(RunsHubContract.Hello, b, tb);

        var other = await Assert.ThrowsAsync<HubException>(() => wa.InvokeAsync(RunsHubContract.Subscribe, b));
        Assert.Contains("its own run", other.Message);
        await wa.InvokeAsync(RunsHubContract.Subscribe, a);

        StepMetrics Step(long s, double loss) => new() { Step = s, Tokens = s * 64, TrainLoss = loss, Lr = 1e-3, GradNorm = loss, TokensPerS = 1, Time = 1 };
        await Task.WhenAll(
            wa.InvokeAsync(RunsHubContract.ReportMetrics, a, ta, new[] { Step(10, 2.5), Step(20, double.NaN), Step(30, double.PositiveInfinity) }),
            wb.InvokeAsync(RunsHubContract.ReportMetrics, b, tb, new[] { Step(10, 2.4), Step(20, 2.3) }));
        var sa = (await http.WaitForRunAsync(a, r => r.GetProperty("last_step").GetInt64() == 30, 30));
        await http.WaitForRunAsync(b, r => r.GetProperty("last_step").GetInt64() == 20, 30);
        Assert.Equal(2.5, sa.GetProperty("last_loss").GetDouble());                                   // the summary keeps the last real loss
        var ma = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{a}/metrics", MoTLab.Shared.Json.Options);
        Assert.Equal(["2.5", "NaN", "Infinity"], ma.EnumerateArray().Select(m => m.GetProperty("train_loss").ToString()));
        Assert.Equal(2, (await http.GetFromJsonAsync<JsonElement>($"/api/runs/{b}/metrics")).GetArrayLength());

        // readers of an unchanged history share one read; a new step is read anew
        var query = dashboard.Services.GetRequiredService<MoTLab.WebApp.Runs.MetricsQuery>();
        var reads = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => query.ReadAsync(b)));
        Assert.All(reads, r => Assert.Same(reads[0], r));
        await wb.InvokeAsync(RunsHubContract.ReportMetrics, b, tb, new[] { Step(30, 2.2) });
        await http.WaitForRunAsync(b, r => r.GetProperty("last_step").GetInt64() == 30, 30);
        Assert.Equal(3, (await query.ReadAsync(b)).Count);

        // deleting run a revokes its token: the connection may not watch, and it is closed
        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync($"/api/runs/{a}")).StatusCode);
        await Assert.ThrowsAsync<HubException>(() => wa.InvokeAsync(RunsHubContract.Subscribe, a));
        for (var t = Stopwatch.StartNew(); wa.State != HubConnectionState.Disconnected; await Task.Delay(200))
            Assert.True(t.Elapsed < TimeSpan.FromSeconds(30), "the revoked worker's connection stayed open");
    }

    public sealed class Exposed : IDisposable
    {
        readonly List<DashboardFactory> dashboards = [];
        public void Dispose() { foreach (var d in dashboards) d.Dispose(); }

        DashboardFactory Start(string token, string? folder = null)
        {
            var d = new DashboardFactory(folder, exposedWithToken: token);
            dashboards.Add(d);
            return d;
        }

        static async Task<(HttpClient Browser, HttpResponseMessage Login)> LoginAsync(DashboardFactory d, string token, string back = "/new")
        {
            var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true }) { BaseAddress = d.BaseAddress };
            var form = await browser.GetStringAsync("/login");
            var af = System.Text.RegularExpressions.Regex.Match(form, "name=\"(__RequestVerificationToken[^\"]*)\" value=\"([^\"]+)\"");
            var login = await browser.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
                { [af.Groups[1].Value] = af.Groups[2].Value, ["return"] = back, ["token"] = token }));
            return (browser, login);
        }

        static string CookieOf(HttpResponseMessage login) =>
            login.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith(AccessGate.Cookie + "=")).Split(';')[0];

        [Fact]
        public async Task A_login_cookie_opens_only_the_dashboard_and_token_it_was_issued_for()
        {
            var a = Start("token-a");
            var (_, login) = await LoginAsync(a, "token-a");
            var cookie = CookieOf(login);
            Assert.True(File.Exists(Directory.GetFiles(Path.Combine(a.DataFolder, "keys")).Single()), "the data-protection keys live in the data folder");

            using var withCookie = new HttpClient { BaseAddress = a.BaseAddress };
            withCookie.DefaultRequestHeaders.Add("Cookie", cookie);
            Assert.Equal(HttpStatusCode.OK, (await withCookie.GetAsync("/api/runs")).StatusCode);

            var b = Start("token-b");
            using var other = new HttpClient { BaseAddress = b.BaseAddress };
            other.DefaultRequestHeaders.Add("Cookie", cookie);
            Assert.Equal(HttpStatusCode.Unauthorized, (await other.GetAsync("/api/runs")).StatusCode);

            // the same data folder (same keys) with a new token: the old cookie is out
            var folder = a.DataFolder;
            var keep = Directory.CreateTempSubdirectory("motlab-keep").FullName;
            CopyFolder(folder, keep);
            var c = Start("token-c", keep);
            using var changed = new HttpClient { BaseAddress = c.BaseAddress };
            changed.DefaultRequestHeaders.Add("Cookie", cookie);
            Assert.Equal(HttpStatusCode.Unauthorized, (await changed.GetAsync("/api/runs")).StatusCode);
            try { Directory.Delete(keep, true); } catch (IOException) { }
        }

        static void CopyFolder(string from, string to)
        {
            foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(dir.Replace(from, to));
            foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
                try { File.Copy(file, file.Replace(from, to), true); } catch (IOException) { }
        }

        [Fact]
        public async Task Login_redirects_stay_on_the_dashboard_and_guessing_is_rate_limited()
        {
            var d = Start("token-r");
            foreach (var back in new[] { "/\\evil.example/x", "/\t/evil.example", "//evil.example", "https://evil.example/" })
            {
                var (_, login) = await LoginAsync(d, "token-r", back);
                Assert.Equal("/", login.Headers.Location!.OriginalString);
            }
            var (browser, _) = await LoginAsync(d, "wrong");
            var statuses = new List<HttpStatusCode>();
            for (int i = 0; i < 12; i++)
                statuses.Add((await browser.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = "guess" }))).StatusCode);
            Assert.Contains((HttpStatusCode)429, statuses);
        }
    }
}
