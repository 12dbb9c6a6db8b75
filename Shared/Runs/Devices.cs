namespace MoTLab.Shared.Runs;

/// <summary>Who starts a run's worker and where: this dashboard on its CPU slots or its GPUs, the user by hand
/// (remote: a worker started with the run's token), or a Slurm batch job.</summary>
public enum DevicePool { Cpu, Gpu, Remote, Slurm }

/// <summary>Where a run asked to train: a pool, and in the GPU pool possibly one GPU. Written as the New-run form and the
/// API take it: cpu, cuda (any free GPU), cuda:N, remote, slurm. A run also has the slot this dashboard gave it (cpu,
/// cuda:N; local pools only) and the device its worker reported (what PyTorch calls it), each a field of its own.</summary>
public readonly record struct DeviceRequest(DevicePool Pool, int? Gpu = null)
{
    public static readonly DeviceRequest Cpu = new(DevicePool.Cpu), AnyGpu = new(DevicePool.Gpu), Remote = new(DevicePool.Remote), Slurm = new(DevicePool.Slurm);

    /// <summary>Started elsewhere (by the user or by Slurm), not by this dashboard.</summary>
    public bool External => Pool is DevicePool.Remote or DevicePool.Slurm;

    /// <summary>What a run like this one asks for when it is made again (a clone, a transition): the same pool, any GPU.</summary>
    public DeviceRequest Again => this with { Gpu = null };

    public override string ToString() => Pool switch
    {
        DevicePool.Cpu => "cpu",
        DevicePool.Gpu => Gpu is { } g ? $"cuda:{g}" : "cuda",
        DevicePool.Remote => "remote",
        _ => "slurm",
    };

    /// <summary>The request <paramref name="text"/> names, or null.</summary>
    public static DeviceRequest? Parse(string? text) => text switch
    {
        "cpu" => Cpu,
        "cuda" => AnyGpu,
        "remote" => Remote,
        "slurm" => Slurm,
        _ when text is not null && text.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(text.AsSpan(5), System.Globalization.NumberStyles.None, null, out var g) => new(DevicePool.Gpu, g),
        _ => null,
    };

    /// <summary>How a run on this request is shown: the slot it was given, or for an external pool the pool and the device
    /// its worker reported ("slurm:cuda:0").</summary>
    public string Shown(string? slot, string? reported) =>
        External ? (reported is null ? ToString() : $"{this}:{reported}") : slot ?? reported ?? ToString();
}
