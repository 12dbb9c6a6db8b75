using MoTLab.Shared.Config;

// The dashboard host. Content root is the build output, where the top-level wwwroot/ and appsettings.json are copied.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
var app = builder.Build();
app.UseStaticFiles();
app.MapGet("/api/presets", () => Presets.All.Select(p => new { p.Name, p.Description, p.Config }));
app.MapFallbackToFile("index.html");
app.Run();
