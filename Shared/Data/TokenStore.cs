using System.Globalization;
using System.Text.Json;

namespace MoTLab.Shared.Data;

/// <summary>A corpus tokenized once: two flat files of token ids, <c>train.bin</c> and <c>val.bin</c> (uint16 when the
/// vocabulary fits in 16 bits, else uint32; little-endian, documents back to back), and a <c>manifest.json</c> that says
/// what they hold. Training maps the files and reads its batches straight from the map.
///
/// Layout under the cache folder: <c>tokens/IDENTITY.TOKENIZER.SPLIT-FRACTION/</c>. A store is prepared in the same name
/// with <c>.partial</c> appended, where <c>state.json</c> records how far it got after every chunk (resumable after a
/// crash or Ctrl+C); the finished folder is renamed into place with its manifest inside, so a half-written store never
/// has the complete store's name. The partial folder's <c>.lock</c> is held by the one process preparing it.</summary>
public static class TokenStore
{
    public const string TrainFile = "train.bin", ValFile = "val.bin", ManifestFile = "manifest.json", StateFile = "state.json", LockFile = ".lock", Partial = ".partial";

    /// <summary>Default cache folder: $MOTLAB_CACHE, else ~/.cache/motlab.</summary>
    public static string DefaultCache() =>
        Environment.GetEnvironmentVariable("MOTLAB_CACHE") is { Length: > 0 } env ? env
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "motlab");

    /// <summary>The folder that holds every store of a cache.</summary>
    public static string Root(string? cache) => Path.Combine(cache ?? DefaultCache(), "tokens");

    /// <summary>The store of one corpus, tokenizer and held-out split.</summary>
    public static string Folder(string? cache, string identity, string tokenizer, string split, double heldOut) =>
        Path.Combine(Root(cache), $"{identity}.{tokenizer}.{split}-{heldOut.ToString("R", CultureInfo.InvariantCulture)}");

    /// <summary>The split a corpus is held out by: its tail when it is one document, else what data.split asks.</summary>
    public static string SplitOf(Corpus corpus, string split) => corpus.OneDocument ? Config.DataSplits.Tail : split;

    /// <summary>A finished store's manifest, or null when <paramref name="folder"/> holds none (not prepared yet).</summary>
    public static TokenStoreManifest? Manifest(string folder)
    {
        var file = Path.Combine(folder, ManifestFile);
        if (!File.Exists(file)) return null;
        try { return JsonSerializer.Deserialize<TokenStoreManifest>(File.ReadAllText(file), Json.Options); }
        catch (JsonException) { return null; }
    }

    /// <summary>How far a preparation of <paramref name="folder"/> has got (its partial folder's state), or null.</summary>
    public static PrepareState? Preparing(string folder)
    {
        var file = Path.Combine(folder + Partial, StateFile);
        if (!File.Exists(file)) return null;
        try { return JsonSerializer.Deserialize<PrepareState>(File.ReadAllText(file), Json.Options); }
        catch (Exception e) when (e is JsonException or IOException) { return null; }
    }

    /// <summary>One store of a corpus, finished (its manifest) or being prepared (its state), named by its folder.</summary>
    public sealed record Entry(string Folder, string Tokenizer, string Split, double HeldOut, TokenStoreManifest? Manifest, PrepareState? Preparing);

    /// <summary>Every store of a corpus identity under <paramref name="cache"/>, finished or not, any tokenizer and split.</summary>
    public static IEnumerable<Entry> Of(string? cache, string identity)
    {
        var root = Root(cache);
        if (!Directory.Exists(root)) yield break;
        foreach (var dir in Directory.EnumerateDirectories(root, identity + ".*").Order(StringComparer.Ordinal))
        {
            var folder = dir.EndsWith(Partial, StringComparison.Ordinal) ? dir[..^Partial.Length] : dir;
            var parts = Path.GetFileName(folder)[(identity.Length + 1)..].Split('.', 2);         // "gpt2", "documents-0.05"
            if (parts.Length != 2 || parts[1].Split('-', 2) is not [var split, var fraction]
                || !double.TryParse(fraction, NumberStyles.Float, CultureInfo.InvariantCulture, out var heldOut)) continue;
            var manifest = folder == dir ? Manifest(dir) : null;
            var preparing = folder == dir ? null : Preparing(folder);
            if (manifest is not null || preparing is not null) yield return new Entry(folder, parts[0], split, heldOut, manifest, preparing);
        }
    }

    /// <summary>Bytes per token id for a vocabulary.</summary>
    public static int Width(int vocabSize) => vocabSize <= ushort.MaxValue + 1 ? 2 : 4;
}

