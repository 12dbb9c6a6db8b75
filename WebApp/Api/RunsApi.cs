using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Api;

/// <summary>Runs: list, create (one or a matched set, a transition, a fine-tune), read, cancel, resume, delete, and what
/// they logged (metrics, routing, checkpoints, the worker's log). Each handler's return type names every answer it
/// gives, so the OpenAPI document (/openapi/v1.json) has its response schemas.</summary>
public static class RunsApi
{
    public sealed record RunSummary(int Id, string Name, RunStatus Status, string? Preset, FfnKind Kind, string[] Tags, string Device,
        DateTime CreatedAt, DateTime? StartedAt, DateTime? EndedAt, long LastStep, long TotalSteps, double? LastLoss, double? BestLoss,
        double? LastEvalLoss, double? TokensPerS, double? ElapsedS, long? Parameters, double FlopsPerToken, string? Error, string? Warning, string? StatusDetail, int? ParentId);

    public sealed record TransitionRequest(int Steps, double? CapacityFactor = null);
    public sealed record FineTuneRequest(FfnKind Kind, int Steps, int Experts = 4, int Rank = 4, double? LearningRate = null);
    /// <param name="SweepLearningRates">Sweep every model's learning rate first over this many rates (5 is the usual), each
    /// for 20 % of the steps; the group then trains at each model's best.</param>
    public sealed record LaunchGroupRequest(string Group, int? Steps = null, string? Device = null, int? SweepLearningRates = null);
    public sealed record RunDetail(RunSummary Run, JsonElement Config, string Notes);
    /// <param name="Sweeps">With sweep_learning_rates: the learning-rate sweeps launched first (Ids are their runs; the
    /// comparison follows, GET /api/sweeps/{id} says when).</param>
    public sealed record GroupLaunched(string Tag, IReadOnlyList<int> Ids, string Compare, IReadOnlyList<int>? Sweeps = null);
    public sealed record WorkerToken(string Token, string Hub, string Command);

    public static RunSummary Summary(RunRow r) => new(r.Id, r.Name, r.Status, r.Preset, r.Kind,
        r.Tags.Split(',', StringSplitOptions.RemoveEmptyEntries), r.Device, r.CreatedAt, r.StartedAt, r.EndedAt, r.LastStep, r.TotalSteps,
        r.LastLoss, r.BestLoss, r.LastEvalLoss, r.TokensPerS, r.ElapsedS, r.Parameters, r.FlopsPerToken, r.Error, r.Warning, r.StatusDetail, r.ParentId);

    public static RouteGroupBuilder MapRuns(this RouteGroupBuilder api)
    {
        api.MapGet("/runs", List);
        api.MapPost("/runs", Create);
        api.MapPost("/runs/group", LaunchGroup);
        api.MapPost("/runs/{id:int}/transition", Transition);
        api.MapPost("/runs/{id:int}/finetune", FineTune);
        api.MapGet("/runs/{id:int}", Get);
        api.MapDelete("/runs/{id:int}", Delete);
        api.MapPost("/runs/{id:int}/cancel", Cancel).ProducesProblem(StatusCodes.Status409Conflict);        // ended already
        api.MapPost("/runs/{id:int}/resume", Resume).ProducesProblem(StatusCodes.Status409Conflict);        // nothing to resume from
        api.MapPost("/runs/{id:int}/worker-token", IssueWorkerToken).ProducesProblem(StatusCodes.Status409Conflict);
        api.MapGet("/runs/{id:int}/metrics", Metrics);
        api.MapGet("/runs/{id:int}/log", Log).ProducesProblem(StatusCodes.Status404NotFound);             // no log yet
        api.MapGet("/runs/{id:int}/routing", Routing);
        api.MapGet("/runs/{id:int}/checkpoints", Checkpoints);
        return api;
    }

