using System.Text.Json;

namespace MoTLab.WebApp.Components;

public static class JsonExtensions
{
    public static string PrettyJson(this string json) =>
        JsonSerializer.Serialize(JsonDocument.Parse(json).RootElement, new JsonSerializerOptions { WriteIndented = true });
}
