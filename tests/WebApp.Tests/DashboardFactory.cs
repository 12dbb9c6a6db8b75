using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace MoTLab.WebApp.Tests;

/// <summary>The real dashboard on Kestrel (loopback, a free port) with its own data folder and SQLite file;
/// workers are real processes that dial back to it.</summary>
public sealed class DashboardFactory : WebApplicationFactory<Program>
{
    public string DataFolder { get; }
    public string CorpusRoot { get; }
    private readonly bool ownsData;

    private readonly string? accessToken;
    private readonly IReadOnlyDictionary<string, string> settings;

    public DashboardFactory() : this(null) { }

    /// <param name="dataFolder">An existing data folder (a dashboard restart); it is then kept at dispose.</param>
    /// <param name="exposedWithToken">Listen on all interfaces (not only loopback), with this access token.</param>
    /// <param name="settings">Extra configuration, e.g. "MoTLab:WorkerSilenceSeconds".</param>
    internal DashboardFactory(string? dataFolder, string? exposedWithToken = null, IReadOnlyDictionary<string, string>? settings = null)   // one public constructor: xunit's fixture rule
    {
        this.settings = settings ?? new Dictionary<string, string>();
        ownsData = dataFolder is null;
        accessToken = exposedWithToken;
        DataFolder = dataFolder ?? Directory.CreateTempSubdirectory("motlab-web").FullName;
        CorpusRoot = Directory.CreateDirectory(Path.Combine(DataFolder, "corpora")).FullName;
        if (exposedWithToken is null) UseKestrel(0);
        else UseKestrel(o => o.Listen(System.Net.IPAddress.Any, 0));
        StartServer();
    }

    /// <summary>http://127.0.0.1:PORT</summary>
    public Uri BaseAddress => new(Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()
        .Replace("0.0.0.0", "127.0.0.1").Replace("[::]", "127.0.0.1"));

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("MoTLab:DataFolder", DataFolder);
        builder.UseSetting("MoTLab:DataRoots:0", CorpusRoot);
        builder.UseSetting("MoTLab:CpuSlots", "1");
        builder.UseSetting("Urls", "http://127.0.0.1:0");
        builder.UseSetting("Logging:LogLevel:Default", "Warning");        // test output shows problems, not every request
        if (accessToken is not null) builder.UseSetting("MoTLab:AccessToken", accessToken);
        foreach (var (key, value) in settings) builder.UseSetting(key, value);
    }

    public HttpClient Client() => new() { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(2) };

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (ownsData) try { Directory.Delete(DataFolder, true); } catch (IOException) { }
    }
}
