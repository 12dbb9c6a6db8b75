namespace MoTLab.WebApp.Tests;

public class OptionsTests
{
    [Fact]
    public void Cpu_runs_leave_a_core_to_the_dashboard_unless_threads_are_set()
    {
        int cores = Environment.ProcessorCount;
        Assert.Equal(Math.Max(1, cores - 1), new MoTLabOptions().CpuWorkerThreads);
        Assert.Equal(Math.Max(1, (cores - 1) / 4), new MoTLabOptions { CpuSlots = 4 }.CpuWorkerThreads);
        Assert.Equal(3, new MoTLabOptions { WorkerThreads = 3, CpuSlots = 4 }.CpuWorkerThreads);
    }
}