    static ValidationProblem Invalid(string field, string message) => TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] });

    /// <summary>Newest first, a page at a time (limit ≤ 1,000; the total is in X-Total-Count); status is any RunStatus, in any case.</summary>
    static async Task<Results<Ok<IEnumerable<RunSummary>>, ValidationProblem>> List(RunService runs, HttpResponse response, string? q, string? status,
        int? limit, int? offset, CancellationToken ct)
    {
        RunStatus? wanted = null;
        if (status is not null)
        {
            if (!Enum.TryParse<RunStatus>(status, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed))
                return Invalid("status", $"'{status}' is not a run status: {string.Join(", ", Enum.GetNames<RunStatus>().Select(n => n.ToLowerInvariant()))}");
            wanted = parsed;
        }
        if (limit is < 1 or > 1000) return Invalid("limit", "must be between 1 and 1,000");
        if (offset is < 0) return Invalid("offset", "must be ≥ 0");
        var all = await runs.ListAsync(q, wanted, ct);
        response.Headers["X-Total-Count"] = all.Count.ToString(CultureInfo.InvariantCulture);
        return TypedResults.Ok(all.Skip(offset ?? 0).Take(limit ?? 1000).Select(Summary));
    }

    static async Task<Results<Created<RunSummary>, ValidationProblem>> Create(CreateRunRequest request, RunService runs, CancellationToken ct)
    {
        var (run, errors) = await runs.CreateAsync(request, ct);
        return run is null ? TypedResults.ValidationProblem(errors) : TypedResults.Created($"/api/runs/{run.Id}", Summary(run));
    }

    /// <summary>A matched set ("Reproduce the paper"): all runs or none.</summary>
    static async Task<Results<Created<GroupLaunched>, ValidationProblem>> LaunchGroup(LaunchGroupRequest request, RunGroups groups, CancellationToken ct)
    {
        var (set, errors) = await groups.LaunchAsync(request.Group, request.Steps, request.Device, ct, sweepLearningRates: request.SweepLearningRates);
        return set is null ? TypedResults.ValidationProblem(errors)
            : TypedResults.Created(set.Url, new GroupLaunched(set.Tag, set.Ids, set.Sweeps is null ? set.CompareUrl : set.Url, set.Sweeps));
    }

    /// <summary>Transition tuning: a MoT run continues as a token-choice MoE sharing its controller and experts.</summary>
    static async Task<Results<Created<RunSummary>, NotFound, ValidationProblem>> Transition(int id, TransitionRequest request, RunGroups groups, RunService runs, CancellationToken ct)
    {
        if (await runs.GetAsync(id, ct) is null) return TypedResults.NotFound();
        var (run, errors) = await groups.TransitionAsync(id, request.Steps, request.CapacityFactor ?? 2.0, ct);
        return run is null ? TypedResults.ValidationProblem(errors) : TypedResults.Created($"/api/runs/{run.Id}", Summary(run));
    }

    /// <summary>Lightweight experts: a dense run's checkpoint, frozen, fine-tuned with MoV or MoLoRA.</summary>
    static async Task<Results<Created<RunSummary>, NotFound, ValidationProblem>> FineTune(int id, FineTuneRequest request, RunGroups groups, RunService runs, CancellationToken ct)
    {
        if (await runs.GetAsync(id, ct) is null) return TypedResults.NotFound();
        var (run, errors) = await groups.FineTuneAsync(id, request.Kind, request.Experts, request.Rank, request.Steps, request.LearningRate, ct);
        return run is null ? TypedResults.ValidationProblem(errors) : TypedResults.Created($"/api/runs/{run.Id}", Summary(run));
    }

    static async Task<Results<Ok<RunDetail>, NotFound>> Get(int id, RunService runs, CancellationToken ct) =>
        await runs.GetAsync(id, ct) is { } r
            ? TypedResults.Ok(new RunDetail(Summary(r), JsonDocument.Parse(r.ConfigJson).RootElement, r.Notes))
            : TypedResults.NotFound();

    static async Task<Results<NoContent, NotFound>> Delete(int id, RunService runs, IWorkerControl workers, CancellationToken ct) =>
        await runs.DeleteAsync(id, workers.KillAsync, ct) ? TypedResults.NoContent() : TypedResults.NotFound();

    static async Task<Results<Accepted, NotFound, ProblemHttpResult>> Cancel(int id, RunService runs, CancellationToken ct) =>
        await runs.CancelAsync(id, ct) switch
        {
            RunService.CancelOutcome.NotFound => TypedResults.NotFound(),
            RunService.CancelOutcome.AlreadyEnded => TypedResults.Problem("the run has ended already; there is nothing to cancel", statusCode: StatusCodes.Status409Conflict),
            _ => TypedResults.Accepted($"/api/runs/{id}"),
        };

    static async Task<Results<Accepted, NotFound, ProblemHttpResult>> Resume(int id, RunService runs, CancellationToken ct) =>
        await runs.GetAsync(id, ct) is null ? TypedResults.NotFound()
        : await runs.ResumeAsync(id, ct) is { } problem ? TypedResults.Problem(problem, statusCode: StatusCodes.Status409Conflict)
        : TypedResults.Accepted($"/api/runs/{id}");

    /// <summary>A token for a worker the user starts on another machine (device "remote"); the token is shown only here.</summary>
    static async Task<Results<Ok<WorkerToken>, NotFound, ProblemHttpResult>> IssueWorkerToken(int id, RemoteWorkers remote, HttpRequest request,
        IOptions<MoTLabOptions> options, CancellationToken ct)
    {
        var (token, problem) = await remote.IssueTokenAsync(id, ct);
        if (token is null) return problem == "no such run" ? TypedResults.NotFound() : TypedResults.Problem(problem, statusCode: StatusCodes.Status409Conflict);
        var hub = RemoteWorkers.HubUrl(options.Value.HubUrl, $"{request.Scheme}://{request.Host}");
        return TypedResults.Ok(new WorkerToken(token, hub, RemoteWorkers.Command(id, hub, token)));
    }

    /// <summary>A run's steps as JSON or CSV, downsampled to maxPoints (a zoom window with from/to); written out as read,
    /// so a full-resolution read of a long run is never held whole.</summary>
    static async Task<Results<Ok<IAsyncEnumerable<StepMetrics>>, PushStreamHttpResult, NotFound, ValidationProblem>> Metrics(int id, MetricsQuery metrics,
        RunService runs, string? format, int? maxPoints, long? from, long? to, CancellationToken ct)
    {
        if (await runs.GetAsync(id, ct) is null) return TypedResults.NotFound();
        if (maxPoints is < 3 or > 1_000_000) return Invalid("maxPoints", "must be between 3 and 1,000,000");
        var rows = metrics.StreamAsync(id, maxPoints ?? 2000, from, to, ct);
        return format switch
        {
            null or "json" => TypedResults.Ok(rows),
            "csv" => TypedResults.Stream(async body =>
            {
                await using var writer = new StreamWriter(body, new UTF8Encoding(false));
                await writer.WriteAsync(MetricColumns.CsvHeader);
                await foreach (var m in rows) await writer.WriteAsync(MetricColumns.CsvLine(m));
            }, "text/csv; charset=utf-8"),
            _ => Invalid("format", "must be json or csv"),
        };
    }

    /// <summary>The worker's whole output as it stands (it may still be growing).</summary>
    static async Task<Results<FileStreamHttpResult, NotFound, ProblemHttpResult>> Log(int id, RunService runs, CancellationToken ct)
    {
        if (await runs.GetAsync(id, ct) is not { } run) return TypedResults.NotFound();
        var path = RunFolder.Log(run.RunDir);
        if (!File.Exists(path)) return TypedResults.Problem($"run {id} has no worker log yet", statusCode: StatusCodes.Status404NotFound);
        return TypedResults.Stream(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete), "text/plain; charset=utf-8");
    }

    /// <summary>The routing snapshots of the latest snapshot step at or before <c>step</c>, of one layer or all.</summary>
    static async Task<Results<Ok<List<RoutingSnapshot>>, NotFound>> Routing(int id, long? step, int? layer, RoutingQuery routing, CancellationToken ct) =>
        await routing.LatestAsync(id, step, layer, ct) is { Count: > 0 } latest ? TypedResults.Ok(latest) : TypedResults.NotFound();

    static async Task<Results<Ok<List<CheckpointRow>>, NotFound>> Checkpoints(int id, RunService runs, CancellationToken ct) =>
        await runs.GetAsync(id, ct) is null ? TypedResults.NotFound() : TypedResults.Ok(await runs.CheckpointsAsync(id, ct));
}
