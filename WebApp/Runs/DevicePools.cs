namespace MoTLab.WebApp.Runs;

/// <summary>Where a run trains. Local devices (cpu, cuda, cuda:N) are started by this dashboard, one per slot;
/// the pools "remote" (a worker the user starts) and "slurm" (a batch job) are not, and once a worker reports
/// its device the run shows POOL:DEVICE (e.g. slurm:cuda:0).</summary>
public static class DevicePools
{
    public const string Remote = "remote", Slurm = "slurm";

    /// <summary>The pool of a run's device, or null for a local device.</summary>
    public static string? PoolOf(string device) =>
        new[] { Remote, Slurm }.FirstOrDefault(p => device == p || device.StartsWith(p + ":", StringComparison.Ordinal));

    public static bool IsExternal(string device) => PoolOf(device) is not null;

    /// <summary>What to ask for when a run like one on <paramref name="device"/> is made again (a clone, a
    /// transition): its pool, any free GPU for a GPU, else the CPU.</summary>
    public static string Requestable(string device) => PoolOf(device) ?? (device.StartsWith("cuda", StringComparison.Ordinal) ? "cuda" : "cpu");

    /// <summary>What the run's device becomes when its worker reports <paramref name="reported"/>.</summary>
    public static string WithReported(string device, string reported) => PoolOf(device) is { } pool ? $"{pool}:{reported}" : reported;
}
