using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;
using MoTLab.Training.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MoTLab.Training.Model.Gpu;

/// <summary>MoTLab's fused CUDA kernels (<c>kernels.cu</c> beside this file, embedded in the assembly): compiled at run
/// time by NVRTC for the GPU's architecture, loaded and launched through the CUDA driver API on the tensors' device
/// pointers, on the legacy default stream, which is the stream all of libtorch's work in MoTLab runs on (MoTLab never
/// sets another), so they are ordered with it as any libtorch kernel is. Who uses them: <see cref="FusedLayerNorm"/>,
/// <see cref="LinearCrossEntropy"/> (a chunk's softmax, loss and gradient in one kernel) and
/// <see cref="CausalSelfAttention"/> (the q, k, v gradients into the projection's layout).
///
/// A kernel runs only where it is present, compiled and enabled: on a CUDA device, with libnvrtc and libcuda found,
/// the source compiled for that device, and MOTLAB_KERNELS not "off". Everywhere else each caller takes its libtorch
/// path; <see cref="Describe"/> says which runs and why. Each public entry point checks the shapes, dtypes and
/// alignment its kernel relies on (the kernels do not check bounds).</summary>
public static unsafe class GpuKernels
{
    public const string SwitchVariable = "MOTLAB_KERNELS";
    public const string NvrtcVariable = "MOTLAB_NVRTC";

    static readonly object CompileGate = new(), SuspendGate = new();
    static readonly ConcurrentDictionary<int, Loaded?> Modules = [];   // by CUDA device index; null: failed (failure says why)
    static string? failure;
    static volatile bool suspended;

    /// <summary>Whether the fused kernels run for tensors on <paramref name="device"/> (compiling them at the first call).</summary>
    public static bool Enabled(Device device) => device.type == DeviceType.CUDA && !suspended && !SwitchedOff && Load(device) is not null;

    /// <summary>One line on what runs on <paramref name="device"/>: "fused CUDA kernels (NVRTC 13.0, sm_90)" or "libtorch (why)".</summary>
    public static string Describe(Device device)
    {
        if (device.type != DeviceType.CUDA) return "libtorch (fused kernels are CUDA only)";
        if (SwitchedOff) return $"libtorch ({SwitchVariable}=off)";
        var loaded = Load(device);
        return loaded is null ? $"libtorch (fused kernels unavailable: {failure})" : $"fused CUDA kernels (NVRTC {loaded.Nvrtc}, sm_{loaded.Arch})";
    }

    static readonly bool SwitchedOff = string.Equals(Environment.GetEnvironmentVariable(SwitchVariable), "off", StringComparison.OrdinalIgnoreCase);   // read once: every op asks

    /// <summary>Runs <paramref name="action"/> on the libtorch paths (the kernel checks compare the two).</summary>
    public static T WithoutKernels<T>(Func<T> action)
    {
        lock (SuspendGate)
        {
            suspended = true;
            try { return action(); }
            finally { suspended = false; }
        }
    }

    /// <summary>The kernel source, as compiled.</summary>
    public static string Source()
    {
        using var s = Assembly.GetExecutingAssembly().GetManifestResourceStream("MoTLab.Training.Model.Gpu.kernels.cu")
            ?? throw new InvalidOperationException("kernels.cu is not embedded in MoTLab.Training");
        return new StreamReader(s).ReadToEnd();
    }

    /// <summary>The device address of a tensor's first element (its storage offset included).</summary>
    public static IntPtr Pointer(Tensor t) => THSTensor_data(t.Handle);

    /// <summary>Whether every tensor is contiguous, on <paramref name="device"/>, and starts at a multiple of
    /// <paramref name="alignment"/> bytes (what the kernels' vector loads assume).</summary>
    public static bool Fits(Device device, int alignment, params Tensor[] tensors) =>
        tensors.All(t => On(device, t) && t.is_contiguous() && (long)Pointer(t) % alignment == 0);

    /// <summary><paramref name="t"/> contiguous and starting at a multiple of <paramref name="alignment"/> bytes, as the
    /// kernels' vector loads read it: <c>contiguous()</c> hands a contiguous view as it is, wherever in its storage it
    /// starts, so such a view is copied into a fresh buffer (which libtorch aligns).</summary>
    public static Tensor AlignedContiguous(Tensor t, int alignment)
    {
        var c = t.contiguous();
        if ((long)Pointer(c) % alignment == 0) return c;
        using (c) return c.clone();
    }

