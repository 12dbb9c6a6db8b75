using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp;

/// <summary>Who a request is, for ASP.NET's authorization (every endpoint but /login requires an authenticated user:
/// Hosting.cs). A request that opens the hub with a run's token is that run's worker (on every mode: the hub binds the
/// connection to the run by its claim). Otherwise, on loopback everyone is the local user; listening beyond it, a
/// request is the user when it carries the login cookie or the access token (bearer, or access_token in the query as
/// SignalR's WebSocket transport sends it). Unknown, the API, the hub and Blazor's connection answer 401; a page
/// redirects to /login.</summary>
public sealed class AccessAuthentication(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logs, UrlEncoder encoder,
    AccessGate gate, WorkerTokens workers) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logs, encoder)
{
    public const string SchemeName = "MoTLab";
    /// <summary>The role of a run's worker (its principal names the run in <see cref="RunClaim"/>).</summary>
    public const string WorkerRole = "worker", RunClaim = "motlab:run";

    /// <summary>The run whose worker <paramref name="user"/> is, or null.</summary>
    public static int? RunOf(ClaimsPrincipal? user) =>
        user?.FindFirst(RunClaim)?.Value is { } run ? int.Parse(run, System.Globalization.CultureInfo.InvariantCulture) : null;

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var token = AccessGate.TokenOf(Request);
        if (Request.Path.StartsWithSegments(RunsHubContract.Path) && workers.RunOf(token) is { } run)
            return Task.FromResult(Success(new Claim(ClaimTypes.Name, $"worker of run {run}"), new Claim(ClaimTypes.Role, WorkerRole), new Claim(RunClaim, run.ToString())));
        if (!gate.Required || gate.HasCookie(Context) || gate.Matches(token)) return Task.FromResult(Success(new Claim(ClaimTypes.Name, "user")));
        return Task.FromResult(AuthenticateResult.NoResult());
    }

    AuthenticateResult Success(params Claim[] claims) =>
        AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName)), SchemeName));

    /// <summary>Machines (the API, the hub, Blazor's connection, the OpenAPI document) get 401; people get the login page.</summary>
    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var path = Request.Path;
        if (path.StartsWithSegments("/api") || path.StartsWithSegments("/hubs") || path.StartsWithSegments("/openapi") || path.StartsWithSegments("/_blazor"))
        {
            Response.StatusCode = StatusCodes.Status401Unauthorized;
            Response.Headers.WWWAuthenticate = "Bearer";
        }
        else Response.Redirect($"/login?return={Uri.EscapeDataString(path + Request.QueryString)}");
        return Task.CompletedTask;
    }
}
