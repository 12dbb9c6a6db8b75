using MoTLab.Shared.Data;
using System.Runtime.InteropServices;

namespace MoTLab.Training.Data;

/// <summary>Tokenizes a corpus once per (corpus identity, tokenizer) and keeps the ids as a flat ushort
/// file; later runs map it straight back. Documents are separated by nothing (their text ends in a newline).</summary>
public static class TokenCache
{
    /// <summary>Default cache folder: $MOTLAB_CACHE, else ~/.cache/motlab.</summary>
    public static string DefaultDirectory() =>
        Environment.GetEnvironmentVariable("MOTLAB_CACHE") is { Length: > 0 } env ? env
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "motlab");

    public static ushort[] Load(Corpus corpus, ITextTokenizer tokenizer, string? cacheDir = null, Action<string>? log = null)
    {
        if (tokenizer.VocabSize > ushort.MaxValue + 1) throw new ArgumentException($"tokenizer {tokenizer.Name} has more than 65,536 ids");
        var dir = Path.Combine(cacheDir ?? DefaultDirectory(), "tokens");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, $"{corpus.Identity}.{tokenizer.Name}.u16");
        if (File.Exists(file))
        {
            var bytes = File.ReadAllBytes(file);
            return MemoryMarshal.Cast<byte, ushort>(bytes).ToArray();
        }
        log?.Invoke($"tokenizing corpus '{corpus.Name}' with {tokenizer.Name} (cached at {file})");
        ushort[] ids;
        try
        {
            ids = corpus.Documents().AsParallel().AsOrdered().WithDegreeOfParallelism(Math.Max(1, Environment.ProcessorCount))
                .SelectMany(doc => tokenizer.Encode(doc)).Select(i => (ushort)i).ToArray();
        }
        catch (AggregateException e) when (e.Flatten().InnerExceptions.OfType<CorpusException>().FirstOrDefault() is { } bad)
        {
            // the parallel tokenization wraps a bad document's error: it is told as itself (file and line), not as a crash
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(bad).Throw();
            throw;
        }
        if (ids.Length == 0) throw new CorpusException($"corpus '{corpus.Name}' has no text");
        var tmp = file + $".{Guid.NewGuid():N}.tmp";
        File.WriteAllBytes(tmp, MemoryMarshal.AsBytes(ids.AsSpan()).ToArray());
        File.Move(tmp, file, overwrite: true); // atomic: a crash never leaves a half-written cache
        return ids;
    }
}
