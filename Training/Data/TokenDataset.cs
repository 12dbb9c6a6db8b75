using MoTLab.Shared.Data;
using static TorchSharp.torch;

namespace MoTLab.Training.Data;

/// <summary>Train/validation token streams and the batches drawn from them. Batch offsets are a pure
/// function of (seed, step, row), so the data position is just the step number: resuming at step s draws
/// exactly the batches an uninterrupted run would have drawn.</summary>
public sealed class TokenDataset
{
    private readonly ushort[] train;
    private readonly ushort[] val;
    private readonly int seqLen;
    private readonly long seed;

    public long TrainTokens => train.Length;
    public long ValTokens => val.Length;

    public TokenDataset(ushort[] tokens, int seqLen, double valFraction, long seed, string corpusName)
    {
        int valCount = (int)Math.Max(seqLen + 1, tokens.Length * valFraction);
        if (tokens.Length - valCount < seqLen + 1)
            throw new CorpusException($"corpus '{corpusName}' has {tokens.Length:N0} tokens: too small for one sequence of {seqLen} tokens plus a held-out split (needs at least {2 * (seqLen + 1):N0})");
        train = tokens[..^valCount];
        val = tokens[^valCount..];
        this.seqLen = seqLen; this.seed = seed;
    }

    /// <summary>Training batch for <paramref name="step"/>: inputs and next-token targets, each (B, T) int64.</summary>
    public (Tensor X, Tensor Y) TrainBatch(long step, int batch, Device device) => Make(train, step, batch, device);

    /// <summary>The j-th fixed evaluation batch (the same every time it is asked for).</summary>
    public (Tensor X, Tensor Y) EvalBatch(int j, int batch, Device device) => Make(val, -1 - j, batch, device);

    (Tensor, Tensor) Make(ushort[] source, long step, int batch, Device device)
    {
        int t = seqLen;
        var x = new long[batch * t]; var y = new long[batch * t];
        long span = source.Length - t;                   // start + t (the last target) must be a valid index
        for (int b = 0; b < batch; b++)
        {
            long start = (long)(Mix((ulong)seed, (ulong)step, (ulong)b) % (ulong)span);
            for (int i = 0; i < t; i++) { x[b * t + i] = source[start + i]; y[b * t + i] = source[start + i + 1]; }
        }
        var xs = tensor(x, [batch, t]); var ys = tensor(y, [batch, t]);
        if (device.type == TorchSharp.DeviceType.CPU) return (xs, ys);
        // pinned + non_blocking: a pageable copy would make the host wait for the GPU to drain every step
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
}
