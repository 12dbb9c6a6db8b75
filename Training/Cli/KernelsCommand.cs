using System.CommandLine;
using MoTLab.Training.Model.Gpu;
using MoTLab.Training.Runtime;

namespace MoTLab.Training.Cli;

/// <summary>`kernels`: which path runs on a device (MoTLab's fused CUDA kernels or libtorch's) and, with --check, each
/// fused kernel against the libtorch path on random inputs (values and gradients; exit 1 when one is off).</summary>
public static class KernelsCommand
{
    public static Command Create()
    {
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "auto" };
        var check = new Option<bool>("--check") { Description = "Compare each fused kernel with the libtorch path (CUDA only)" };
        var command = new Command("kernels", "Say whether MoTLab's fused CUDA kernels run, and check them against libtorch") { device, check };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var d = TorchRuntime.ResolveDevice(parse.GetValue(device)!);
            Console.WriteLine($"{d}: {GpuKernels.Describe(d)}");
            if (!parse.GetValue(check)) return 0;
            var models = new[] { "medium-dense", "medium-mot", "medium-ec", "medium-moe" }.Select(p => (p, ConfigLoader.Load(p, null).Model));
            int failed = 0;
            foreach (var r in KernelChecks.Run(d, models))
            {
                Console.WriteLine(r);
                if (!r.Passed) failed++;
            }
            Console.WriteLine(failed == 0 ? "every check passed" : $"{failed} check(s) FAILED");
            return failed == 0 ? 0 : 1;
        }));
        return command;
    }
}
