using Microsoft.AspNetCore.Http.HttpResults;
using MoTLab.Shared.Config;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Api;

/// <summary>Sweeps: a base config and axes launched as ordinary runs (all checked first: nothing is stored unless every
/// run is valid and they are no more than MoTLab:MaxSweepRuns), read back with each run's axis values, cancelled or
/// deleted as a whole.</summary>
public static class SweepsApi
{
    public sealed record SweepListItem(int Id, string Name, string Method, IReadOnlyList<string> Axes, DateTime CreatedAt);
    public sealed record Cancelled(int Runs);

    public static RouteGroupBuilder MapSweeps(this RouteGroupBuilder api)
    {
        api.MapPost("/sweeps", Create);
        api.MapGet("/sweeps", List);
        api.MapGet("/sweeps/{id:int}", Get);
        api.MapPost("/sweeps/{id:int}/cancel", Cancel);
        api.MapDelete("/sweeps/{id:int}", Delete);
        return api;
    }

    static async Task<Results<Created<SweepService.SweepView>, ValidationProblem>> Create(SweepSpec spec, SweepService sweeps, CancellationToken ct)
    {
        var (sweep, errors) = await sweeps.CreateAsync(spec, ct);
        if (sweep is null) return TypedResults.ValidationProblem(errors);
        return TypedResults.Created($"/api/sweeps/{sweep.Id}", await sweeps.ViewAsync(sweep.Id, ct));
    }

    static async Task<Ok<IEnumerable<SweepListItem>>> List(SweepService sweeps, CancellationToken ct) =>
        TypedResults.Ok((await sweeps.ListAsync(ct)).Select(s => (Row: s, Spec: SweepService.SpecOf(s)))
            .Select(x => new SweepListItem(x.Row.Id, x.Row.Name, x.Spec.Method, x.Spec.Axes.Select(a => a.Path).ToList(), x.Row.CreatedAt)));

    static async Task<Results<Ok<SweepService.SweepView>, NotFound>> Get(int id, SweepService sweeps, CancellationToken ct) =>
        await sweeps.ViewAsync(id, ct) is { } view ? TypedResults.Ok(view) : TypedResults.NotFound();

    /// <summary>Ends the sweep's queued runs at once and asks its running ones to stop.</summary>
    static async Task<Results<Ok<Cancelled>, NotFound>> Cancel(int id, SweepService sweeps, CancellationToken ct) =>
        await sweeps.GetAsync(id, ct) is null ? TypedResults.NotFound() : TypedResults.Ok(new Cancelled(await sweeps.CancelAsync(id, ct)));

    static async Task<Results<NoContent, NotFound>> Delete(int id, SweepService sweeps, IWorkerControl workers, CancellationToken ct) =>
        await sweeps.DeleteAsync(id, workers.KillAsync, ct) ? TypedResults.NoContent() : TypedResults.NotFound();
}
