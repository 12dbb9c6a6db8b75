using MoTLab.Shared.Data;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Api;

/// <summary>The REST API (OpenAPI document at /openapi/v1.json).</summary>
public static class RunsApi
{
    public sealed record RunSummary(int Id, string Name, RunStatus Status, string? Preset, FfnKind Kind, string[] Tags, string Device,
        DateTime CreatedAt, DateTime? StartedAt, DateTime? EndedAt, long LastStep, long TotalSteps, double? LastLoss, double? BestLoss,
        double? LastEvalLoss, double? TokensPerS, double? ElapsedS, long? Parameters, double FlopsPerToken, string? Error, string? Warning, string? StatusDetail, int? ParentId);

    public sealed record TransitionRequest(int Steps, double? CapacityFactor = null);
    public sealed record FineTuneRequest(FfnKind Kind, int Steps, int Experts = 4, int Rank = 4, double? LearningRate = null);
    public sealed record LaunchGroupRequest(string Group, int? Steps = null, string? Device = null);
    public sealed record RunDetail(RunSummary Run, JsonElement Config, string Notes);

    public static RunSummary Summary(RunRow r) => new(r.Id, r.Name, r.Status, r.Preset, r.Kind,
        r.Tags.Split(',', StringSplitOptions.RemoveEmptyEntries), r.Device, r.CreatedAt, r.StartedAt, r.EndedAt, r.LastStep, r.TotalSteps,
        r.LastLoss, r.BestLoss, r.LastEvalLoss, r.TokensPerS, r.ElapsedS, r.Parameters, r.FlopsPerToken, r.Error, r.Warning, r.StatusDetail, r.ParentId);

    public static IEndpointRouteBuilder MapRunsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").WithTags("MoTLab");

