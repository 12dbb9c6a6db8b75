using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;

namespace MoTLab.WebApp.Tests;

public class ApiTests(DashboardFactory dashboard) : IClassFixture<DashboardFactory>
{
    readonly HttpClient http = dashboard.Client();

    async Task<int> RunCount() => (await http.GetFromJsonAsync<JsonElement>("/api/runs")).GetArrayLength();

    [Theory]
    [InlineData("""{ "preset": "tiny-mot", "config": { "model": { "d_model": 64, "heads": 5 } } }""", "model.heads", "must divide d_model")]
    [InlineData("""{ "preset": "tiny-mot", "config": { "model": { "ffn": { "kind": "mot", "group_size": 4 } }, "train": { "batch_size": 6 } } }""", "train.batch_size", "multiple of the MoT group size")]
    [InlineData("""{ "preset": "no-such-preset" }""", "preset", "unknown preset")]
    [InlineData("""{ "preset": "tiny-moe", "config": { "model": { "ffn": { "kind": "token_choice", "experts": 2, "top_k": 3 } } } }""", "model.ffn.top_k", "must not exceed")]
    [InlineData("""{ "preset": "tiny-dense", "corpus": "/etc/passwd" }""", "data.corpus", "outside the data roots")]
    [InlineData("""{ "preset": "tiny-dense", "corpus": "../../etc" }""", "data.corpus", "not a built-in corpus")]
    [InlineData("""{ "preset": "tiny-dense", "device": "cuda" }""", "device", "no GPUs configured")]
    [InlineData("""{ "preset": "tiny-dense", "config": { "train": { "gpus": 2 } } }""", "train.gpus", "the dashboard trains a run in one process")]
    [InlineData("""{ "preset": "tiny-dense", "config": { "model": { "d_model": 4096, "layers": 48, "heads": 32 }, "train": { "batch_size": 4096 } } }""", "train.batch_size", "GiB of this machine's memory")]
    public async Task Invalid_runs_are_refused_with_field_errors_and_nothing_is_stored(string body, string field, string message)
    {
        int before = await RunCount();
        var response = await http.PostAsync("/api/runs", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        var errors = problem.GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out var list), $"no error for {field}: {errors}");
        Assert.Contains(list.EnumerateArray(), e => e.GetString()!.Contains(message));
        Assert.Equal(before, await RunCount());
    }

    [Fact]
    public async Task Malformed_json_is_a_400()
    {
        var response = await http.PostAsync("/api/runs", new StringContent("{ \"preset\": ", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Presets_corpora_openapi_and_missing_runs()
    {
        var presets = await http.GetFromJsonAsync<JsonElement>("/api/presets");
        Assert.Contains(presets.EnumerateArray(), p => p.GetProperty("name").GetString() == "medium-mot");
        var corpora = await http.GetFromJsonAsync<JsonElement>("/api/corpora");
        Assert.Contains(corpora.EnumerateArray(), c => c.GetProperty("name").GetString() == "synthetic");
        var openapi = await http.GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        Assert.True(openapi.GetProperty("paths").TryGetProperty("/api/runs/{id}/metrics", out _));
        // every answer of a handler is in the document, with the schema of its body
        JsonElement Responses(string path, string method) => openapi.GetProperty("paths").GetProperty(path).GetProperty(method).GetProperty("responses");
        static string Schema(JsonElement response) => response.GetProperty("content").GetProperty("application/json").GetProperty("schema").GetRawText();
        var detail = Responses("/api/runs/{id}", "get");
        Assert.Contains("RunDetail", Schema(detail.GetProperty("200")));
        Assert.True(detail.TryGetProperty("404", out _));
        var create = Responses("/api/runs", "post");
        Assert.Contains("RunSummary", Schema(create.GetProperty("201")));
        Assert.True(create.TryGetProperty("400", out _));
        Assert.Contains("Health", Schema(Responses("/api/health", "get").GetProperty("200")));
        Assert.True(Responses("/api/runs/{id}/cancel", "post").TryGetProperty("409", out _), "cancel's 409 (the run ended already) is not documented");
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/api/runs/999999")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.DeleteAsync("/api/runs/999999")).StatusCode);
    }

    [Fact]
    public async Task A_corpus_inside_a_data_root_is_accepted_and_a_symlink_out_of_it_is_not()
    {
        var file = Path.Combine(dashboard.CorpusRoot, "mine.txt");
        await File.WriteAllTextAsync(file, string.Concat(Enumerable.Repeat("some text to learn from. ", 2000)));
        var link = Path.Combine(dashboard.CorpusRoot, "escape.txt");
        if (!File.Exists(link)) File.CreateSymbolicLink(link, "/etc/hostname");
        var ok = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", corpus = file, steps = 1 });
        Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        var escaped = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", corpus = link, steps = 1 });
        Assert.Equal(HttpStatusCode.BadRequest, escaped.StatusCode);
    }

    [Fact]
    public async Task A_corpus_is_prepared_through_the_api_with_its_stores_preview_and_delete()
    {
        var folder = Directory.CreateDirectory(Path.Combine(dashboard.CorpusRoot, "shards")).FullName;
        await using (var gz = new System.IO.Compression.GZipStream(File.Create(Path.Combine(folder, "part-0.jsonl.gz")), System.IO.Compression.CompressionLevel.Fastest))
        await using (var w = new StreamWriter(gz))
            for (int i = 0; i < 400; i++) await w.WriteLineAsync(JsonSerializer.Serialize(new { text = $"document {i}: " + string.Concat(Enumerable.Repeat($"w{i % 37} ", 50)) }));
        var name = Uri.EscapeDataString(folder);

        var listed = (await http.GetFromJsonAsync<JsonElement>("/api/corpora")).EnumerateArray().Single(c => c.GetProperty("name").GetString() == folder);
        Assert.Equal(("folder", "jsonl", 1), (listed.GetProperty("kind").GetString(), listed.GetProperty("format").GetString(), listed.GetProperty("files").GetInt32()));
        Assert.Empty(listed.GetProperty("stores").EnumerateArray());

        var started = await http.PostAsync($"/api/corpora/{name}/prepare?tokenizer=byte", null);
        Assert.True(started.StatusCode is HttpStatusCode.Accepted or HttpStatusCode.OK, await started.Content.ReadAsStringAsync());
        JsonElement store = default;
        for (var until = DateTime.UtcNow.AddMinutes(2); DateTime.UtcNow < until; await Task.Delay(250))
        {
            var detail = await http.GetFromJsonAsync<JsonElement>($"/api/corpora/{name}");
            store = detail.GetProperty("corpus").GetProperty("stores").EnumerateArray().FirstOrDefault(s => s.TryGetProperty("prepared", out _));
            if (store.ValueKind == JsonValueKind.Object) { Assert.StartsWith("document 0: w0 w0", detail.GetProperty("preview")[0].GetString()); break; }
        }
        Assert.True(store.ValueKind == JsonValueKind.Object, "the corpus was not prepared within 2 minutes");
        var prepared = store.GetProperty("prepared");
        Assert.Equal(("byte", "documents", 400), (store.GetProperty("tokenizer").GetString(), store.GetProperty("split").GetString(), prepared.GetProperty("documents").GetInt32()));
        Assert.True(prepared.GetProperty("val_documents").GetInt32() > 0);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync($"/api/corpora/{name}/prepare?tokenizer=byte", null)).StatusCode);   // prepared already

        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsync($"/api/corpora/{name}/prepare?tokenizer=sentencepiece", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync("/api/corpora/no-such-corpus/prepare", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"/api/corpora/{Uri.EscapeDataString("/etc")}")).StatusCode);   // not in a data root

        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync($"/api/corpora/{name}")).StatusCode);
        var after = await http.GetFromJsonAsync<JsonElement>($"/api/corpora/{name}");
        Assert.Empty(after.GetProperty("corpus").GetProperty("stores").EnumerateArray());
        Assert.True(File.Exists(Path.Combine(folder, "part-0.jsonl.gz")), "deleting a data root's corpus deleted its files");

        // a bad shard: the preparation fails with the file and line, stored where the page reads it; nothing is stored
        var bad = Directory.CreateDirectory(Path.Combine(dashboard.CorpusRoot, "bad-shards")).FullName;
        await File.WriteAllTextAsync(Path.Combine(bad, "a.jsonl"), "{\"text\": \"fine\"}\n{\"body\": \"no text here\"}\n");
        Assert.Equal(HttpStatusCode.Accepted, (await http.PostAsync($"/api/corpora/{Uri.EscapeDataString(bad)}/prepare?tokenizer=byte", null)).StatusCode);
        string? error = null;
        for (var until = DateTime.UtcNow.AddMinutes(1); error is null && DateTime.UtcNow < until; await Task.Delay(250))
            error = (await http.GetFromJsonAsync<JsonElement>($"/api/corpora/{Uri.EscapeDataString(bad)}")).GetProperty("corpus").GetProperty("stores").EnumerateArray()
                .Select(s => s.TryGetProperty("preparing", out var p) && p.TryGetProperty("error", out var e) ? e.GetString() : null).FirstOrDefault(e => e is not null);
        Assert.Contains($"'{Path.Combine(bad, "a.jsonl")}' line 2: no text field 'text'", error);
        Assert.DoesNotContain((await http.GetFromJsonAsync<JsonElement>($"/api/corpora/{Uri.EscapeDataString(bad)}")).GetProperty("corpus").GetProperty("stores").EnumerateArray(),
            s => s.TryGetProperty("prepared", out _));

        // a link out of the data roots inside a corpus folder: refused before anything runs
        File.CreateSymbolicLink(Path.Combine(bad, "leak.txt"), "/etc/hostname");
        var refused = await http.PostAsync($"/api/corpora/{Uri.EscapeDataString(bad)}/prepare?tokenizer=byte", null);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("outside the data roots", await refused.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_reproduce_group_launches_the_matched_set_or_nothing()
    {
        int before = await RunCount();
        var bad = await http.PostAsJsonAsync("/api/runs/group", new { group = "reproduce-cpu", device = "cuda:7" });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("cpu-mot: device", await bad.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsJsonAsync("/api/runs/group", new { group = "no-such-group" })).StatusCode);
        Assert.Equal(before, await RunCount());

        var created = await http.PostAsJsonAsync("/api/runs/group", new { group = "reproduce-cpu", steps = 2 });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var set = await created.Content.ReadFromJsonAsync<JsonElement>();
        var ids = set.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToList();
        Assert.Equal(5, ids.Count);
        Assert.Equal($"/compare?ids={string.Join(',', ids)}", set.GetProperty("compare").GetString());
        foreach (var id in ids)
        {
            var run = await http.GetRunAsync(id);
            Assert.Contains(set.GetProperty("tag").GetString(), run.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
            Assert.Equal(2, run.GetProperty("total_steps").GetInt64());
            await http.DeleteAsync($"/api/runs/{id}");
        }
    }
}

