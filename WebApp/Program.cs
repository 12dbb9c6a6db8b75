using MoTLab.Shared.Runs;
using MoTLab.WebApp;
using MoTLab.WebApp.Api;
using MoTLab.WebApp.Components;
using MoTLab.WebApp.Hubs;

// The dashboard. Content root is the build output, where the top-level wwwroot/ and appsettings.json are copied.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddMoTLab();

var app = builder.Build();
await app.PrepareDatabaseAsync();
var gate = app.Services.GetRequiredService<AccessGate>();
app.Lifetime.ApplicationStarted.Register(gate.OnStarted);
app.Use(gate.InvokeAsync);
app.UseStaticFiles();
app.UseAntiforgery();
app.MapStaticAssets();
app.MapOpenApi();
AccessGate.MapLogin(app);
app.MapRunsApi();
app.MapHub<RunsHub>(RunsHubContract.Path);
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
app.Run();

public partial class Program;
