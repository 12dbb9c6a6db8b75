namespace MoTLab.WebApp.Runs.Pools;

/// <summary>One way of getting runs trained, driven by <see cref="RunScheduler"/>'s single loop: this dashboard's CPU
/// slots and GPUs (<see cref="LocalPool"/>), Slurm batch jobs (<see cref="SlurmPool"/>), workers the user starts by hand
/// (<see cref="RemotePool"/>). A pool starts the queued runs of its requests (DeviceRequest.Pool), follows the runs it
/// has going, and on shutdown leaves them as a restart can pick them up.</summary>
public interface IDevicePool
{
    /// <summary>False when this dashboard has no such pool (no Slurm configured): it is never driven.</summary>
    bool Enabled { get; }

    /// <summary>How often its pass runs (sooner when the scheduler is woken: a run was queued or ended).</summary>
    TimeSpan Interval { get; }

    /// <summary>Once at start, after runs an earlier dashboard left Running were marked Interrupted: what of its own
    /// it takes up again.</summary>
    Task AdoptAsync(CancellationToken ct);

    /// <summary>One pass: start what is queued for it, follow what it has going (ended, silent, cancelled).</summary>
    Task PassAsync(CancellationToken ct);

    /// <summary>Shutdown, first half, while the server still answers workers: ask them to checkpoint and stop.</summary>
    Task StoppingAsync(CancellationToken ct);

    /// <summary>Shutdown, second half: what is left is stopped or handed back so that a restart resumes it.</summary>
    Task StoppedAsync();
}