    /// <summary>Whether <paramref name="t"/> is on <paramref name="device"/>, by type and index: TorchSharp's
    /// <c>Tensor.device</c> is a new <see cref="Device"/> at every call and Device compares by reference, so
    /// <c>t.device == device</c> is always false. "cuda" without an index is the device the kernels load on for it.</summary>
    public static bool On(Device device, Tensor t) =>
        t.device_type == device.type && t.device_index == (device.type == DeviceType.CUDA ? CudaIndex(device) : device.index);

    /// <summary>The CUDA device index a device names ("cuda" without one: 0, the device each of MoTLab's processes trains on).</summary>
    static int CudaIndex(Device device) => Math.Max(device.index, 0);

    /// <summary>Kernels launched by this process so far: the kernel checks and the bench read it to show that a
    /// kernel path ran, not only that the kernels were available.</summary>
    public static long Launches => Interlocked.Read(ref launches);
    static long launches;

    [DllImport("LibTorchSharp")]
    static extern IntPtr THSTensor_data(IntPtr handle);

    /// <summary>Launches <paramref name="kernel"/> on <paramref name="device"/> with a 1-D grid. Each argument is 8 bytes
    /// here and the kernel reads its parameter's own size from it: pointers and i64 as they are, 32-bit ints and floats
    /// in the low half (<see cref="Int"/>, <see cref="Float"/>).</summary>
    internal static void Launch(Device device, string kernel, long grid, int block, int sharedBytes, params long[] args)
    {
        var loaded = Load(device) ?? throw new InvalidOperationException($"fused kernel {kernel}: {failure}");
        Interlocked.Increment(ref launches);
        if (grid < 1 || grid > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(grid), $"fused kernel {kernel}: grid of {grid} blocks");
        var previous = loaded.MakeCurrent();
        try
        {
            var fn = loaded.Function(kernel);
            if (sharedBytes > 48 * 1024) Cuda.Check(Cuda.FuncSetAttribute(fn, 8, sharedBytes), $"{kernel}: {sharedBytes} bytes of shared memory");   // 8: the dynamic limit
            fixed (long* a = args)
            {
                var ptrs = stackalloc void*[args.Length];
                for (int i = 0; i < args.Length; i++) ptrs[i] = a + i;
                Cuda.Check(Cuda.LaunchKernel(fn, (uint)grid, 1, 1, (uint)block, 1, 1, (uint)sharedBytes, IntPtr.Zero, ptrs, null), $"launching {kernel}");
            }
        }
        finally { if (previous != IntPtr.Zero) Cuda.CtxSetCurrent(previous); }
    }

    internal static long Ptr(Tensor t) => (long)Pointer(t);
    internal static long Int(long v) => checked((int)v);
    internal static long Float(double v) => BitConverter.SingleToInt32Bits((float)v);
    /// <summary>The kernels' dtype flag for a tensor they read or write: 1 for bf16, 0 for fp32.</summary>
    internal static long Bf16(ScalarType t) => t == ScalarType.BFloat16 ? 1 : 0;

    /// <summary>Multiprocessors of the device (grid sizes).</summary>
    internal static int Multiprocessors(Device device) => Load(device)?.Multiprocessors ?? 1;

    /// <summary>The most dynamic shared memory a block may ask for on the device (0 where the kernels do not run).</summary>
    internal static long MaxSharedBytes(Device device) => Load(device)?.MaxSharedBytes ?? 0;

    static Loaded? Load(Device device)
    {
        int deviceIndex = CudaIndex(device);
        if (Modules.TryGetValue(deviceIndex, out var known)) return known;
        lock (CompileGate)
        {
            if (Modules.TryGetValue(deviceIndex, out known)) return known;
            Loaded? loaded = null;
            // whatever stops the kernels from loading (a library missing, an entry point, a compile error) leaves the
            // libtorch path with the reason; the libraries' loaders throw from type initialisers, hence the unwrapping
            try { loaded = Loaded.Compile(deviceIndex, Source()); }
            catch (Exception e) { failure = (e is TypeInitializationException { InnerException: { } inner } ? inner : e).Message; }
            Modules[deviceIndex] = loaded;
            return loaded;
        }
    }

    /// <summary>The compiled module on one device, its primary context and the functions looked up so far.</summary>
    sealed class Loaded(IntPtr context, IntPtr module, string nvrtc, int arch, int multiprocessors, int maxSharedBytes)
    {
        readonly Dictionary<string, IntPtr> functions = [];
        public string Nvrtc => nvrtc;
        public int Arch => arch;
        public int Multiprocessors => multiprocessors;
        public int MaxSharedBytes => maxSharedBytes;

