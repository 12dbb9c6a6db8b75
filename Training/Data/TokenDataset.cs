using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using MoTLab.Shared.Config;
using MoTLab.Shared.Data;
using static TorchSharp.torch;

namespace MoTLab.Training.Data;

/// <summary>Train/validation token streams and the batches drawn from them, read straight from a token store's
/// memory-mapped files. Batch offsets are a pure function of (seed, step, row), so the data position is just the step
/// number: resuming at step s draws exactly the batches an uninterrupted run would have drawn.</summary>
public sealed class TokenDataset : IDisposable
{
    private readonly TokenSplit train;
    private readonly TokenSplit val;
    private readonly int seqLen;
    private readonly long seed;

    public long TrainTokens => train.Length;
    public long ValTokens => val.Length;

    TokenDataset(TokenSplit train, TokenSplit val, int seqLen, long seed, string corpusName, string? advice)
    {
        this.train = train; this.val = val; this.seqLen = seqLen; this.seed = seed;
        if (train.Length < seqLen + 1 || val.Length < seqLen + 1)
        {
            Dispose();
            var which = train.Length < seqLen + 1 ? $"its training split has {train.Length:N0} tokens" : $"its held-out split has {val.Length:N0} tokens";
            throw new CorpusException($"corpus '{corpusName}': {which}, too few for one sequence of {seqLen} tokens plus its next token{advice}");
        }
    }

    /// <summary>A prepared store (<see cref="TokenStoreWriter.Prepare"/>) or a pre-tokenized corpus's folder.</summary>
    public static TokenDataset Open(string folder, int seqLen, long seed, string corpusName, int vocabSize)
    {
        var manifest = TokenStore.Manifest(folder);
        int width = manifest?.Width ?? 2;                                                      // nanoGPT's bins are uint16
        var train = TokenSplit.Map(Path.Combine(folder, TokenStore.TrainFile), width);
        var val = TokenSplit.Map(Path.Combine(folder, TokenStore.ValFile), width);
        if (manifest is null)                                                                  // not ours: every id checked once
            foreach (var (split, file) in new[] { (train, TokenStore.TrainFile), (val, TokenStore.ValFile) })
                if (split.FirstAbove(vocabSize - 1) is { } at)
                {
                    long id = split[at];
                    train.Dispose(); val.Dispose();
                    throw new CorpusException($"corpus '{corpusName}': {Path.Combine(folder, file)} holds token id {id} at position {at:N0}, outside the tokenizer's {vocabSize:N0} ids (pre-tokenized corpora hold GPT-2 ids as uint16)");
                }
        string? advice = manifest?.Split == DataSplits.Documents ? "; a corpus of more documents, or data.split \"tail\", holds out more text" : null;
        return new TokenDataset(train, val, seqLen, seed, corpusName, advice);
    }

    /// <summary>A token stream held in memory, its tail held out (benchmarks train on random ids).</summary>
    public static TokenDataset InMemory(ushort[] tokens, int seqLen, double valFraction, long seed)
    {
        int valCount = (int)Math.Max(seqLen + 1, tokens.Length * valFraction);
        return new TokenDataset(TokenSplit.Of(tokens[..^valCount]), TokenSplit.Of(tokens[^valCount..]), seqLen, seed, "in memory", null);
    }

    /// <summary>Training batch for <paramref name="step"/>: inputs and next-token targets, each (B, T) int64.</summary>
    /// <param name="first">the first row wanted of the step's <paramref name="batch"/> rows (a data-parallel process's share)</param>
    /// <param name="count">how many rows from <paramref name="first"/> (default: all)</param>
    public (Tensor X, Tensor Y) TrainBatch(long step, int batch, Device device, int first = 0, int? count = null) =>
        Make(train, step, first, count ?? batch - first, device);

    /// <summary>The j-th fixed evaluation batch (the same every time it is asked for).</summary>
    public (Tensor X, Tensor Y) EvalBatch(int j, int batch, Device device) => Make(val, -1 - j, 0, batch, device);