public class UploadAndMarkupTests(DashboardFactory dashboard) : IClassFixture<DashboardFactory>
{
    readonly HttpClient http = dashboard.Client();

    static MultipartFormDataContent File(byte[] bytes, string name)
    {
        var form = new MultipartFormDataContent();
        form.Add(new ByteArrayContent(bytes), "file", name);
        return form;
    }

    [Fact]
    public async Task Uploads_land_under_the_data_folder_with_generated_names_and_bad_ones_are_refused()
    {
        var ok = await http.PostAsync("/api/corpora/upload", File(System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("plain text. ", 500))), "../../../etc/evil name.txt"));
        Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        var path = (await ok.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("corpus").GetString()!;
        Assert.StartsWith(Path.Combine(dashboard.DataFolder, "uploads") + "/", path);
        Assert.DoesNotContain("..", path);
        Assert.True(System.IO.File.Exists(path));
        var run = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", corpus = path, steps = 1 });
        Assert.Equal(HttpStatusCode.Created, run.StatusCode);                  // the uploads folder is a data root

        var binary = await http.PostAsync("/api/corpora/upload", File([0, 1, 2, 0, 5], "blob.bin"));
        Assert.Equal(HttpStatusCode.BadRequest, binary.StatusCode);
        Assert.Contains("looks binary", await binary.Content.ReadAsStringAsync());
        var empty = await http.PostAsync("/api/corpora/upload", File([], "empty.txt"));
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        Assert.Single(Directory.GetFiles(Path.Combine(dashboard.DataFolder, "uploads")));   // nothing half-written stays
    }

    [Fact]
    public async Task Run_names_and_notes_are_stored_verbatim_and_rendered_as_text()
    {
        const string name = "<img src=x onerror=alert(1)><script>alert(2)</script>";
        var created = await http.PostAsJsonAsync("/api/runs", new { preset = "tiny-dense", steps = 1, name, notes = "<b>bold?</b>" });
        var run = (await created.Content.ReadFromJsonAsync<JsonElement>());
        Assert.Equal(name, run.GetProperty("name").GetString());   // how the pages render it: ComponentTests
    }
}

