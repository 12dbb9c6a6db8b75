using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoTLab.Shared;

/// <summary>One JSON dialect everywhere: snake_case, enums as snake_case strings (their names only), strict on unknown fields.</summary>
public static class Json
{
    public static readonly JsonSerializerOptions Options = Create(indented: false);
    public static readonly JsonSerializerOptions Indented = Create(indented: true);

    /// <summary>Read-only from the start, so that its type metadata (which sweeps read to know the config's fields) is
    /// there before anything was serialized.</summary>
    static JsonSerializerOptions Create(bool indented)
    {
        var options = Dialect(indented);
        options.TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver();
        options.MakeReadOnly();
        return options;
    }

    static JsonSerializerOptions Dialect(bool indented) => new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false) },   // "mot", never 1
        WriteIndented = indented,
        RespectNullableAnnotations = true,   // "model": null is an error naming the field, not a crash later
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
