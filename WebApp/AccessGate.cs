using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp;

/// <summary>Nobody in who should not be. On loopback (the default) the dashboard is open to the local user.
/// Listening on any other address, everything but the login page needs the access token: browsers log in once
/// (a signed, HttpOnly, SameSite=Strict cookie), the API and hub take it as a bearer token (or access_token in
/// the query, as SignalR's WebSocket transport sends it), and workers open the hub with their per-run token.</summary>
public sealed class AccessGate(IOptions<MoTLabOptions> options, IServer server, WorkerTokens workers, IDataProtectionProvider protection,
    ILogger<AccessGate> log)
{
    public const string Cookie = "motlab_access";
    private readonly IDataProtector protector = protection.CreateProtector("MoTLab.AccessCookie");
    private byte[]? tokenHash;
    public bool Required { get; private set; } = true;   // closed until the server says where it listens

    /// <summary>Decides once the server listens: a non-loopback address means a token is required.</summary>
    public void OnStarted()
    {
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        Required = addresses.Any(a => !IsLoopback(a));
        if (!Required) return;
        var token = options.Value.AccessToken;
        if (string.IsNullOrWhiteSpace(token))
        {
            token = Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
            Console.WriteLine($"MoTLab listens on {string.Join(", ", addresses)}: open it with the access token {token}");
        }
        tokenHash = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        log.LogInformation("access token required (listening on {Addresses})", string.Join(", ", addresses));
    }

    static bool IsLoopback(string address)
    {
        var host = new Uri(address.Replace("://+", "://0.0.0.0").Replace("://*", "://0.0.0.0")).Host.Trim('[', ']');
        return host == "localhost" || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
    }

    public bool Matches(string? token) =>
        tokenHash is not null && !string.IsNullOrEmpty(token) && CryptographicOperations.FixedTimeEquals(tokenHash, SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    public string IssueCookieValue() => protector.Protect("access");

    bool HasCookie(HttpContext c)
    {
        if (!c.Request.Cookies.TryGetValue(Cookie, out var value)) return false;
        try { return protector.Unprotect(value) == "access"; }
        catch (CryptographicException) { return false; }
    }

    public async Task InvokeAsync(HttpContext c, RequestDelegate next)
    {
        var path = c.Request.Path;
        if (!Required || path.StartsWithSegments("/login") || HasCookie(c)) { await next(c); return; }
        string? bearer = c.Request.Headers.Authorization.ToString() is { } h && h.StartsWith("Bearer ", StringComparison.Ordinal) ? h[7..] : null;
        bearer ??= c.Request.Query["access_token"];
        if (Matches(bearer) || (path.StartsWithSegments(RunsHubContract.Path) && workers.IsAnyValid(bearer))) { await next(c); return; }
        if (path.StartsWithSegments("/api") || path.StartsWithSegments("/hubs") || path.StartsWithSegments("/openapi") || path.StartsWithSegments("/_blazor"))
        {
            c.Response.StatusCode = StatusCodes.Status401Unauthorized;
            c.Response.Headers.WWWAuthenticate = "Bearer";
            return;
        }
        c.Response.Redirect($"/login?return={Uri.EscapeDataString(path + c.Request.QueryString)}");
    }

    /// <summary>GET/POST /login: a plain form (no Blazor before the user is in), antiforgery-checked.</summary>
    public static void MapLogin(WebApplication app)
    {
        app.MapGet("/login", (HttpContext c, IAntiforgery af, string? @return, string? error) =>
        {
            var t = af.GetAndStoreTokens(c);
            var message = error is null ? "" : "<p style='color:#b00020'>That token is not right.</p>";
            var html = $"""
                <!doctype html><html lang="en"><head><meta charset="utf-8"><title>MoTLab · sign in</title></head>
                <body style="font-family:system-ui;max-width:28rem;margin:4rem auto">
                <h1>MoTLab</h1><p>This dashboard is reachable from the network; enter its access token.</p>{message}
                <form method="post" action="/login"><input type="hidden" name="{t.FormFieldName}" value="{t.RequestToken}">
                <input type="hidden" name="return" value="{WebUtility.HtmlEncode(@return ?? "/")}">
                <label>Access token <input type="password" name="token" autofocus style="width:100%"></label>
                <p><button type="submit">Sign in</button></p></form></body></html>
                """;
            return Results.Content(html, "text/html");
        });
        app.MapPost("/login", async (HttpContext c, IAntiforgery af, AccessGate gate) =>
        {
            if (!await af.IsRequestValidAsync(c)) return Results.BadRequest("the form expired; reload the login page");
            var form = await c.Request.ReadFormAsync();
            var back = form["return"].ToString();
            if (!back.StartsWith('/') || back.StartsWith("//")) back = "/";   // never redirect off-site
            if (!gate.Matches(form["token"])) return Results.Redirect($"/login?error=1&return={Uri.EscapeDataString(back)}");
            c.Response.Cookies.Append(Cookie, gate.IssueCookieValue(), new CookieOptions
            {
                HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = c.Request.IsHttps, MaxAge = TimeSpan.FromDays(30),
            });
            return Results.Redirect(back);
        }).DisableAntiforgery();   // checked explicitly above, so a stale form gets a message instead of a 400 page
    }
}
