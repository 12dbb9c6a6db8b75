using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using MoTLab.Shared.Runs;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using System.Threading.RateLimiting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Runs;
using MoTLab.WebApp.Runs.Pools;
using MudBlazor.Services;

namespace MoTLab.WebApp;

/// <summary>Service registration and start-up steps, so Program.cs stays a table of contents.</summary>
public static class Hosting
{
    /// <summary>The services pages and the API use to make, read and change runs, sweeps and corpora (without the
    /// scheduler, the device pools and the telemetry writer, which run beside them); the component tests render pages
    /// with these same registrations.</summary>
    public static IServiceCollection AddRunServices(this IServiceCollection s) =>
        s.AddSingleton<WorkerTokens>().AddSingleton<MoTLab.WebApp.Hubs.WorkerConnections>().AddSingleton<SchedulerSignal>().AddSingleton<CancelRequests>().AddSingleton<RunEvents>()
         .AddSingleton<CorpusCatalog>().AddSingleton<CorpusPreparations>().AddSingleton<SweepService>().AddSingleton<RunRequests>().AddSingleton<RunService>()
         .AddSingleton<MetricsQuery>().AddSingleton<RoutingQuery>().AddSingleton<SampleRunner>().AddSingleton<UploadStore>().AddSingleton<AccessGate>()
         .AddSingleton<RemoteWorkers>().AddSingleton<RunGroups>();

    public static WebApplicationBuilder AddMoTLab(this WebApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddOptions<MoTLabOptions>().Bind(builder.Configuration.GetSection(MoTLabOptions.Section))
            .ValidateDataAnnotations()
            .Validate(o => o.CpuSlots + o.Gpus > 0, "MoTLab: CpuSlots and Gpus are both 0, so no run could ever start")
            .ValidateOnStart();
        s.AddDbContextFactory<MoTLabDb>((sp, o) =>
        {
            var options = sp.GetRequiredService<IOptions<MoTLabOptions>>().Value;
            o.UseSqlite($"Data Source={options.DatabasePath};Default Timeout=30");
            // SQLite changes a column by rebuilding its table, outside a transaction (EF says so on every new database)
            o.ConfigureWarnings(w => w.Ignore(Microsoft.EntityFrameworkCore.Diagnostics.RelationalEventId.NonTransactionalMigrationOperationWarning));
            if (options.MaxDatabaseMB > 0) o.AddInterceptors(new DatabaseSizeCap(options.MaxDatabaseMB));
        });
        // login cookies are encrypted with keys of this dashboard's own, in its data folder: not the user-wide ring in
        // ~/.aspnet that every dashboard of the same user would share
        s.AddDataProtection().SetApplicationName("MoTLab");
        s.AddOptions<KeyManagementOptions>().Configure<IOptions<MoTLabOptions>, ILoggerFactory>((k, o, logs) =>
            k.XmlRepository = new FileSystemXmlRepository(Directory.CreateDirectory(o.Value.KeysPath), logs));
        s.AddRunServices().AddSingleton<ILauncher, LocalProcessLauncher>();
        s.AddSingleton<TelemetryWriter>().AddHostedService(sp => sp.GetRequiredService<TelemetryWriter>());
        // the device pools, driven by the one scheduling loop (RunScheduler)
        s.AddSingleton<SlurmClient>().AddSingleton<LocalPool>().AddSingleton<IWorkerControl>(sp => sp.GetRequiredService<LocalPool>())
         .AddSingleton<IDevicePool>(sp => sp.GetRequiredService<LocalPool>()).AddSingleton<IDevicePool, SlurmPool>().AddSingleton<IDevicePool, RemotePool>();
        s.AddSingleton<RunScheduler>().AddHostedService(sp => sp.GetRequiredService<RunScheduler>());
        s.AddSingleton<SweepFollowUps>().AddHostedService(sp => sp.GetRequiredService<SweepFollowUps>());
        // routing snapshots of wide MoT layers (g × E weights) run to ~100 KB each; the default limit is 32 KB
        s.AddSignalR(o => o.MaximumReceiveMessageSize = 4 * 1024 * 1024).AddJsonProtocol(o => RunsHubContract.Payload(o.PayloadSerializerOptions));
        // the API speaks the same JSON as config.json and metrics.jsonl: snake_case, enums as strings, unknown fields refused
        s.ConfigureHttpJsonOptions(o =>
        {
            var j = o.SerializerOptions; var m = MoTLab.Shared.Json.Options;
            j.PropertyNamingPolicy = m.PropertyNamingPolicy; j.DefaultIgnoreCondition = m.DefaultIgnoreCondition;
            j.UnmappedMemberHandling = m.UnmappedMemberHandling; j.NumberHandling = m.NumberHandling;
            j.RespectNullableAnnotations = m.RespectNullableAnnotations;
            foreach (var c in m.Converters) j.Converters.Add(c);
        });
        s.AddOpenApi();
        s.AddProblemDetails();
        // a malformed body is the client's mistake: binding failures are thrown and ClientErrors answers them with a 4xx
        // ProblemDetails that says what is wrong (a bare 400 told the client nothing)
        s.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        s.AddExceptionHandler<MoTLab.WebApp.Api.ClientErrors>();
        // /login answers 10 tries a minute per client address; the 11th gets 429
        s.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.AddPolicy(AccessGate.LoginRateLimit, c => RateLimitPartition.GetFixedWindowLimiter(c.Connection.RemoteIpAddress?.ToString() ?? "",
                _ => new FixedWindowRateLimiterOptions { PermitLimit = 10, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));
            o.OnRejected = (r, ct) => new ValueTask(r.HttpContext.Response.WriteAsync("too many sign-in attempts; wait a minute and try again", ct));
        });
        // access control: who a request is (AccessAuthentication); every endpoint needs a user but /login (AllowAnonymous)
        s.AddAuthentication(AccessAuthentication.SchemeName).AddScheme<AuthenticationSchemeOptions, AccessAuthentication>(AccessAuthentication.SchemeName, null);
        s.AddAuthorization(o => o.FallbackPolicy = new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
        s.AddRazorComponents().AddInteractiveServerComponents();
        s.AddMudServices();
        return builder;
    }

    /// <summary>Creates the data folder and applies EF migrations (SQLite in WAL mode).</summary>
    public static async Task PrepareDatabaseAsync(this WebApplication app)
    {
        var o = app.Services.GetRequiredService<IOptions<MoTLabOptions>>().Value;
        Directory.CreateDirectory(o.DataPath);
        Directory.CreateDirectory(Path.GetDirectoryName(o.DatabasePath)!);
        Directory.CreateDirectory(o.RunsPath);
        Directory.CreateDirectory(o.UploadsPath);
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<MoTLabDb>>().CreateDbContextAsync();
        await db.Database.MigrateAsync();
        await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;");
    }
}