        // newest first, a page at a time (limit ≤ 1,000; the total is in X-Total-Count); status is any RunStatus, in any case
        api.MapGet("/runs", async (RunService runs, HttpResponse response, string? q, string? status, int? limit, int? offset, CancellationToken ct) =>
        {
            RunStatus? wanted = null;
            if (status is not null)
            {
                if (!Enum.TryParse<RunStatus>(status, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed))
                    return Results.ValidationProblem(new Dictionary<string, string[]> { ["status"] = [$"'{status}' is not a run status: {string.Join(", ", Enum.GetNames<RunStatus>().Select(n => n.ToLowerInvariant()))}"] });
                wanted = parsed;
            }
            if (limit is < 1 or > 1000) return Results.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = ["must be between 1 and 1,000"] });
            if (offset is < 0) return Results.ValidationProblem(new Dictionary<string, string[]> { ["offset"] = ["must be ≥ 0"] });
            var all = await runs.ListAsync(q, wanted, ct);
            response.Headers["X-Total-Count"] = all.Count.ToString(CultureInfo.InvariantCulture);
            return Results.Ok(all.Skip(offset ?? 0).Take(limit ?? 1000).Select(Summary));
        });

        api.MapPost("/runs", async (CreateRunRequest request, RunService runs, CancellationToken ct) =>
        {
            var (run, errors) = await runs.CreateAsync(request, ct);
            return run is null ? Results.ValidationProblem(errors) : Results.Created($"/api/runs/{run.Id}", Summary(run));
        });

        // a matched set ("Reproduce the paper"): all runs or none
        api.MapPost("/runs/group", async (LaunchGroupRequest request, RunGroups groups, CancellationToken ct) =>
        {
            var (set, errors) = await groups.LaunchAsync(request.Group, request.Steps, request.Device, ct);
            return set is null ? Results.ValidationProblem(errors) : Results.Created(set.CompareUrl, new { set.Tag, set.Ids, compare = set.CompareUrl });
        });

        // transition tuning: a MoT run continues as a token-choice MoE sharing its controller and experts
        api.MapPost("/runs/{id:int}/transition", async (int id, TransitionRequest request, RunGroups groups, RunService runs, CancellationToken ct) =>
        {
            if (await runs.GetAsync(id, ct) is null) return Results.NotFound();
            var (run, errors) = await groups.TransitionAsync(id, request.Steps, request.CapacityFactor ?? 2.0, ct);
            return run is null ? Results.ValidationProblem(errors) : Results.Created($"/api/runs/{run.Id}", Summary(run));
        });

        // lightweight experts: a dense run's checkpoint, frozen, fine-tuned with MoV or MoLoRA
        api.MapPost("/runs/{id:int}/finetune", async (int id, FineTuneRequest request, RunGroups groups, RunService runs, CancellationToken ct) =>
        {
            if (await runs.GetAsync(id, ct) is null) return Results.NotFound();
            var (run, errors) = await groups.FineTuneAsync(id, request.Kind, request.Experts, request.Rank, request.Steps, request.LearningRate, ct);
            return run is null ? Results.ValidationProblem(errors) : Results.Created($"/api/runs/{run.Id}", Summary(run));
        });

        api.MapGet("/runs/{id:int}", async (int id, RunService runs, CancellationToken ct) =>
            await runs.GetAsync(id, ct) is { } r
                ? Results.Ok(new RunDetail(Summary(r), JsonDocument.Parse(r.ConfigJson).RootElement, r.Notes))
                : Results.NotFound());

        api.MapDelete("/runs/{id:int}", async (int id, RunService runs, IWorkerControl workers, CancellationToken ct) =>
            await runs.DeleteAsync(id, workers.KillAsync, ct) ? Results.NoContent() : Results.NotFound());

        api.MapPost("/runs/{id:int}/cancel", async (int id, RunService runs, CancellationToken ct) =>
            await runs.CancelAsync(id, ct) switch
            {
                RunService.CancelOutcome.NotFound => Results.NotFound(),
                RunService.CancelOutcome.AlreadyEnded => Results.Problem("the run has ended already; there is nothing to cancel", statusCode: StatusCodes.Status409Conflict),
                _ => Results.Accepted($"/api/runs/{id}"),
            });

        api.MapPost("/runs/{id:int}/resume", async (int id, RunService runs, CancellationToken ct) =>
            await runs.GetAsync(id, ct) is null ? Results.NotFound()
            : await runs.ResumeAsync(id, ct) is { } problem ? Results.Problem(problem, statusCode: StatusCodes.Status409Conflict)
            : Results.Accepted($"/api/runs/{id}"));

        // a token for a worker the user starts on another machine (device "remote"); the token is shown only here
        api.MapPost("/runs/{id:int}/worker-token", async (int id, RemoteWorkers remote, HttpRequest request, IOptions<MoTLabOptions> options, CancellationToken ct) =>
        {
            var (token, problem) = await remote.IssueTokenAsync(id, ct);
            if (token is null) return problem == "no such run" ? Results.NotFound() : Results.Problem(problem, statusCode: StatusCodes.Status409Conflict);
            var hub = RemoteWorkers.HubUrl(options.Value.HubUrl, $"{request.Scheme}://{request.Host}");
            return Results.Ok(new { token, hub, command = RemoteWorkers.Command(id, hub, token) });
        });

        api.MapGet("/runs/{id:int}/metrics", async (int id, MetricsQuery metrics, RunService runs, string? format, int? maxPoints,
            long? from, long? to, CancellationToken ct) =>
        {
            if (await runs.GetAsync(id, ct) is null) return Results.NotFound();
            if (maxPoints is < 3 or > 1_000_000) return Results.ValidationProblem(new Dictionary<string, string[]> { ["maxPoints"] = ["must be between 3 and 1,000,000"] });
            // written out as read: a full-resolution read of a long run is never held whole
            var rows = metrics.StreamAsync(id, maxPoints ?? 2000, from, to, ct);
            return format switch
            {
                null or "json" => Results.Ok(rows),
                "csv" => Results.Stream(async body =>
                {
                    await using var writer = new StreamWriter(body, new UTF8Encoding(false));
                    await writer.WriteAsync(MetricColumns.CsvHeader);
                    await foreach (var m in rows) await writer.WriteAsync(MetricColumns.CsvLine(m));
                }, "text/csv; charset=utf-8"),
                _ => Results.ValidationProblem(new Dictionary<string, string[]> { ["format"] = ["must be json or csv"] }),
            };
        });

        // the Compare page's data as CSV: one metric of several runs at full resolution, with the page's smoothing (computed
        // over each run's whole series, as the page does); a CSV field is quoted when a run's name needs it
        api.MapGet("/compare", async (string? ids, string? metric, string? smooth, string? format, RunService runs, MetricsQuery metrics, CancellationToken ct) =>
        {
            var errors = new Dictionary<string, string[]>();
            var idList = (ids ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
            if (idList.Count == 0 || idList.Count > MaxCompareRuns) errors["ids"] = [$"give 1 to {MaxCompareRuns} run ids, comma-separated, e.g. ids=3,4"];
            else if (idList.FirstOrDefault(i => !int.TryParse(i, CultureInfo.InvariantCulture, out _)) is { } bad) errors["ids"] = [$"'{bad}' is not a run id"];
            var info = MetricCatalog.Find(metric ?? "train_loss");
            if (info is null) errors["metric"] = [$"'{metric}' is not a metric: {string.Join(", ", MetricCatalog.All.Select(m => m.Key))} or eval.NAME"];
            var smoothing = Smoothing.Parse(smooth ?? "none");
            if (smoothing is null) errors["smooth"] = [$"'{smooth}' is not a smoothing: none, ema-W, twema-W (W in 0..{Smoothing.MaxWeight}) or avg-N (N in 1..{Smoothing.MaxWindow})"];
            if (format is not (null or "csv")) errors["format"] = ["must be csv"];
            if (errors.Count > 0) return Results.ValidationProblem(errors);
            var found = new List<RunRow>();
            foreach (var id in idList.Select(i => int.Parse(i, CultureInfo.InvariantCulture)).Distinct())
                if (await runs.GetAsync(id, ct) is { } run) found.Add(run);
                else return Results.Problem($"run {id} does not exist", statusCode: StatusCodes.Status404NotFound);
            return Results.Stream(async body =>
            {
                await using var writer = new StreamWriter(body, new UTF8Encoding(false));
                await writer.WriteAsync($"run_id,run_name,step,tokens,elapsed_s,{info!.Key},{info.Key}_smoothed\n");
                foreach (var run in found)
                {
                    var smoother = info.EveryStep && smoothing!.Kind != SmoothingKind.None ? smoothing.Start(run.TotalSteps) : null;
                    await foreach (var m in metrics.StreamAsync(run.Id, int.MaxValue, ct: ct))
                    {
                        var value = info.Of(m);
                        var smoothed = smoother?.Add(m.Step, value ?? double.NaN);
                        if (value is null) continue;
                        await writer.WriteAsync(string.Join(',', [run.Id.ToString(CultureInfo.InvariantCulture), CsvField(run.Name), m.Step.ToString(CultureInfo.InvariantCulture),
                            m.Tokens.ToString(CultureInfo.InvariantCulture), F(m.ElapsedS), F(value), F(smoothed)]) + "\n");
                    }
                }
            }, "text/csv; charset=utf-8", fileDownloadName: "compare.csv");
        });

        // the worker's whole output as it stands (it may still be growing)
        api.MapGet("/runs/{id:int}/log", async (int id, RunService runs, CancellationToken ct) =>
        {
            if (await runs.GetAsync(id, ct) is not { } run) return Results.NotFound();
            var path = RunFolder.Log(run.RunDir);
            if (!File.Exists(path)) return Results.Problem($"run {id} has no worker log yet", statusCode: StatusCodes.Status404NotFound);
            return Results.Stream(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete), "text/plain; charset=utf-8");
        });

        api.MapGet("/runs/{id:int}/routing", async (int id, long? step, int? layer, IDbContextFactory<MoTLabDb> dbs, CancellationToken ct) =>
        {
            await using var db = await dbs.CreateDbContextAsync(ct);
            var q = db.Routing.AsNoTracking().Where(r => r.RunId == id);
            if (layer is { } l) q = q.Where(r => r.Layer == l);
            if (step is { } s) q = q.Where(r => r.Step <= s);
            var latestStep = await q.MaxAsync(r => (long?)r.Step, ct);
            if (latestStep is null) return Results.NotFound();
            var rows = await q.Where(r => r.Step == latestStep).OrderBy(r => r.Layer).ToListAsync(ct);
            return Results.Ok(rows.Select(r => JsonSerializer.Deserialize<RoutingSnapshot>(r.Json, Json.Options)));
        });

        api.MapGet("/runs/{id:int}/checkpoints", async (int id, RunService runs, CancellationToken ct) =>
            await runs.GetAsync(id, ct) is null ? Results.NotFound() : Results.Ok(await runs.CheckpointsAsync(id, ct)));

        api.MapGet("/presets", () => Presets.All.Select(p => new
        {
            p.Name, p.Description, Parameters = ModelSize.Parameters(p.Config.Model),
            TrainFlopsPerToken = 3 * ModelSize.ForwardFlopsPerToken(p.Config.Model, p.Config.Train.BatchSize), p.Config,
        }));

        api.MapGet("/presets/groups", () => Presets.Groups);
        api.MapGet("/corpora", (CorpusCatalog corpora) => corpora.List());
        // the dashboard's own vital signs: queues that must drain, memory that must stay flat under load
        api.MapGet("/health", (TelemetryWriter writer, RunEvents events) =>
        {
            using var self = System.Diagnostics.Process.GetCurrentProcess();
            return new
            {
                status = "ok", telemetry_queue = writer.QueueLength, hub_sends_in_flight = events.HubSendsInFlight,
                hub_events_dropped = events.HubEventsDropped, page_subscribers = events.Subscribers,
                gc_heap_mb = GC.GetTotalMemory(false) / 1048576.0, working_set_mb = self.WorkingSet64 / 1048576.0,
                uptime_s = (DateTime.Now - self.StartTime).TotalSeconds,
            };
        });

        // multipart upload of one UTF-8 text file, streamed to the uploads folder (never buffered whole) and cut off as soon
        // as it passes MoTLab:MaxUploadMB; stored with a generated name
        api.MapPost("/corpora/upload", async (HttpRequest request, UploadStore uploads, CancellationToken ct) =>
        {
            const long MultipartOverhead = 64 * 1024;
            if (request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } cap)
                cap.MaxRequestBodySize = uploads.MaxBytes + MultipartOverhead;
            if (request.ContentLength > uploads.MaxBytes + MultipartOverhead) return TooLarge(uploads);
            if (!Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out var type) || !type.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
                || Microsoft.Net.Http.Headers.HeaderUtilities.RemoveQuotes(type.Boundary).Value is not { Length: > 0 and <= 200 } boundary)
                return Results.ValidationProblem(new Dictionary<string, string[]> { ["file"] = ["send multipart/form-data with one file"] });
            string? saved = null;
            try
            {
                var reader = new Microsoft.AspNetCore.WebUtilities.MultipartReader(boundary, request.Body) { HeadersCountLimit = 16 };
                for (int sections = 0; await reader.ReadNextSectionAsync(ct) is { } section; sections++)
                {
                    if (sections >= 16) return Results.ValidationProblem(new Dictionary<string, string[]> { ["file"] = ["send exactly one file (and at most a few form fields)"] });
                    if (Microsoft.AspNetCore.WebUtilities.MultipartSectionConverterExtensions.AsFileSection(section) is not { } file) continue;
                    if (saved is not null) return Results.ValidationProblem(new Dictionary<string, string[]> { ["file"] = ["send exactly one file"] });
                    saved = await uploads.SaveAsync(file.FileStream!, file.FileName, ct);
                }
                if (saved is null) return Results.ValidationProblem(new Dictionary<string, string[]> { ["file"] = ["send exactly one file"] });
                var created = saved; saved = null;
                return Results.Created($"/api/corpora", new { corpus = created });
            }
            catch (UploadTooLargeException) { return TooLarge(uploads); }
            catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge) { return TooLarge(uploads); }
            catch (UploadStorageException e) { return Results.Problem(e.Message, statusCode: StatusCodes.Status507InsufficientStorage); }
            catch (Exception e) when (e is InvalidDataException or IOException or BadHttpRequestException or CorpusException)
            {
                return Results.ValidationProblem(new Dictionary<string, string[]> { ["file"] = [e.Message] });
            }
            finally { if (saved is not null) File.Delete(saved); }   // a second file after the first: nothing is kept
        }).DisableAntiforgery();   // an API for scripts (bearer token when exposed), not a browser form
        return app;
    }

    static IResult TooLarge(UploadStore uploads) =>
        Results.Problem($"the upload is larger than the {uploads.MaxBytes / 1024 / 1024} MB limit (MoTLab:MaxUploadMB)", statusCode: StatusCodes.Status413PayloadTooLarge);

    const int MaxCompareRuns = 50;

    static string F(double? v) => v?.ToString("R", CultureInfo.InvariantCulture) ?? "";

    /// <summary>RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.</summary>
    static string CsvField(string text) => text.IndexOfAny([',', '"', '\n', '\r']) < 0 ? text : $"\"{text.Replace("\"", "\"\"")}\"";
}
