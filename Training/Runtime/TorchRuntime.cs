using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace MoTLab.Training.Runtime;

/// <summary>Loads libtorch and picks devices. By default TorchSharp uses the libtorch that came with the
/// NuGet package (CPU). Setting MOTLAB_LIBTORCH to a libtorch folder — or to "python" to ask python3 where
/// PyTorch keeps it — loads an existing PyTorch install instead (how CUDA is used on hosts without the
/// TorchSharp CUDA package).</summary>
public static class TorchRuntime
{
    public const string LibTorchVariable = "MOTLAB_LIBTORCH";
    private static readonly object Gate = new();
    private static bool initialised;

    /// <summary>The libtorch folder loaded in place of the packaged one (MOTLAB_LIBTORCH), or null.</summary>
    public static string? LibTorchDirectory { get; private set; }

    public static void Initialise()
    {
        lock (Gate)
        {
            if (initialised) return;
            KeepFreedMemory();
            var dir = LibTorchDirectory = ResolveLibTorchDirectory(Environment.GetEnvironmentVariable(LibTorchVariable));
            if (dir is not null)
            {
                // Preloading by full path makes later loads by name (TorchSharp's own) find these by soname.
                foreach (var lib in new[] { "libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so" })
                {
                    var path = Path.Combine(dir, lib);
                    if (File.Exists(path)) NativeLibrary.Load(path);
                }
            }
            initialised = true;
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int param, int value);

    /// <summary>glibc returns freed memory at the top of the heap to the system (trim) and serves large blocks with
    /// fresh mmaps; a CPU training step frees and re-allocates the same activation buffers each step, and every
    /// fresh page is a page fault and a zeroing. Keeping up to 1 GiB of freed memory, with mmap only from 32 MiB (the
    /// largest threshold glibc takes), made the tiny presets 1–6 % faster on 2 cores (docs/benchmarks.md, CPU).</summary>
    private static void KeepFreedMemory()
    {
        if (!OperatingSystem.IsLinux()) return;
        const int TrimThreshold = -1, MmapThreshold = -3;
        try { MallOpt(TrimThreshold, 1 << 30); MallOpt(MmapThreshold, 32 << 20); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }   // not glibc (musl): leave it
    }

    /// <summary>libtorch's CPU thread count, when given. Loads libtorch first: called before anything else touches it,
    /// TorchSharp would load its packaged libtorch, not MOTLAB_LIBTORCH's.</summary>
    public static void SetThreads(int? threads)
    {
        Initialise();
        if (threads is { } n) set_num_threads(n);
    }

    /// <summary>The folder named by MOTLAB_LIBTORCH ("python" = ask python3), or null to use the packaged libtorch.</summary>
    public static string? ResolveLibTorchDirectory(string? setting)
    {
        if (string.IsNullOrWhiteSpace(setting)) return null;
        var dir = setting;
        if (setting == "python")
        {
            var psi = new ProcessStartInfo("python3", ["-c", "import torch,os;print(os.path.join(os.path.dirname(torch.__file__),'lib'))"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{LibTorchVariable}=python: python3 could not be started");
            dir = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"{LibTorchVariable}=python: python3 could not import torch: {p.StandardError.ReadToEnd().Trim()}");
        }
        if (!File.Exists(Path.Combine(dir, "libtorch.so")))
            throw new InvalidOperationException($"{LibTorchVariable}={setting}: no libtorch.so in '{dir}'");
        return dir;
    }

    /// <summary>A CUDA library MoTLab calls itself (NVRTC, NCCL), from the first place it loads: the path in
    /// <paramref name="variable"/>, each of <paramref name="names"/> on the library path (where libtorch may have loaded
    /// it already), then in the PyTorch install's <c>nvidia/PACKAGE/lib</c> folders beside the libtorch loaded
    /// (<paramref name="pytorchPackages"/>), then in <paramref name="otherFolders"/>.</summary>
    /// <exception cref="DllNotFoundException">none loads: the message names every place and the variable</exception>
    public static IntPtr LoadCudaLibrary(string variable, string[] names, string[] pytorchPackages, params string[] otherFolders)
    {
        var folders = new List<string>();
        if (LibTorchDirectory is { } torchLib)
        {
            var sitePackages = Path.GetFullPath(Path.Combine(torchLib, "..", ".."));
            folders.AddRange(pytorchPackages.Select(p => Path.Combine(sitePackages, "nvidia", p, "lib")));
        }
        folders.AddRange(otherFolders);
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } configured) candidates.Add(configured);
        candidates.AddRange(names);
        candidates.AddRange(from folder in folders from name in names select Path.Combine(folder, name));
        foreach (var c in candidates)
            if (NativeLibrary.TryLoad(c, out var handle)) return handle;
        throw new DllNotFoundException($"{names[0]} not found (looked for {string.Join(", ", names)} on the library path and in " +
            $"{(folders.Count > 0 ? string.Join(", ", folders) : "no other folder")}; set {variable} to its path)");
    }

    /// <summary>"cpu", "cuda", "cuda:N" or "auto" (CUDA when available).</summary>
    public static Device ResolveDevice(string spec)
    {
        Initialise();
        if (spec == "auto") return cuda.is_available() ? CUDA : CPU;
        if (spec == "cpu") return CPU;
        if (spec.StartsWith("cuda"))
        {
            if (!cuda.is_available()) throw new InvalidOperationException($"device '{spec}': CUDA is not available (CPU build of libtorch, or no GPU). Set {LibTorchVariable} to a CUDA libtorch or use --device cpu");
            return new Device(spec);
        }
        throw new ArgumentException($"device '{spec}' is not cpu, cuda, cuda:N or auto");
    }

    private static double? cpuPeak;

    /// <summary>Peak FLOP/s used for MFU: MOTLAB_PEAK_FLOPS if set; on CUDA the H100/H200 dense peak
    /// (989 TFLOP/s bf16, 67 TFLOP/s fp32); on CPU a plain fp32 matmul measured once in this process.</summary>
    public static double PeakFlops(Device device, ScalarType compute)
    {
        if (double.TryParse(Environment.GetEnvironmentVariable("MOTLAB_PEAK_FLOPS"), out var configured) && configured > 0) return configured;
        if (device.type == DeviceType.CUDA) return compute == ScalarType.BFloat16 ? 989e12 : 67e12;
        return cpuPeak ??= MeasureMatmulFlops(CPU, 512, 0.3);
    }

    /// <summary>FLOP/s of a square fp32 matmul of size n, repeated for about <paramref name="seconds"/>.</summary>
    public static double MeasureMatmulFlops(Device device, int n, double seconds)
    {
        using var scope = NewDisposeScope();
        var a = randn(n, n, device: device); var b = randn(n, n, device: device);
        mm(a, b).Dispose();
        var sw = Stopwatch.StartNew(); int reps = 0;
        while (sw.Elapsed.TotalSeconds < seconds) { mm(a, b).Dispose(); reps++; }
        if (device.type == DeviceType.CUDA) cuda.synchronize();
        return 2.0 * n * n * n * reps / sw.Elapsed.TotalSeconds;
    }
}
