namespace MoTLab.WebApp.Api;

/// <summary>The HTTP API under /api (OpenAPI document at /openapi/v1.json): runs, comparisons, presets and corpora,
/// health. docs/architecture.md, "Add an endpoint".</summary>
public static class MoTLabApi
{
    public static IEndpointRouteBuilder MapMoTLabApi(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/api").WithTags("MoTLab").RequireAuthorization().MapRuns().MapSweeps().MapCompare().MapCatalog().MapHealth();
        return app;
    }
}