        public static Loaded Compile(int deviceIndex, string source)
        {
            Cuda.Check(Cuda.Init(0), "cuInit");
            int dev, major, minor, sms, shared;
            Cuda.Check(Cuda.DeviceGet(&dev, deviceIndex), $"cuDeviceGet({deviceIndex})");
            Cuda.Check(Cuda.DeviceGetAttribute(&major, 75, dev), "compute capability");
            Cuda.Check(Cuda.DeviceGetAttribute(&minor, 76, dev), "compute capability");
            Cuda.Check(Cuda.DeviceGetAttribute(&sms, 16, dev), "multiprocessor count");
            Cuda.Check(Cuda.DeviceGetAttribute(&shared, 97, dev), "shared memory per block (opt-in)");
            IntPtr ctx;
            Cuda.Check(Cuda.DevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
            var (cubin, version) = GpuKernels.Nvrtc.Compile(source, $"sm_{major}{minor}");
            IntPtr current;
            Cuda.Check(Cuda.CtxGetCurrent(&current), "cuCtxGetCurrent");
            Cuda.Check(Cuda.CtxSetCurrent(ctx), "cuCtxSetCurrent");
            IntPtr module;
            try
            {
                fixed (byte* image = cubin) Cuda.Check(Cuda.ModuleLoadData(&module, image), "loading the compiled kernels");
            }
            finally { if (current != IntPtr.Zero) Cuda.CtxSetCurrent(current); }
            return new Loaded(ctx, module, version, major * 10 + minor, sms, shared);
        }

        /// <summary>Makes the device's primary context, which libtorch's runtime calls use too, current on this thread
        /// (autograd's backward runs on threads of its own, where none may be current yet).</summary>
        /// <returns>the context to restore afterwards (another device's), or zero</returns>
        public IntPtr MakeCurrent()
        {
            IntPtr current;
            Cuda.Check(Cuda.CtxGetCurrent(&current), "cuCtxGetCurrent");
            if (current == context) return IntPtr.Zero;
            Cuda.Check(Cuda.CtxSetCurrent(context), "cuCtxSetCurrent");
            return current;
        }

        public IntPtr Function(string name)
        {
            lock (functions)
            {
                if (functions.TryGetValue(name, out var f)) return f;
                var bytes = System.Text.Encoding.ASCII.GetBytes(name + "\0");
                fixed (byte* n = bytes) Cuda.Check(Cuda.ModuleGetFunction(&f, module, n), $"kernel {name}");
                return functions[name] = f;
            }
        }
    }

    /// <summary>The CUDA driver API entry points used (libcuda.so.1, which libtorch has loaded already).</summary>
    static class Cuda
    {
        static readonly IntPtr Lib = NativeLibrary.Load("libcuda.so.1");
        static IntPtr Get(string name) => NativeLibrary.GetExport(Lib, name);

        public static readonly delegate* unmanaged<uint, int> Init = (delegate* unmanaged<uint, int>)Get("cuInit");
        public static readonly delegate* unmanaged<int*, int, int> DeviceGet = (delegate* unmanaged<int*, int, int>)Get("cuDeviceGet");
        public static readonly delegate* unmanaged<int*, int, int, int> DeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)Get("cuDeviceGetAttribute");
        public static readonly delegate* unmanaged<IntPtr*, int, int> DevicePrimaryCtxRetain = (delegate* unmanaged<IntPtr*, int, int>)Get("cuDevicePrimaryCtxRetain");
        public static readonly delegate* unmanaged<IntPtr*, int> CtxGetCurrent = (delegate* unmanaged<IntPtr*, int>)Get("cuCtxGetCurrent");
        public static readonly delegate* unmanaged<IntPtr, int> CtxSetCurrent = (delegate* unmanaged<IntPtr, int>)Get("cuCtxSetCurrent");
        public static readonly delegate* unmanaged<IntPtr*, void*, int> ModuleLoadData = (delegate* unmanaged<IntPtr*, void*, int>)Get("cuModuleLoadData");
        public static readonly delegate* unmanaged<IntPtr*, IntPtr, byte*, int> ModuleGetFunction = (delegate* unmanaged<IntPtr*, IntPtr, byte*, int>)Get("cuModuleGetFunction");
        public static readonly delegate* unmanaged<IntPtr, int, int, int> FuncSetAttribute = (delegate* unmanaged<IntPtr, int, int, int>)Get("cuFuncSetAttribute");
        public static readonly delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, void**, void**, int> LaunchKernel =
            (delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, void**, void**, int>)Get("cuLaunchKernel");
        static readonly delegate* unmanaged<int, byte**, int> GetErrorString = (delegate* unmanaged<int, byte**, int>)Get("cuGetErrorString");

