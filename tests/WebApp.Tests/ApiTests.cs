using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

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
}
