using System.Net.Http.Json;
using System.Text.Json;

namespace MoTLab.WebApp.Tests;

/// <summary>The few calls every live-run test makes against GET /api/runs/{id}.</summary>
static class RunApi
{
    public static async Task<JsonElement> GetRunAsync(this HttpClient http, int id) =>
        (await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}")).GetProperty("run");

    public static string Status(this JsonElement run) => run.GetProperty("status").GetString()!;

    /// <summary>An optional string field (the API leaves out nulls).</summary>
    public static string? Text(this JsonElement run, string field) => run.TryGetProperty(field, out var v) ? v.GetString() : null;

    /// <summary>Polls the run until <paramref name="done"/> holds; a timeout fails with the run's last state.</summary>
    public static async Task<JsonElement> WaitForRunAsync(this HttpClient http, int id, Func<JsonElement, bool> done, int seconds = 240)
    {
        for (var t = DateTime.UtcNow; DateTime.UtcNow - t < TimeSpan.FromSeconds(seconds); await Task.Delay(250))
            if (await http.GetRunAsync(id) is var r && done(r)) return r;
        throw new TimeoutException($"run {id}: {await http.GetRunAsync(id)}");
    }
}