public class RunCreationTests(DashboardFactory dashboard) : IClassFixture<DashboardFactory>
{
    /// <summary>A run is inserted, then named after its id: the scheduler, reading from another connection, launched a
    /// run caught in between with an empty folder path ("the worker could not be started: the value cannot be an empty
    /// string"). A watcher polls while runs are created (remote ones: nothing launches them) and must never see one.</summary>
    [Fact]
    public async Task A_queued_run_is_never_visible_without_its_run_folder()
    {
        var runs = dashboard.Services.GetRequiredService<MoTLab.WebApp.Runs.RunService>();
        var dbs = dashboard.Services.GetRequiredService<Microsoft.EntityFrameworkCore.IDbContextFactory<MoTLab.WebApp.Data.MoTLabDb>>();
        using var stop = new CancellationTokenSource();
        int seen = 0, polls = 0;
        var watcher = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await using var db = await dbs.CreateDbContextAsync();
                seen += await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Runs, r => r.RunDir == "");
                polls++;
            }
        });
        for (int i = 0; i < 150; i++)
        {
            var (run, errors) = await runs.CreateAsync(new MoTLab.WebApp.Runs.CreateRunRequest { Preset = "tiny-dense", Device = "remote" });
            Assert.True(run is not null, string.Join("; ", errors.SelectMany(e => e.Value)));
        }
        stop.Cancel();
        await watcher;
        Assert.True(polls > 10, $"the watcher polled only {polls} times");
        Assert.Equal(0, seen);
    }
}
