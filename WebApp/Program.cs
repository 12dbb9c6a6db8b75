using MoTLab.Shared.Runs;
using MoTLab.WebApp;
using MoTLab.WebApp.Api;
using MoTLab.WebApp.Components;
using MoTLab.WebApp.Hubs;

// The dashboard. Content root is the build output, where appsettings.json is copied; the top-level wwwroot/ is served
// as static web assets (WebApp.csproj).
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
// Package assets (_content/MudBlazor, _content/Plotly.Blazor, _framework/blazor.web.js) live in the NuGet cache
// until publish copies them: a `dotnet run` build serves them through the static-web-assets manifest, which ASP.NET
// only reads by itself in Development. A published folder has no such manifest and this is a no-op there.
builder.WebHost.UseStaticWebAssets();
builder.AddMoTLab();

var app = builder.Build();
await app.PrepareDatabaseAsync();
var gate = app.Services.GetRequiredService<AccessGate>();
app.Lifetime.ApplicationStarted.Register(gate.OnStarted);
app.UseExceptionHandler();
app.Use(gate.RefuseForeignAsync);
app.UseRateLimiter();
app.UseAuthentication();
app.UseAuthorization();      // every endpoint but /login needs a user (Hosting.cs): AccessAuthentication says who a request is
app.UseAntiforgery();
app.MapStaticAssets();
app.MapOpenApi();
AccessGate.MapLogin(app);
app.MapMoTLabApi();
app.MapHub<RunsHub>(RunsHubContract.Path).RequireAuthorization();   // the user, or a run's worker (its calls carry its token too)
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
app.Run();

public partial class Program;
