using System.Diagnostics;
using Microsoft.Extensions.Options;

namespace MoTLab.WebApp.Runs;

/// <summary>Generates text from a checkpoint (or a run folder's newest) in a separate `sample` process (the
/// dashboard never loads libtorch itself).</summary>
public sealed class SampleRunner(IOptions<MoTLabOptions> options)
{
    public sealed record SampleResult(bool Ok, string Text, string Note);

    public async Task<SampleResult> SampleAsync(string checkpoint, string prompt, int tokens, double temperature, CancellationToken ct)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { options.Value.TrainingDllPath, "sample", "--checkpoint", checkpoint, "--prompt", prompt,
                     "--tokens", Math.Clamp(tokens, 1, 2000).ToString(), "--temperature", temperature.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        psi.Environment["MOTLAB_CACHE"] = options.Value.CachePath;
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync(ct);
        var error = p.StandardError.ReadToEndAsync(ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { p.Kill(true); return new(false, "", "sampling took longer than 2 minutes and was stopped"); }
        var err = (await error).Trim();
        return p.ExitCode == 0 ? new(true, (await output).TrimEnd(), err) : new(false, "", err.Length > 0 ? err : $"sample exited with code {p.ExitCode}");
    }
}
