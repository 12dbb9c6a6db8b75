using MoTLab.Shared.Config;

namespace MoTLab.WebApp.Runs;

/// <summary>Body of POST /api/runs and the New-run form: a preset and/or a full config, plus overrides.</summary>
public sealed record CreateRunRequest
{
    public string? Name { get; init; }
    public string? Preset { get; init; }
    /// <summary>Full config; when a preset is named too, this replaces the preset's config.</summary>
    public RunConfig? Config { get; init; }
    public int? Steps { get; init; }
    public string? Corpus { get; init; }
    /// <summary>"cpu" (default), "cuda" (any free GPU) or "cuda:N".</summary>
    public string? Device { get; init; }
    public IReadOnlyList<string>? Tags { get; init; }
    public string? Notes { get; init; }
    /// <summary>The run this one was cloned from, if any.</summary>
    public int? ParentId { get; init; }
}
