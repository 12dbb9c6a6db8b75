using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MoTLab.Shared;
using MoTLab.Shared.Config;

namespace MoTLab.WebApp.Tests;

/// <summary>POST /api/runs with thousands of generated bodies — mutated configs with wrong types, huge, negative
/// and missing values, unknown fields and broken JSON: the answer is always 201 or 400, never a 500.</summary>
public class FuzzTests(DashboardFactory dashboard) : IClassFixture<DashboardFactory>
{
    static readonly JsonNode?[] Odd =
    [
        null, 0, -1, 1, 3, 7, int.MaxValue, long.MinValue, 1e308, -1e-9, 0.5, double.Epsilon, "", "x", "../../etc/passwd", "/etc/passwd",
        "cuda:99", "mot", "dense", true, false, new JsonArray(), new JsonArray(1, 2, 3), new JsonObject(), new JsonArray(-5, 1000),
    ];

    [Fact]
    public async Task Two_thousand_generated_bodies_never_get_a_500()
    {
        using var http = dashboard.Client();
        var rng = new Random(20261128);
        var template = JsonSerializer.SerializeToNode(Presets.Find("tiny-mot")!.Config, Json.Options)!.AsObject();
        var leaves = Paths(template, "").ToList();
        var created = new List<int>();
        var statuses = new Dictionary<HttpStatusCode, int>();
        for (int i = 0; i < 2000; i++)
        {
            var config = template.DeepClone().AsObject();
            for (int m = rng.Next(1, 4); m > 0; m--)
            {
                var path = leaves[rng.Next(leaves.Count)];
                Set(config, path, Odd[rng.Next(Odd.Length)]?.DeepClone());
            }
            if (rng.Next(10) == 0) config[$"unknown_{rng.Next(5)}"] = 1;
            var body = new JsonObject { ["config"] = config, ["device"] = rng.Next(6) == 0 ? (JsonNode)Odd[rng.Next(Odd.Length)]?.DeepClone()! : "cpu" }.ToJsonString();
            if (rng.Next(15) == 0) body = body[..rng.Next(body.Length)];       // truncated JSON
            var response = await http.PostAsync("/api/runs", new StringContent(body, Encoding.UTF8, "application/json"));
            statuses[response.StatusCode] = statuses.GetValueOrDefault(response.StatusCode) + 1;
            Assert.True(response.StatusCode is HttpStatusCode.Created or HttpStatusCode.BadRequest,
                $"{(int)response.StatusCode} for {body}: {await response.Content.ReadAsStringAsync()}");
            if (response.StatusCode == HttpStatusCode.Created)
            {
                int id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
                created.Add(id);
                await http.DeleteAsync($"/api/runs/{id}");             // nothing left queued or running
            }
        }
        Assert.True(statuses.GetValueOrDefault(HttpStatusCode.BadRequest) > 1000, string.Join(", ", statuses));
        Assert.DoesNotContain((await http.GetFromJsonAsync<JsonElement>("/api/runs")).EnumerateArray(),
            r => r.GetProperty("status").GetString() is "queued" or "running");
    }

    static IEnumerable<string> Paths(JsonObject o, string prefix)
    {
        foreach (var (k, v) in o)
        {
            var path = prefix.Length == 0 ? k : $"{prefix}.{k}";
            if (v is JsonObject child) { yield return path; foreach (var p in Paths(child, path)) yield return p; }
            else yield return path;
        }
    }

    static void Set(JsonObject root, string path, JsonNode? value)
    {
        var parts = path.Split('.');
        JsonObject node = root;
        foreach (var p in parts[..^1]) { if (node[p] is JsonObject next) node = next; else return; }
        node[parts[^1]] = value;
    }
}