/// <summary>What a store holds, or has so far while it is prepared: documents and tokens of each split.</summary>
public record TokenCounts
{
    /// <summary>Corpus and tokenizer: what the counts are of.</summary>
    public string Corpus { get; init; } = "";
    public string Tokenizer { get; init; } = "";
    public long Documents { get; init; }
    public long TrainDocuments { get; init; }
    public long ValDocuments { get; init; }
    public long TrainTokens { get; init; }
    public long ValTokens { get; init; }
    /// <summary>UTF-8 bytes of text tokenized.</summary>
    public long TextBytes { get; init; }
    /// <summary>Seconds spent preparing, over every attempt.</summary>
    public double Seconds { get; init; }

    public long Tokens => TrainTokens + ValTokens;
}

/// <summary>What a finished token store holds (its manifest.json): the counts its preparation ended with, and how it
/// was made.</summary>
public sealed record TokenStoreManifest : TokenCounts
{
    public TokenStoreManifest() { }
    /// <summary>A manifest with the counts a preparation ended with.</summary>
    public TokenStoreManifest(TokenCounts final) : base(final) { }

    public int Version { get; init; } = 1;
    public string Identity { get; init; } = "";
    public string Format { get; init; } = "";
    public int VocabSize { get; init; }
    /// <summary>"uint16" or "uint32" (<see cref="TokenTypeOf"/>; <see cref="Width"/> reads it back).</summary>
    public string TokenType { get; init; } = "uint16";

    /// <summary>The token type of ids <paramref name="width"/> bytes wide.</summary>
    public static string TokenTypeOf(int width) => width == 2 ? "uint16" : "uint32";

    /// <summary>Bytes per stored id.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int Width => TokenType == TokenTypeOf(4) ? 4 : 2;
    /// <summary>"documents" or "tail" (data.split).</summary>
    public string Split { get; init; } = "";
    public double HeldOut { get; init; }
    public IReadOnlyList<SourceFile> Sources { get; init; } = [];
    public DateTime PreparedUtc { get; init; }
}

/// <summary>One file a store was prepared from, as it was then.</summary>
public sealed record SourceFile(string Path, long Bytes, DateTime ModifiedUtc);

/// <summary>How far a preparation has got (its state.json, written after every chunk): what a resumed preparation
/// continues from, and the progress the CLI and the dashboard show.</summary>
public sealed record PrepareState : TokenCounts
{
    /// <summary>Bytes of the corpus files read, of <see cref="SourceBytes"/> (0: unknown, the synthetic corpus).</summary>
    public long SourceBytesRead { get; init; }
    public long SourceBytes { get; init; }
    /// <summary>Tokens per second of this attempt.</summary>
    public double TokensPerS { get; init; }
    /// <summary>Seconds left at this attempt's pace, when the share read is known.</summary>
    public double? EtaS { get; init; }
    public DateTime UpdatedUtc { get; init; }
    /// <summary>The preparing process (to tell a live preparation from one that stopped).</summary>
    public int Pid { get; init; }
    /// <summary>Set when the preparation failed: the reason, naming the file and line or row.</summary>
    public string? Error { get; init; }

    /// <summary>The share of the corpus files read, when their size is known.</summary>
    public double? Fraction => SourceBytes > 0 ? Math.Clamp((double)SourceBytesRead / SourceBytes, 0, 1) : null;

    /// <summary>"12,345 documents, 6,789,012 tokens, 28.1 MB of text, 41 % of 68 MB read, 250,000 tokens/s, ETA 00:01:12".</summary>
    public string Describe() =>
        $"{Documents:N0} documents, {Tokens:N0} tokens, {TextBytes / 1e6:N1} MB of text" +
        (Fraction is { } f ? $", {f:P0} of {SourceBytes / 1e6:N0} MB read" : "") + $", {TokensPerS:N0} tokens/s" +
        (EtaS is { } eta ? $", ETA {TimeSpan.FromSeconds(Math.Round(eta)):c}" : "");

    /// <summary>Whether the process that wrote this state still runs (a stopped preparation resumes when asked again).</summary>
    public bool Live()
    {
        if (Error is not null) return false;
        try { using var p = System.Diagnostics.Process.GetProcessById(Pid); return !p.HasExited && DateTime.UtcNow - UpdatedUtc < TimeSpan.FromMinutes(2); }
        catch (ArgumentException) { return false; }
    }
}
