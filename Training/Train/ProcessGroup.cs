using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace MoTLab.Training.Train;

/// <summary>One process of a data-parallel run (<c>train.gpus</c> processes, one per GPU on CUDA): its rank, the
/// world's size, and the one collective data parallelism needs, the mean of a list of tensors over the ranks, in
/// place. On CUDA it is NCCL's all-reduce (libnccl, which PyTorch's CUDA install ships); on the CPU it is a sum
/// through rank 0 over loopback TCP, in rank order (every rank gets the same bits). The ranks meet in a rendezvous
/// folder: rank 0 leaves there what the others need to join (NCCL's unique id, or its TCP port).
///
/// A rank that dies fails the others' next collective (the TCP connection closes), and the launcher ends every rank
/// when one ends badly (<see cref="Cli.DataParallelLaunch"/>), which is what frees the GPUs when NCCL would wait.</summary>
public sealed class ProcessGroup : IDisposable
{
    public int Rank { get; }
    public int World { get; }
    readonly ITransport transport;

    ProcessGroup(int rank, int world, ITransport transport) { Rank = rank; World = world; this.transport = transport; }

    public bool IsRoot => Rank == 0;

    /// <summary>Joins the group (waits up to <paramref name="timeout"/> for the others) on <paramref name="device"/>'s transport.</summary>
    public static ProcessGroup Join(int rank, int world, string rendezvous, Device device, TimeSpan? timeout = null)
    {
        if (world < 1 || rank < 0 || rank >= world) throw new ArgumentException($"rank {rank} of {world}: the rank must be in 0..{world - 1}");
        Directory.CreateDirectory(rendezvous);
        var wait = timeout ?? TimeSpan.FromMinutes(2);
        ITransport t;
        try { t = device.type == DeviceType.CUDA ? new NcclTransport(rank, world, rendezvous, wait) : new TcpTransport(rank, world, rendezvous, wait); }
        catch (TypeInitializationException e) when (e.InnerException is { } inner) { throw new InvalidOperationException($"rank {rank}: {inner.Message}", inner); }
        return new ProcessGroup(rank, world, t);
    }

    /// <summary>Replaces each tensor by its mean over the ranks (all on this rank's device, one dtype).</summary>
    public void AllReduceMean(IReadOnlyList<Tensor> tensors)
    {
        if (World == 1 || tensors.Count == 0) return;
        transport.AllReduceMean(tensors, World);
    }

    public void Dispose() => transport.Dispose();

    interface ITransport : IDisposable
    {
        void AllReduceMean(IReadOnlyList<Tensor> tensors, int world);
    }

    /// <summary>A file the ranks agree on, written whole before it appears (write, then rename).</summary>
    static void Publish(string path, byte[] bytes)
    {
        var partial = path + ".partial";
        File.WriteAllBytes(partial, bytes);
        File.Move(partial, path, overwrite: true);
    }

    static byte[] Await(string path, TimeSpan timeout, int rank)
    {
        var until = DateTime.UtcNow + timeout;
        while (!File.Exists(path))
        {
            if (DateTime.UtcNow > until) throw new TimeoutException($"rank {rank}: rank 0 did not open the group within {timeout.TotalSeconds:N0} s ({path} never appeared)");
            Thread.Sleep(50);
        }
        return File.ReadAllBytes(path);
    }

    /// <summary>The CPU transport: rank 0 accepts one loopback connection per other rank; a collective is every
    /// rank's flattened fp32 values to rank 0, their sum in rank order divided by the world's size, and that back.</summary>
    sealed class TcpTransport : ITransport
    {
        readonly int rank;
        readonly List<NetworkStream> peers = [];   // rank 0: ranks 1..N−1 in order; others: rank 0
        readonly TcpListener? listener;

