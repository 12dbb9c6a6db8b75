using System.ComponentModel.DataAnnotations;

namespace MoTLab.WebApp;

/// <summary>The "MoTLab" section of appsettings.json. Relative paths resolve against the working directory.</summary>
public sealed class MoTLabOptions
{
    public const string Section = "MoTLab";

    /// <summary>Runs, uploads, the token cache and (by default) the database live here.</summary>
    [Required] public string DataFolder { get; set; } = "data";
    /// <summary>SQLite file; default {DataFolder}/motlab.db.</summary>
    public string? Database { get; set; }
    /// <summary>Concurrent CPU runs.</summary>
    [Range(0, 64)] public int CpuSlots { get; set; } = 1;
    /// <summary>GPUs on this host: one run per GPU, index passed to the worker.</summary>
    [Range(0, 64)] public int Gpus { get; set; } = 0;
    /// <summary>Memory of each GPU, for refusing runs that cannot fit (0 = not checked; an H200 has 141).</summary>
    [Range(0, 10_000)] public double GpuMemoryGB { get; set; }
    /// <summary>Folders users may train on (corpus paths must resolve inside one). The uploads folder is always allowed.</summary>
    public List<string> DataRoots { get; set; } = [];
    [Range(1, 100_000)] public int MaxUploadMB { get; set; } = 200;
    /// <summary>The most runs one sweep may launch: a larger grid or random search is refused with its count.</summary>
    [Range(1, 100_000)] public int MaxSweepRuns { get; set; } = 200;
    /// <summary>libtorch threads of each CPU run; 0 = automatic (<see cref="CpuWorkerThreads"/>).</summary>
    [Range(0, 256)] public int WorkerThreads { get; set; } = 0;

    /// <summary>Threads a CPU run gets: <see cref="WorkerThreads"/> when set, else the cores shared among the CPU slots
    /// with one core left to the dashboard, so its web server and SignalR pushes stay responsive while runs train. On
    /// 2 cores that is one thread: the tiny presets train 4–30 % slower than on two (docs/benchmarks.md, CPU).</summary>
    public int CpuWorkerThreads =>
        WorkerThreads > 0 ? WorkerThreads : Math.Max(1, (Environment.ProcessorCount - 1) / Math.Max(1, CpuSlots));

    /// <summary>A line chart holding more points than this draws with WebGL instead of SVG. Browsers keep ~16 WebGL
    /// contexts a page and each WebGL chart takes two, so the small histories (≤ 2,000 points a read) stay SVG.</summary>
    [Range(0, 100_000_000)] public int WebGlAbovePoints { get; set; } = 5_000;
    /// <summary>A worker that says nothing (not even its 15 s heartbeat) for this long is taken for hung or gone:
    /// the dashboard's own worker is stopped and its run Failed; one that outlived a restart leaves its run Interrupted.
    /// At least 20 s: below the heartbeat's 15 s a healthy worker busy starting up would be killed.</summary>
    [Range(20, 86_400)] public int WorkerSilenceSeconds { get; set; } = 120;
    /// <summary>Seconds a worker of this dashboard's gets, after Cancel, to checkpoint and stop before it is killed.</summary>
    [Range(1, 3600)] public int CancelGraceSeconds { get; set; } = 30;
    /// <summary>Cap on the SQLite file (0 = none): past it, telemetry is refused as "database or disk is full"
    /// and the run shows a warning, as when the disk itself fills up.</summary>
    [Range(0, 1_000_000)] public double MaxDatabaseMB { get; set; }
    /// <summary>MoTLab.Training.dll; default: the worker shipped beside the dashboard (worker/MoTLab.Training.dll).</summary>
    public string? TrainingDll { get; set; }
    /// <summary>Hub URL the workers dial; default: the dashboard's own first address.</summary>
    public string? HubUrl { get; set; }
    /// <summary>Required from browsers, scripts and the API when the dashboard listens on anything but loopback;
    /// generated and printed once at start when not set.</summary>
    public string? AccessToken { get; set; }

    /// <summary>The "slurm" device pool: runs submitted with sbatch (absent = no such pool).</summary>
    public SlurmOptions? Slurm { get; set; }

    public string DataPath => Path.GetFullPath(DataFolder);
    public string DatabasePath => Path.GetFullPath(Database ?? Path.Combine(DataFolder, "motlab.db"));
    public string RunsPath => Path.Combine(DataPath, "runs");
    public string UploadsPath => Path.Combine(DataPath, "uploads");
    public string CachePath => Path.Combine(DataPath, "cache");
    /// <summary>This dashboard's data-protection keys (login cookies).</summary>
    public string KeysPath => Path.Combine(DataPath, "keys");
    public string TrainingDllPath => Path.GetFullPath(TrainingDll ?? Path.Combine(AppContext.BaseDirectory, "worker", "MoTLab.Training.dll"));
}

/// <summary>MoTLab:Slurm. Each run of the "slurm" pool becomes one batch job running the Training worker, which
/// dials back to MoTLab:HubUrl (set it to an address the compute nodes reach). The run folder must be on a file
/// system the nodes share: the job writes its checkpoints and worker.log there.</summary>
public sealed class SlurmOptions
{
    public string? Partition { get; set; }
    public string? Account { get; set; }
    /// <summary>GPUs per job (--gres=gpu:N); 0 trains on the node's CPUs.</summary>
    [Range(0, 64)] public int Gpus { get; set; }
    [Range(0, 1024)] public int CpusPerTask { get; set; }
    /// <summary>--time, e.g. "2-00:00:00".</summary>
    public string? TimeLimit { get; set; }
    /// <summary>Further sbatch options, one per entry, e.g. "--mem=64G" or "--qos=long".</summary>
    public List<string> Options { get; set; } = [];
    /// <summary>Shell lines run before the worker, e.g. "module load cuda/12.4".</summary>
    public List<string> Setup { get; set; } = [];
    /// <summary>The .NET host on the nodes.</summary>
    public string Dotnet { get; set; } = "dotnet";
    /// <summary>MoTLab.Training.dll as the nodes see it; default: the dashboard's own copy.</summary>
    public string? TrainingDll { get; set; }
    /// <summary>How often job states are read (squeue/scontrol).</summary>
    [Range(1, 3600)] public int PollSeconds { get; set; } = 3;
}
