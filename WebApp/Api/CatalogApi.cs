using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using MoTLab.Shared.Config;
using MoTLab.Shared.Data;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Api;

/// <summary>What a run can be made of: the presets (and their matched sets) and the corpora, with uploads.</summary>
public static class CatalogApi
{
    public sealed record PresetInfo(string Name, string Description, long Parameters, double TrainFlopsPerToken, RunConfig Config);
    public sealed record UploadedCorpus(string Corpus);

    public static RouteGroupBuilder MapCatalog(this RouteGroupBuilder api)
    {
        api.MapGet("/presets", ListPresets);
        api.MapGet("/presets/groups", () => TypedResults.Ok(Presets.Groups));
        api.MapGet("/corpora", (CorpusCatalog corpora) => TypedResults.Ok(corpora.List(details: true)));
        api.MapGet("/corpora/{name}", GetCorpus);
        api.MapPost("/corpora/{name}/prepare", PrepareCorpus);
        api.MapDelete("/corpora/{name}", DeleteCorpus);
        api.MapPost("/corpora/upload", Upload).ProducesProblem(StatusCodes.Status413PayloadTooLarge).ProducesProblem(StatusCodes.Status507InsufficientStorage)
            .DisableAntiforgery();   // an API for scripts (bearer token when exposed), not a browser form
        return api;
    }

    static Ok<IEnumerable<PresetInfo>> ListPresets() => TypedResults.Ok(Presets.All.Select(p => new PresetInfo(p.Name, p.Description,
        ModelSize.Parameters(p.Config.Model), 3 * ModelSize.ForwardFlopsPerToken(p.Config.Model, p.Config.Train.BatchSize), p.Config)));

    /// <summary>A corpus with its first documents.</summary>
    public sealed record CorpusDetail(CorpusCatalog.CorpusInfo Corpus, IReadOnlyList<string> Preview);

    /// <summary>A corpus is named by its built-in name or its path (URL-encoded: <c>%2Fdata%2Fc4</c>), as data.corpus names it.</summary>
    static string NameOf(string name) => Uri.UnescapeDataString(name);

    static Results<Ok<CorpusDetail>, NotFound<ProblemDetails>> GetCorpus(string name, CorpusCatalog corpora)
    {
        if (corpora.Find(NameOf(name)) is not { } c) return NoCorpus(name);
        IReadOnlyList<string> preview = [];
        if (c.Problem is null) try { preview = corpora.Preview(c.Name); } catch (CorpusException e) { c = c with { Problem = e.Message }; }
        return TypedResults.Ok(new CorpusDetail(c, preview));
    }

    static NotFound<ProblemDetails> NoCorpus(string name) =>
        TypedResults.NotFound(new ProblemDetails { Title = "no such corpus", Detail = $"no corpus '{NameOf(name)}': GET /api/corpora lists them", Status = 404 });

    /// <summary>Starts preparing the corpus's token store for <paramref name="tokenizer"/> (default gpt2): 202 while it runs
    /// (GET the corpus for its progress), 200 when it is prepared already.</summary>
    static Results<Accepted<CorpusCatalog.CorpusInfo>, Ok<CorpusCatalog.CorpusInfo>, NotFound<ProblemDetails>, ValidationProblem> PrepareCorpus(
        string name, CorpusCatalog corpora, CorpusPreparations preparations, string? tokenizer = null)
    {
        if (corpora.Find(NameOf(name)) is not { } c) return NoCorpus(name);
        if (c.Problem is { } unreadable) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["corpus"] = [unreadable] });
        var (outcome, problem) = preparations.Start(c.Name, tokenizer ?? Vocabularies.Gpt2);
        if (outcome == CorpusPreparations.Outcome.Refused)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { [problem!.StartsWith("tokenizer", StringComparison.Ordinal) ? "tokenizer" : "corpus"] = [problem] });
        var now = corpora.Find(c.Name)!;
        return outcome == CorpusPreparations.Outcome.Prepared ? TypedResults.Ok(now) : TypedResults.Accepted($"/api/corpora/{Uri.EscapeDataString(c.Name)}", now);
    }

    /// <summary>Deletes the corpus's token stores (they are prepared again when needed) and, for an upload, its file.</summary>
    static Results<NoContent, NotFound<ProblemDetails>, Conflict<ProblemDetails>> DeleteCorpus(string name, CorpusCatalog corpora)
    {
        if (corpora.Find(NameOf(name)) is null) return NoCorpus(name);
        if (corpora.Delete(NameOf(name)) is { } problem) return TypedResults.Conflict(new ProblemDetails { Title = "corpus in use", Detail = problem, Status = 409 });
        return TypedResults.NoContent();
    }

    static ValidationProblem Invalid(string message) => TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["file"] = [message] });

    static ProblemHttpResult TooLarge(UploadStore uploads) =>
        TypedResults.Problem($"the upload is larger than the {uploads.MaxBytes / 1024 / 1024} MB limit (MoTLab:MaxUploadMB)", statusCode: StatusCodes.Status413PayloadTooLarge);

    /// <summary>Multipart upload of one UTF-8 text file, streamed to the uploads folder (never buffered whole) and cut off
    /// as soon as it passes MoTLab:MaxUploadMB; stored with a generated name.</summary>
    static async Task<Results<Created<UploadedCorpus>, ValidationProblem, ProblemHttpResult>> Upload(HttpRequest request, UploadStore uploads, CancellationToken ct)
    {
        const long MultipartOverhead = 64 * 1024;
        if (request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } cap)
            cap.MaxRequestBodySize = uploads.MaxBytes + MultipartOverhead;
        if (request.ContentLength > uploads.MaxBytes + MultipartOverhead) return TooLarge(uploads);
        if (!Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out var type) || !type.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || Microsoft.Net.Http.Headers.HeaderUtilities.RemoveQuotes(type.Boundary).Value is not { Length: > 0 and <= 200 } boundary)
            return Invalid("send multipart/form-data with one file");
        string? saved = null;
        try
        {
            var reader = new Microsoft.AspNetCore.WebUtilities.MultipartReader(boundary, request.Body) { HeadersCountLimit = 16 };
            for (int sections = 0; await reader.ReadNextSectionAsync(ct) is { } section; sections++)
            {
                if (sections >= 16) return Invalid("send exactly one file (and at most a few form fields)");
                if (Microsoft.AspNetCore.WebUtilities.MultipartSectionConverterExtensions.AsFileSection(section) is not { } file) continue;
                if (saved is not null) return Invalid("send exactly one file");
                saved = await uploads.SaveAsync(file.FileStream!, file.FileName, ct);
            }
            if (saved is null) return Invalid("send exactly one file");
            var created = saved; saved = null;
            return TypedResults.Created("/api/corpora", new UploadedCorpus(created));
        }
        catch (UploadTooLargeException) { return TooLarge(uploads); }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge) { return TooLarge(uploads); }
        catch (UploadStorageException e) { return TypedResults.Problem(e.Message, statusCode: StatusCodes.Status507InsufficientStorage); }
        catch (Exception e) when (e is InvalidDataException or IOException or BadHttpRequestException or CorpusException) { return Invalid(e.Message); }
        finally { if (saved is not null) File.Delete(saved); }   // a second file after the first: nothing is kept
    }
}