        public static void Check(int status, string what)
        {
            if (status == 0) return;
            byte* text = null;
            GetErrorString(status, &text);
            throw new InvalidOperationException($"CUDA driver: {what} failed: {(text is null ? $"error {status}" : Marshal.PtrToStringAnsi((IntPtr)text))}");
        }
    }

    /// <summary>NVRTC: found by soname, at MOTLAB_NVRTC, beside the PyTorch that provides libtorch, or in the CUDA toolkit.</summary>
    static class Nvrtc
    {
        static readonly IntPtr Lib = TorchRuntime.LoadCudaLibrary(NvrtcVariable, ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"],
            ["cu13", "cuda_nvrtc"], "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib");
        static IntPtr Get(string name) => NativeLibrary.GetExport(Lib, name);

        static readonly delegate* unmanaged<int*, int*, int> Version = (delegate* unmanaged<int*, int*, int>)Get("nvrtcVersion");
        static readonly delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int> CreateProgram =
            (delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int>)Get("nvrtcCreateProgram");
        static readonly delegate* unmanaged<IntPtr, int, byte**, int> CompileProgram = (delegate* unmanaged<IntPtr, int, byte**, int>)Get("nvrtcCompileProgram");
        static readonly delegate* unmanaged<IntPtr, nuint*, int> GetProgramLogSize = (delegate* unmanaged<IntPtr, nuint*, int>)Get("nvrtcGetProgramLogSize");
        static readonly delegate* unmanaged<IntPtr, byte*, int> GetProgramLog = (delegate* unmanaged<IntPtr, byte*, int>)Get("nvrtcGetProgramLog");
        static readonly delegate* unmanaged<IntPtr, nuint*, int> GetCubinSize = (delegate* unmanaged<IntPtr, nuint*, int>)Get("nvrtcGetCUBINSize");
        static readonly delegate* unmanaged<IntPtr, byte*, int> GetCubin = (delegate* unmanaged<IntPtr, byte*, int>)Get("nvrtcGetCUBIN");
        static readonly delegate* unmanaged<IntPtr*, int> DestroyProgram = (delegate* unmanaged<IntPtr*, int>)Get("nvrtcDestroyProgram");

        /// <summary>Machine code for <paramref name="arch"/> ("sm_90"), and NVRTC's version.</summary>
        public static (byte[] Cubin, string Version) Compile(string source, string arch)
        {
            int major, minor;
            Version(&major, &minor);
            IntPtr program;
            var src = System.Text.Encoding.UTF8.GetBytes(source + "\0");
            var name = "kernels.cu\0"u8.ToArray();
            fixed (byte* s = src, n = name)
                if (CreateProgram(&program, s, n, 0, null, null) != 0) throw new InvalidOperationException("NVRTC could not create the program");
            try
            {
                var options = new[] { $"--gpu-architecture={arch}", "--std=c++17", "-default-device" }
                    .Select(o => Marshal.StringToHGlobalAnsi(o)).ToArray();
                try
                {
                    int status;
                    fixed (IntPtr* o = options) status = CompileProgram(program, options.Length, (byte**)o);
                    if (status != 0) throw new InvalidOperationException($"NVRTC {major}.{minor} could not compile kernels.cu for {arch}: {Log(program)}");
                }
                finally { foreach (var o in options) Marshal.FreeHGlobal(o); }
                nuint size;
                if (GetCubinSize(program, &size) != 0 || size == 0) throw new InvalidOperationException($"NVRTC {major}.{minor} made no machine code for {arch}");
                var cubin = new byte[size];
                fixed (byte* c = cubin) GetCubin(program, c);
                return (cubin, $"{major}.{minor}");
            }
            finally { DestroyProgram(&program); }
        }

        static string Log(IntPtr program)
        {
            nuint size;
            GetProgramLogSize(program, &size);
            var log = new byte[size];
            fixed (byte* l = log) GetProgramLog(program, l);
            return System.Text.Encoding.UTF8.GetString(log).TrimEnd('\0').Trim();
        }
    }
}
