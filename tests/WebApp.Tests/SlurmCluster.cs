using System.Diagnostics;
using System.Security.Cryptography;

namespace MoTLab.WebApp.Tests;

/// <summary>A real single-node Slurm cluster on this machine (munged, slurmctld, slurmd from Debian's slurm-wlm
/// and munge packages, which .ci/run installs), with its own configuration, state and free ports in a temporary
/// folder. SLURM_CONF points this process (and so the dashboard's sbatch/scontrol/scancel) at it.</summary>
public sealed class SlurmCluster : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("motlab-slurm").FullName;
    public string Conf => Path.Combine(dir, "slurm.conf");

    public SlurmCluster()
    {
        foreach (var tool in new[] { "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch" })
            if (!File.Exists(tool)) throw new InvalidOperationException($"{tool} is missing: apt-get install -y slurm-wlm munge (.ci/run does)");
        StartMunge();
        foreach (var sub in new[] { "state", "spool", "log" }) Directory.CreateDirectory(Path.Combine(dir, sub));
        var ports = DashboardKillTests.FreePorts(2);                 // slurmctld and slurmd must not get the same one
        long memoryMb = long.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
        File.WriteAllText(Conf, $"""
            ClusterName=motlab-test
            SlurmctldHost=localhost
            SlurmctldPort={ports[0]}
            SlurmdPort={ports[1]}
            AuthType=auth/munge
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            JobAcctGatherType=jobacct_gather/none
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core
            SlurmUser=root
            ReturnToService=2
            MinJobAge=600
            StateSaveLocation={dir}/state
            SlurmdSpoolDir={dir}/spool
            SlurmctldPidFile={dir}/slurmctld.pid
            SlurmdPidFile={dir}/slurmd.pid
            SlurmctldLogFile={dir}/log/slurmctld.log
            SlurmdLogFile={dir}/log/slurmd.log
            NodeName=localhost CPUs={Environment.ProcessorCount} RealMemory={memoryMb * 9 / 10} State=UNKNOWN
            PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
            """);
        Environment.SetEnvironmentVariable("SLURM_CONF", Conf);
        Run("/usr/sbin/slurmctld", "-f", Conf);
        Run("/usr/sbin/slurmd", "-f", Conf);
        for (var t = Stopwatch.StartNew(); Run("sinfo", "-h", "-o", "%t").Trim() != "idle"; Thread.Sleep(500))
            if (t.Elapsed > TimeSpan.FromSeconds(60))
            {
                var state = Run("sinfo");
                Dispose();                                                // xunit disposes no fixture whose constructor threw
                throw new TimeoutException($"the test Slurm node did not come up: {state}");
            }
    }

    /// <summary>munged with a key: Debian's package creates both, but no init system starts the daemon here.</summary>
    static void StartMunge()
    {
        const string key = "/etc/munge/munge.key";
        if (!File.Exists(key))
        {
            File.WriteAllBytes(key, RandomNumberGenerator.GetBytes(1024));
            Run("chown", "munge:munge", key);
            Run("chmod", "400", key);
        }
        if (Run("pgrep", "-x", "munged").Trim().Length > 0) return;
        Directory.CreateDirectory("/run/munge");
        Run("chown", "munge:munge", "/run/munge");
        Run("runuser", "-u", "munge", "--", "/usr/sbin/munged");
    }

    /// <summary>Runs a command to completion; its standard output.</summary>
    public static string Run(string command, params string[] args)
    {
        var psi = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return output;
    }

    public void Dispose()
    {
        foreach (var pidFile in new[] { "slurmd.pid", "slurmctld.pid" })
            if (File.Exists(Path.Combine(dir, pidFile)) && int.TryParse(File.ReadAllText(Path.Combine(dir, pidFile)).Trim(), out var pid))
                try { using var p = Process.GetProcessById(pid); p.Kill(); p.WaitForExit(10_000); } catch (ArgumentException) { }
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
