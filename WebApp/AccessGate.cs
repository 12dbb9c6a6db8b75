using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using MoTLab.Shared.Runs;

namespace MoTLab.WebApp;

/// <summary>Nobody in who should not be. On loopback (the default) the dashboard is open to the local user.
/// Listening on any other address, everything but the login page needs the access token: browsers log in once
/// (a signed, HttpOnly, SameSite=Strict cookie), the API and hub take it as a bearer token (or access_token in
/// the query, as SignalR's WebSocket transport sends it), and workers open the hub with their per-run token. This
/// holds the token and the login; <see cref="AccessAuthentication"/> tells ASP.NET who a request is, and
/// <see cref="RefuseForeignAsync"/> refuses other websites' requests on every mode.</summary>
public sealed class AccessGate(IOptions<MoTLabOptions> options, IServer server, IDataProtectionProvider protection,
    ILogger<AccessGate> log)
{
    public const string Cookie = "motlab_access";
    /// <summary>How long a login lasts, checked on the server (the cookie's own expiry is only the browser's).</summary>
    public static readonly TimeSpan CookieLifetime = TimeSpan.FromDays(30);
    private readonly ITimeLimitedDataProtector protector = protection.CreateProtector("MoTLab.AccessCookie").ToTimeLimitedDataProtector();
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

    /// <summary>The cookie names the token it was issued for (a hash of it, encrypted with this dashboard's own keys,
    /// kept in its data folder) and expires after <see cref="CookieLifetime"/>: a cookie of another dashboard, of an
    /// earlier token, or an old one opens nothing.</summary>
    public string IssueCookieValue() => protector.Protect(CookieClaim(), CookieLifetime);

    string CookieClaim() => Convert.ToHexString(SHA256.HashData([.. tokenHash ?? [], .. "MoTLab.AccessCookie"u8]));

    public bool HasCookie(HttpContext c)
    {
        if (tokenHash is null || !c.Request.Cookies.TryGetValue(Cookie, out var value)) return false;
        try
        {
            return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(protector.Unprotect(value)), Encoding.ASCII.GetBytes(CookieClaim()));
        }
        catch (CryptographicException) { return false; }
    }

    /// <summary>Middleware: another website's request (<see cref="ForeignRequest"/>) is answered here, before anything else.</summary>
    public async Task RefuseForeignAsync(HttpContext c, RequestDelegate next)
    {
        if (ForeignRequest(c) is { } refusal)
        {
            c.Response.StatusCode = refusal.Status;
            await c.Response.WriteAsJsonAsync(new { title = refusal.Message, status = refusal.Status }, c.RequestAborted);
            return;
        }
        await next(c);
    }

    /// <summary>Another website's request, refused on every mode. On loopback the Host must be a loopback name (a page of
    /// another site whose name was re-pointed at 127.0.0.1, DNS rebinding, sends its own name). Requests that change
    /// something, and every hub or Blazor connection, must come from this dashboard's own pages: a browser names the
    /// page's site in Origin and Sec-Fetch-Site; scripts send neither and are let through (on an exposed dashboard
    /// they need the token anyway).</summary>
    (int Status, string Message)? ForeignRequest(HttpContext c)
    {
        var request = c.Request;
        if (!Required && !IsLoopbackHost(request.Host.Host))
            return (StatusCodes.Status400BadRequest, $"host '{request.Host.Host}' is not this dashboard's: on loopback it answers to localhost and 127.0.0.1 only");
        bool changes = !(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method));
        bool connection = request.Path.StartsWithSegments(RunsHubContract.Path) || request.Path.StartsWithSegments("/_blazor");
        if (!changes && !connection) return null;
        if (request.Headers["Sec-Fetch-Site"].ToString() is "cross-site" or "same-site")
            return (StatusCodes.Status403Forbidden, "requests from other websites are refused (Sec-Fetch-Site)");
        var origin = request.Headers.Origin.ToString();
        if (origin.Length > 0 && !(Uri.TryCreate(origin, UriKind.Absolute, out var o) && o.Authority.Equals(request.Host.Value, StringComparison.OrdinalIgnoreCase)))
            return (StatusCodes.Status403Forbidden, $"requests from other websites are refused (Origin {origin})");
        return null;
    }

    static bool IsLoopbackHost(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>A path on this dashboard (the rules of ASP.NET's IsLocalUrl): "/x", not "//host", "/\host", nor anything
    /// holding a control character or white space, which browsers drop ("/\t/host" reads as "//host").</summary>
    public static bool IsLocalPath(string? url) =>
        url is { Length: > 0 } && url[0] == '/' && (url.Length == 1 || (url[1] != '/' && url[1] != '\\')) && !url.Any(ch => char.IsControl(ch) || char.IsWhiteSpace(ch));

    /// <summary>The token a request carries: a bearer header, else access_token in the query (SignalR's WebSocket
    /// transport sends it there).</summary>
    public static string? TokenOf(HttpRequest request) =>
        request.Headers.Authorization.ToString() is { } h && h.StartsWith("Bearer ", StringComparison.Ordinal) ? h[7..]
        : request.Query["access_token"].ToString() is { Length: > 0 } q ? q : null;

    public const string LoginRateLimit = "login";

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
        }).AllowAnonymous();
        app.MapPost("/login", async (HttpContext c, IAntiforgery af, AccessGate gate) =>
        {
            if (!c.Request.HasFormContentType) return Results.Problem("send the login form (application/x-www-form-urlencoded)", statusCode: StatusCodes.Status400BadRequest);
            IFormCollection form;
            try
            {
                if (!await af.IsRequestValidAsync(c)) return Results.Problem("the form expired; reload the login page", statusCode: StatusCodes.Status400BadRequest);
                form = await c.Request.ReadFormAsync(c.RequestAborted);
            }
            catch (Exception e) when (e is InvalidDataException or IOException or BadHttpRequestException or AntiforgeryValidationException)
            {
                return Results.Problem($"the login form could not be read: {(e.InnerException ?? e).Message}", statusCode: StatusCodes.Status400BadRequest);
            }
            var back = form["return"].ToString();
            if (!IsLocalPath(back)) back = "/";   // never redirect off-site
            if (!gate.Matches(form["token"])) return Results.Redirect($"/login?error=1&return={Uri.EscapeDataString(back)}");
            c.Response.Cookies.Append(Cookie, gate.IssueCookieValue(), new CookieOptions
            {
                HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = c.Request.IsHttps, MaxAge = CookieLifetime,
            });
            return Results.LocalRedirect(back);
        }).AllowAnonymous().DisableAntiforgery().RequireRateLimiting(LoginRateLimit);   // checked explicitly above, so a stale form gets a message instead of a 400 page
    }
}
