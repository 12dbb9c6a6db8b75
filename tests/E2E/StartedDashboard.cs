using System.Diagnostics;
using System.Text;
using MoTLab.WebApp.Tests;

namespace MoTLab.E2E;

/// <summary>The dashboard as a user starts it: its own process, in the Production environment (no environment name
/// set), its own data folder through MoTLab__DataFolder and a free loopback port through Urls. Nothing of the test
/// host's configuration reaches it. Disposing kills the whole process tree and removes the data folder.</summary>
public sealed class StartedDashboard : IAsyncDisposable
{
    readonly Process process;
    readonly StringBuilder output = new();
    public string DataFolder { get; }
    public Uri BaseAddress { get; }

    StartedDashboard(ProcessStartInfo psi, string dataFolder, int port)
    {
        DataFolder = dataFolder;
        BaseAddress = new Uri($"http://127.0.0.1:{port}");
        foreach (var name in new[] { "ASPNETCORE_ENVIRONMENT", "DOTNET_ENVIRONMENT", "ASPNETCORE_URLS", "DOTNET_URLS" }) psi.Environment.Remove(name);
        psi.Environment["MoTLab__DataFolder"] = dataFolder;
        psi.Environment["Urls"] = BaseAddress.ToString().TrimEnd('/');
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        process = Process.Start(psi)!;
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine(); process.BeginErrorReadLine();
    }

    /// <summary>What the process printed so far (for failure messages).</summary>
    public string Output { get { lock (output) return output.ToString(); } }

    /// <summary>The folder holding MoTLab.sln, above the test assembly.</summary>
    public static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "MoTLab.sln"))) return d.FullName;
        throw new InvalidOperationException($"no MoTLab.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>The README's first command, <c>dotnet run --project WebApp</c>, from the repository root.</summary>
    public static Task<StartedDashboard> DotnetRunAsync(params string[] extraArguments)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = RepositoryRoot() };
        foreach (var a in (string[])["run", "--project", "WebApp", .. extraArguments]) psi.ArgumentList.Add(a);
        return StartAsync(psi);
    }

    /// <summary>A published folder run as the Docker image's entry point runs it: <c>dotnet /app/web/MoTLab.WebApp.dll</c>
    /// from the data folder, with the image's MOTLAB_CACHE under it.</summary>
    public static Task<StartedDashboard> PublishedAsync(string publishFolder)
    {
        var psi = new ProcessStartInfo("dotnet");
        psi.ArgumentList.Add(Path.Combine(publishFolder, "MoTLab.WebApp.dll"));
        return StartAsync(psi, data => { psi.WorkingDirectory = data; psi.Environment["MOTLAB_CACHE"] = Path.Combine(data, "cache"); });
    }

    static async Task<StartedDashboard> StartAsync(ProcessStartInfo psi, Action<string>? prepare = null)
    {
        var data = Directory.CreateTempSubdirectory("motlab-started").FullName;
        prepare?.Invoke(data);
        var d = new StartedDashboard(psi, data, DashboardKillTests.FreePort());
        using var http = d.Client();
        for (var t = DateTime.UtcNow; ; await Task.Delay(500))
        {
            try { if ((await http.GetAsync("/api/health")).IsSuccessStatusCode) return d; }
            catch (HttpRequestException) { }
            if (d.process.HasExited || DateTime.UtcNow - t > TimeSpan.FromMinutes(4))
            {
                await d.DisposeAsync();
                throw new InvalidOperationException($"the dashboard did not start ({psi.FileName} {string.Join(' ', psi.ArgumentList)}):\n{d.Output}");
            }
        }
    }

    public HttpClient Client() => new() { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(2) };

    /// <summary>Ends the dashboard at once (SIGKILL of the tree), as a crash or a restart looks to an open page.</summary>
    public async Task KillAsync()
    {
        try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        await process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        process.Dispose();
        try { Directory.Delete(DataFolder, true); } catch (IOException) { }
    }
}
