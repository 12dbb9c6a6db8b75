using System.Security.Cryptography;
using System.Text;

namespace MoTLab.Training.Data;

/// <summary>A source of text: a built-in corpus or a UTF-8 file / folder. <see cref="Identity"/> changes
/// whenever the content may have changed (file sizes and times), so token caches stay valid.</summary>
public sealed class Corpus
{
    public const string Synthetic = "synthetic", DotnetDocs = "dotnet-docs", LinuxDocs = "linux-docs";
    public static readonly string[] BuiltIn = [Synthetic, DotnetDocs, LinuxDocs];

    public string Name { get; }
    public string Identity { get; }
    private readonly Func<IEnumerable<string>> documents;

    Corpus(string name, string identity, Func<IEnumerable<string>> documents)
    {
        Name = name; Identity = identity; this.documents = documents;
    }

    public IEnumerable<string> Documents() => documents();

    /// <summary>Resolves data.corpus. Throws <see cref="CorpusException"/> with a message naming the problem.</summary>
    public static Corpus Open(string spec)
    {
        switch (spec)
        {
            case Synthetic:
                return new Corpus(spec, "synthetic-v1", () => SyntheticCorpus.Documents());
            case DotnetDocs:
            {
                var files = DotnetDocsCorpus.Files();
                if (files.Count == 0) throw new CorpusException($"corpus '{spec}': no reference-pack XML docs found under {DotnetDocsCorpus.Root()}/packs");
                return new Corpus(spec, Fingerprint("dotnet-docs-v2", files), () => DotnetDocsCorpus.Documents(files));
            }
            case LinuxDocs:
            {
                var root = LinuxDocsRoot();
                if (root is null) throw new CorpusException($"corpus '{spec}': Debian's linux-doc package is not installed (apt-get install linux-doc-6.1)");
                var files = RstFiles(root);
                if (files.Count == 0) throw new CorpusException($"corpus '{spec}': no .rst or .rst.gz files under {root}");
                return new Corpus(spec, Fingerprint("linux-docs-v1", files), () => files.Select(ReadUtf8));
            }
        }
        var path = Path.GetFullPath(spec);
        if (File.Exists(path))
            return new Corpus(spec, Fingerprint("file", [path]), () => [ReadUtf8(path)]);
        if (Directory.Exists(path))
        {
            var files = Directory.GetFiles(path, "*", SearchOption.AllDirectories)
                .Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal).ToList();
            if (files.Count == 0) throw new CorpusException($"corpus folder '{spec}' contains no files");
            return new Corpus(spec, Fingerprint("folder", files), () => files.Select(ReadUtf8));
        }
        throw new CorpusException($"corpus '{spec}' is neither a built-in corpus ({string.Join(", ", BuiltIn)}) nor an existing file or folder");
    }

    /// <summary>Whether a built-in corpus can be read on this machine (its source files are installed).</summary>
    public static bool IsAvailable(string builtIn) => builtIn switch
    {
        DotnetDocs => DotnetDocsCorpus.Files().Count > 0,
        LinuxDocs => LinuxDocsRoot() is not null,
        _ => builtIn == Synthetic,
    };

    /// <summary>Debian's linux-doc folder (the newest, when several are installed), or null.</summary>
    static string? LinuxDocsRoot() =>
        Directory.Exists("/usr/share/doc") ? Directory.GetDirectories("/usr/share/doc", "linux-doc*").OrderDescending().FirstOrDefault() : null;

    /// <summary>reStructuredText files under a folder, plain or gzipped (Debian ships them as .rst.gz).</summary>
    public static List<string> RstFiles(string root) =>
        Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".rst", StringComparison.Ordinal) || f.EndsWith(".rst.gz", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToList();

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads a file as UTF-8 text; binary (NUL bytes), invalid UTF-8, empty or unreadable files are errors.</summary>
    public static string ReadUtf8(string path)
    {
        byte[] bytes;
        try { bytes = path.EndsWith(".gz", StringComparison.Ordinal) ? Gunzip(path) : File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        { throw new CorpusException($"corpus file '{path}' cannot be read: {e.Message}"); }
        if (bytes.Length == 0) throw new CorpusException($"corpus file '{path}' is empty");
        if (Array.IndexOf(bytes, (byte)0) >= 0) throw new CorpusException($"corpus file '{path}' looks binary (contains NUL bytes); MoTLab trains on UTF-8 text");
        try { return StrictUtf8.GetString(bytes).TrimStart('\uFEFF'); }
        catch (DecoderFallbackException e)
        { throw new CorpusException($"corpus file '{path}' is not valid UTF-8 (bad byte at offset {e.Index})"); }
    }

    static byte[] Gunzip(string path)
    {
        using var input = new System.IO.Compression.GZipStream(File.OpenRead(path), System.IO.Compression.CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }

    static string Fingerprint(string kind, IEnumerable<string> files)
    {
        var sb = new StringBuilder(kind);
        foreach (var f in files) { var info = new FileInfo(f); sb.Append('|').Append(f).Append(':').Append(info.Length).Append(':').Append(info.LastWriteTimeUtc.Ticks); }
        return $"{kind}-{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16].ToLowerInvariant()}";
    }
}

public sealed class CorpusException(string message) : Exception(message);