        public TcpTransport(int rank, int world, string rendezvous, TimeSpan timeout)
        {
            this.rank = rank;
            var portFile = Path.Combine(rendezvous, "tcp-port");
            if (rank == 0)
            {
                listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                Publish(portFile, BitConverter.GetBytes(((IPEndPoint)listener.LocalEndpoint).Port));
                var byRank = new NetworkStream?[world];
                var until = DateTime.UtcNow + timeout;
                for (int joined = 1; joined < world; joined++)
                {
                    var accept = listener.AcceptTcpClientAsync();
                    var left = until - DateTime.UtcNow;
                    if (!accept.Wait(left > TimeSpan.Zero ? left : TimeSpan.Zero))
                        throw new TimeoutException($"rank 0: {world - joined} of {world - 1} ranks did not join within {timeout.TotalSeconds:N0} s");
                    var client = accept.Result;
                    client.NoDelay = true;
                    var stream = client.GetStream();
                    stream.ReadTimeout = (int)Math.Clamp((until - DateTime.UtcNow).TotalMilliseconds, 1000, int.MaxValue);   // a silent connection must not hold the join
                    int r = BitConverter.ToInt32(ReadExactly(stream, 4, "a joining rank"));
                    stream.ReadTimeout = Timeout.Infinite;                 // rank 0's evaluation can keep the others waiting
                    if (r < 1 || r >= world || byRank[r] is not null) throw new InvalidOperationException($"rank 0: a process joined as rank {r} of {world}");
                    byRank[r] = stream;
                }
                peers.AddRange(byRank.Skip(1).Select(s => s!));
            }
            else
            {
                int port = BitConverter.ToInt32(Await(portFile, timeout, rank));
                var client = new TcpClient { NoDelay = true };
                client.Connect(IPAddress.Loopback, port);
                var stream = client.GetStream();
                stream.Write(BitConverter.GetBytes(rank));
                peers.Add(stream);
            }
        }

        public void AllReduceMean(IReadOnlyList<Tensor> tensors, int world)
        {
            using var scope = NewDisposeScope();
            var flat = cat(tensors.Select(t => t.detach().reshape(-1).to_type(ScalarType.Float32).cpu()).ToArray()).contiguous();   // (n)
            if (flat.numel() > int.MaxValue / sizeof(float))
                throw new InvalidOperationException($"rank {rank}: {flat.numel():N0} values are more than one CPU all-reduce carries (2 GiB)");
            var bytes = flat.bytes.ToArray();
            if (rank == 0)
            {
                for (int r = 1; r < world; r++)
                {
                    using var other = torch.tensor(MemoryMarshal.Cast<byte, float>(Receive(peers[r - 1], bytes.Length, $"rank {r}")).ToArray());
                    flat.add_(other);
                }
                flat.div_(world);
                bytes = flat.bytes.ToArray();
                foreach (var p in peers) Send(p, bytes);
            }
            else
            {
                Send(peers[0], bytes);
                bytes = Receive(peers[0], bytes.Length, "rank 0");
                flat = torch.tensor(MemoryMarshal.Cast<byte, float>(bytes).ToArray());
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                using var part = flat.narrow(0, offset, t.numel()).view(t.shape).to(t.dtype, t.device);
                t.copy_(part);
                offset += t.numel();
            }
        }

        /// <summary>A message: its length, then its bytes (a rank that sends another length is out of step: an error, not a misread).</summary>
        static void Send(NetworkStream s, byte[] bytes)
        {
            s.Write(BitConverter.GetBytes(bytes.Length));
            s.Write(bytes);
        }

        byte[] Receive(NetworkStream s, int expected, string from)
        {
            int length = BitConverter.ToInt32(ReadExactly(s, 4, from));
            if (length != expected) throw new InvalidOperationException($"rank {rank}: {from} sent {length:N0} bytes where {expected:N0} were due: the ranks are out of step");
            return ReadExactly(s, length, from);
        }

        byte[] ReadExactly(NetworkStream s, int count, string from)
        {
            var buffer = new byte[count];
            try { s.ReadExactly(buffer); }
            catch (Exception e) when (e is EndOfStreamException or IOException or SocketException)
            {
                throw new IOException($"rank {rank}: the connection to {from} closed: that rank ended", e);
            }
            return buffer;
        }

        public void Dispose()
        {
            foreach (var p in peers) p.Dispose();
            listener?.Stop();
        }
    }

    /// <summary>The CUDA transport: NCCL's communicator over the ranks' GPUs; a collective is one grouped
    /// ncclAllReduce (average) per tensor, in place, on the legacy default stream that libtorch's work runs on.</summary>
    sealed unsafe class NcclTransport : ITransport
    {
        readonly IntPtr comm;
        bool failed;

        public NcclTransport(int rank, int world, string rendezvous, TimeSpan timeout)
        {
            Nccl.CheckVersion();
            var idFile = Path.Combine(rendezvous, "nccl-id");
            Nccl.UniqueId id;
            if (rank == 0)
            {
                Nccl.Check(Nccl.GetUniqueId(&id), "ncclGetUniqueId");
                Publish(idFile, new ReadOnlySpan<byte>(&id, sizeof(Nccl.UniqueId)).ToArray());
            }
            else
            {
                var bytes = Await(idFile, timeout, rank);
                if (bytes.Length != sizeof(Nccl.UniqueId)) throw new InvalidOperationException($"rank {rank}: {idFile} holds {bytes.Length} bytes, not an NCCL id");
                bytes.CopyTo(new Span<byte>(&id, sizeof(Nccl.UniqueId)));
            }
            IntPtr c;
            Nccl.Check(Nccl.CommInitRank(&c, world, id, rank), $"ncclCommInitRank (rank {rank} of {world})");
            comm = c;
        }

