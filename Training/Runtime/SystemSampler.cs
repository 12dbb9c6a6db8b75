using System.Diagnostics;

namespace MoTLab.Training.Runtime;

/// <summary>The worker's system metrics, sampled every few seconds on a timer thread: the process's resident memory and
/// CPU use (percent of one core, as <c>top</c> shows it: 200 % is two busy cores) and, on a CUDA device, the GPU's
/// utilisation and used memory as <c>nvidia-smi</c> reports them (the whole GPU, not this process alone). A logged step
/// carries the latest sample. Where nvidia-smi is missing or fails, the GPU fields stay empty and it is not asked again.</summary>
public sealed class SystemSampler : IDisposable
{
    public sealed record Sample(double RssMb, double CpuPercent, double? GpuUtilPercent, double? GpuMemoryMb);

    readonly Process self = Process.GetCurrentProcess();
    readonly string? gpu;                 // nvidia-smi's -i: an index or UUID
    readonly Timer timer;
    TimeSpan lastCpu;
    DateTime lastWall;
    bool gpuBroken;
    volatile Sample? latest;

    /// <param name="cudaIndex">The CUDA device's index in this process, or null on the CPU.</param>
    public SystemSampler(int? cudaIndex, TimeSpan every)
    {
        gpu = cudaIndex is { } i ? PhysicalGpu(i, Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES")) : null;
        lastCpu = TimeSpan.Zero; lastWall = self.StartTime.ToUniversalTime();   // the first sample: the average since the process started
        Take();                                   // the first logged step has a sample already
        timer = new Timer(_ => Take(), null, every, every);
    }

    /// <summary>The newest sample; null until the first one is taken.</summary>
    public Sample? Latest => latest;

    /// <summary>nvidia-smi numbers GPUs physically; CUDA numbers the visible ones: CUDA_VISIBLE_DEVICES="3,1" makes
    /// cuda:0 the physical GPU 3 (its entries may also be UUIDs, which nvidia-smi takes as they are).</summary>
    public static string PhysicalGpu(int cudaIndex, string? visibleDevices)
    {
        var visible = (visibleDevices ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return visible.Length > cudaIndex ? visible[cudaIndex] : cudaIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    void Take()
    {
        try
        {
            self.Refresh();
            var cpu = self.TotalProcessorTime; var now = DateTime.UtcNow;
            double wall = (now - lastWall).TotalSeconds;
            double cpuPercent = wall > 0 ? 100 * (cpu - lastCpu).TotalSeconds / wall : 0;
            lastCpu = cpu; lastWall = now;
            var (util, memory) = gpu is null || gpuBroken ? (null, null) : QueryGpu();
            latest = new Sample(self.WorkingSet64 / 1048576.0, cpuPercent, util, memory);
        }
        catch (InvalidOperationException) { }     // the process is going away
    }

    (double?, double?) QueryGpu()
    {
        try
        {
            var psi = new ProcessStartInfo("nvidia-smi", ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-i", gpu!])
            { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var line = p.StandardOutput.ReadLine();
            if (!p.WaitForExit(5000)) { p.Kill(); gpuBroken = true; return (null, null); }
            var parts = line?.Split(',', StringSplitOptions.TrimEntries);
            var culture = System.Globalization.CultureInfo.InvariantCulture;
            if (p.ExitCode == 0 && parts is { Length: 2 } && double.TryParse(parts[0], culture, out var u) && double.TryParse(parts[1], culture, out var m)) return (u, m);
        }
        catch (System.ComponentModel.Win32Exception) { }      // no nvidia-smi on this host
        gpuBroken = true;
        return (null, null);
    }

    public void Dispose() { timer.Dispose(); self.Dispose(); }
}