    /// <summary>Rows of <see cref="seqLen"/> ids written straight into the batch's int64 tensors; for a GPU copied through
    /// pinned memory (a pageable copy would make the host wait for the GPU to drain every step).</summary>
    unsafe (Tensor, Tensor) Make(TokenSplit source, long step, int first, int count, Device device)
    {
        int t = seqLen;
        bool cpu = device.type == TorchSharp.DeviceType.CPU;
        var xs = empty([count, t], ScalarType.Int64); var ys = empty([count, t], ScalarType.Int64);
        long* x = Model.Cpu.CpuKernels.Ptr<long>(xs), y = Model.Cpu.CpuKernels.Ptr<long>(ys);
        long span = source.Length - t;                   // start + t (the last target) must be a valid index
        for (int i = 0; i < count; i++)
        {
            long start = (long)(Mix((ulong)seed, (ulong)step, (ulong)(first + i)) % (ulong)span);   // row first + i of the step's batch
            source.Copy(start, new Span<long>(x + (long)i * t, t));
            source.Copy(start + 1, new Span<long>(y + (long)i * t, t));
        }
        if (cpu) return (xs, ys);
        using (xs) using (ys) using (var px = xs.pin_memory()) using (var py = ys.pin_memory())
            return (px.to(device, non_blocking: true), py.to(device, non_blocking: true));
    }

    /// <summary>SplitMix64 over the three inputs: a cheap, well-mixed, stateless hash.</summary>
    static ulong Mix(ulong a, ulong b, ulong c)
    {
        ulong z = a * 0x9E3779B97F4A7C15UL ^ (b + 0x632BE59BD9B4E019UL) * 0xBF58476D1CE4E5B9UL ^ (c + 1) * 0x94D049BB133111EBUL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public void Dispose() { train.Dispose(); val.Dispose(); }
}

/// <summary>One split's ids: a read-only memory map of its file (uint16 or uint32, little-endian), or a pinned array.</summary>
sealed unsafe class TokenSplit : IDisposable
{
    readonly MemoryMappedFile? map;
    readonly MemoryMappedViewAccessor? view;
    GCHandle pin;
    readonly byte* at;
    readonly int width;
    public long Length { get; }

    TokenSplit(MemoryMappedFile? map, MemoryMappedViewAccessor? view, GCHandle pin, byte* at, int width, long length)
    {
        this.map = map; this.view = view; this.pin = pin; this.at = at; this.width = width; Length = length;
    }

    public static TokenSplit Map(string file, int width)
    {
        long bytes = new FileInfo(file).Length;
        if (bytes % width != 0) throw new CorpusException($"token file '{file}' is {bytes:N0} bytes, not a whole number of {width}-byte ids");
        if (bytes == 0) return new TokenSplit(null, null, default, null, width, 0);
        var map = MemoryMappedFile.CreateFromFile(file, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = map.CreateViewAccessor(0, bytes, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        return new TokenSplit(map, view, default, p + view.PointerOffset, width, bytes / width);
    }

    public static TokenSplit Of(ushort[] ids)
    {
        var pin = GCHandle.Alloc(ids, GCHandleType.Pinned);
        return new TokenSplit(null, null, pin, (byte*)pin.AddrOfPinnedObject(), 2, ids.Length);
    }

    public long this[long i] => width == 2 ? ((ushort*)at)[i] : ((uint*)at)[i];

    /// <summary>Ids [start, start + into.Length) as int64.</summary>
    public void Copy(long start, Span<long> into)
    {
        if (width == 2) { var s = new ReadOnlySpan<ushort>((ushort*)at + start, into.Length); for (int i = 0; i < s.Length; i++) into[i] = s[i]; }
        else { var s = new ReadOnlySpan<uint>((uint*)at + start, into.Length); for (int i = 0; i < s.Length; i++) into[i] = s[i]; }
    }

    /// <summary>The first position whose id exceeds <paramref name="max"/> (below 65,536), or null; vectorised, a block at a time.</summary>
    public long? FirstAbove(long max)
    {
        const int Block = 1 << 28;
        for (long from = 0; from < Length; from += Block)
        {
            int n = (int)Math.Min(Block, Length - from);
            int i = width == 2 ? new ReadOnlySpan<ushort>((ushort*)at + from, n).IndexOfAnyExceptInRange((ushort)0, (ushort)max)
                : new ReadOnlySpan<uint>((uint*)at + from, n).IndexOfAnyExceptInRange(0u, (uint)max);
            if (i >= 0) return from + i;
        }
        return null;
    }

    bool disposed;

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (view is not null) { view.SafeMemoryMappedViewHandle.ReleasePointer(); view.Dispose(); }
        map?.Dispose();
        if (pin.IsAllocated) pin.Free();
    }
}