        public void AllReduceMean(IReadOnlyList<Tensor> tensors, int world)
        {
            failed = true;                                                 // until the group is issued
            Nccl.Check(Nccl.GroupStart(), "ncclGroupStart");
            foreach (var t in tensors)
            {
                if (!t.is_contiguous()) throw new ArgumentException("NCCL all-reduce needs contiguous tensors");
                var ptr = Model.Gpu.GpuKernels.Pointer(t);
                Nccl.Check(Nccl.AllReduce(ptr, ptr, (nuint)t.numel(), Nccl.DataType(t.dtype), 4 /* ncclAvg */, comm, IntPtr.Zero), "ncclAllReduce");
            }
            Nccl.Check(Nccl.GroupEnd(), "ncclGroupEnd");
            failed = false;
        }

        /// <summary>Destroys the communicator, or aborts it after a failure (destroying it then could wait for a dead peer).</summary>
        public void Dispose() { if (failed) Nccl.CommAbort(comm); else Nccl.CommDestroy(comm); }
    }

    /// <summary>libnccl.so.2 (PyTorch's CUDA install ships it; libtorch_cuda has loaded it already).</summary>
    static unsafe class Nccl
    {
        /// <summary>ncclUniqueId: 128 opaque bytes, passed by value to ncclCommInitRank (the platform's struct
        /// convention, which the runtime applies to a by-value struct in an unmanaged call).</summary>
        [StructLayout(LayoutKind.Sequential, Size = 128)]
        public struct UniqueId { fixed byte bytes[128]; }

        public const string LibraryVariable = "MOTLAB_NCCL";
        // by soname first: PyTorch's CUDA libtorch has it loaded already
        static readonly IntPtr Lib = Runtime.TorchRuntime.LoadCudaLibrary(LibraryVariable, ["libnccl.so.2"], ["nccl"]);
        static IntPtr Get(string name) => NativeLibrary.GetExport(Lib, name);

        /// <summary>ncclAvg and bf16 came in NCCL 2.10.</summary>
        public static void CheckVersion()
        {
            int version;
            Check(GetVersion(&version), "ncclGetVersion");
            if (version < 21000) throw new InvalidOperationException($"NCCL {version / 10000}.{version / 100 % 100} is older than 2.10, which averaging needs");
        }

        public static readonly delegate* unmanaged<UniqueId*, int> GetUniqueId = (delegate* unmanaged<UniqueId*, int>)Get("ncclGetUniqueId");
        public static readonly delegate* unmanaged<IntPtr*, int, UniqueId, int, int> CommInitRank = (delegate* unmanaged<IntPtr*, int, UniqueId, int, int>)Get("ncclCommInitRank");
        public static readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> AllReduce =
            (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)Get("ncclAllReduce");
        public static readonly delegate* unmanaged<int> GroupStart = (delegate* unmanaged<int>)Get("ncclGroupStart");
        public static readonly delegate* unmanaged<int> GroupEnd = (delegate* unmanaged<int>)Get("ncclGroupEnd");
        static readonly delegate* unmanaged<IntPtr, int> Destroy = (delegate* unmanaged<IntPtr, int>)Get("ncclCommDestroy");
        static readonly delegate* unmanaged<IntPtr, int> Abort = (delegate* unmanaged<IntPtr, int>)Get("ncclCommAbort");
        static readonly delegate* unmanaged<int*, int> GetVersion = (delegate* unmanaged<int*, int>)Get("ncclGetVersion");
        static readonly delegate* unmanaged<int, byte*> ErrorString = (delegate* unmanaged<int, byte*>)Get("ncclGetErrorString");

        public static void CommDestroy(IntPtr comm) => Destroy(comm);
        public static void CommAbort(IntPtr comm) => Abort(comm);

        /// <summary>ncclDataType_t of a tensor dtype.</summary>
        public static int DataType(ScalarType t) => t switch
        {
            ScalarType.Float32 => 7, ScalarType.Float16 => 6, ScalarType.BFloat16 => 9, ScalarType.Float64 => 8,
            _ => throw new ArgumentException($"NCCL all-reduce of {t} is not supported here"),
        };

        public static void Check(int status, string what)
        {
            if (status != 0) throw new InvalidOperationException($"NCCL: {what} failed: {Marshal.PtrToStringAnsi((IntPtr)ErrorString(status))}");
        }
    }
}
