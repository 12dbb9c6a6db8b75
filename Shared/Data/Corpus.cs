using System.Security.Cryptography;
using System.Text;

namespace MoTLab.Shared.Data;

/// <summary>A source of text: a built-in corpus, a UTF-8 file / folder (plain text, JSON Lines, Parquet), or a folder of
/// nanoGPT-style pre-tokenized <c>train.bin</c>/<c>val.bin</c>. <see cref="Identity"/> changes whenever the content
/// may have changed (file sizes and times), so token stores stay valid.</summary>
public sealed class Corpus
{
    public const string Synthetic = "synthetic", DotnetDocs = "dotnet-docs", LinuxDocs = "linux-docs", DebianDocs = "debian-docs";
    public static readonly string[] BuiltIn = [Synthetic, DotnetDocs, LinuxDocs, DebianDocs];

    public string Name { get; }
    public string Identity { get; }
    /// <summary>"built-in", or the formats of its files: "text", "jsonl", "parquet", "tokens" (pre-tokenized).</summary>
    public string Format { get; }
    /// <summary>The files it is read from, in corpus order (none for the synthetic corpus).</summary>
    public IReadOnlyList<string> Files { get; }
    /// <summary>The files' total size on disk.</summary>
    public long SourceBytes { get; }
    /// <summary>One plain-text file: one document, so its held-out share is its tail whatever data.split says.</summary>
    public bool OneDocument { get; }
    /// <summary>The folder of a pre-tokenized corpus (GPT-2 ids as uint16 in train.bin and val.bin), used as it is.</summary>
    public string? Pretokenized { get; }
    private readonly Func<IEnumerable<string>> documents;

    Corpus(string name, string identity, string format, IReadOnlyList<string> files, Func<IEnumerable<string>> documents, string? pretokenized = null)
    {
        Name = name; Identity = identity; Format = format; Files = files; this.documents = documents; Pretokenized = pretokenized;
        SourceBytes = files.Sum(f => new FileInfo(f).Length);
        OneDocument = files.Count == 1 && FormatOf(files[0]) == "text";
    }

    public IEnumerable<string> Documents() => Pretokenized is null ? documents()
        : throw new CorpusException($"corpus '{Name}' is pre-tokenized (train.bin and val.bin): it has no text to read");

    /// <summary>How a corpus file is read, by its name.</summary>
    public static string FormatOf(string path) =>
        JsonLinesCorpus.Is(path) ? "jsonl" : ParquetCorpus.Is(path) ? "parquet" : "text";

    /// <summary>Resolves data.corpus. Throws <see cref="CorpusException"/> with a message naming the problem.</summary>
    /// <param name="roots">The dashboard's data roots: every file of a file or folder corpus must resolve inside one
    /// (null on the command line, where the user names their own files). Built-in corpora are always allowed.</param>
    /// <param name="textField">The text's field in JSON Lines files (data.text_field).</param>
    public static Corpus Open(string spec, IReadOnlyList<string>? roots = null, string textField = "text")
    {
        switch (spec)
        {
            case Synthetic:
                return new Corpus(spec, "synthetic-v1", "built-in", [], () => SyntheticCorpus.Documents());
            case DotnetDocs:
            {
                var files = DotnetDocsCorpus.Files();
                if (files.Count == 0) throw new CorpusException($"corpus '{spec}': no reference-pack XML docs found under {DotnetDocsCorpus.Root()}/packs");
                return new Corpus(spec, Fingerprint("dotnet-docs-v2", files), "built-in", files, () => DotnetDocsCorpus.Documents(files));
            }
            case LinuxDocs:
            {
                var root = LinuxDocsRoot();
                if (root is null) throw new CorpusException($"corpus '{spec}': Debian's linux-doc package is not installed (apt-get install linux-doc-6.1)");
                var files = RstFiles(root);
                if (files.Count == 0) throw new CorpusException($"corpus '{spec}': no .rst or .rst.gz files under {root}");
                return new Corpus(spec, Fingerprint("linux-docs-v1", files), "built-in", files, () => files.Select(f => ReadUtf8(f)));
            }
            case DebianDocs:
            {
                var sources = DebianDocsCorpus.Sources();
                if (DebianDocsCorpus.Missing(sources) is { } missing) throw new CorpusException($"corpus '{spec}': {missing}");
                var files = DebianDocsCorpus.Files(sources);
                return new Corpus(spec, Fingerprint("debian-docs-v1", files), "built-in", files, () => DebianDocsCorpus.Documents(files));
            }
        }
        var path = Path.GetFullPath(spec);
        roots = roots is null ? null : DataRoots.ResolveAll(roots);       // once, for every file's check
        if (PretokenizedFolder(path) is { } bins)
        {
            List<string> pair = [Path.Combine(bins, "train.bin"), Path.Combine(bins, "val.bin")];
            foreach (var f in pair) CorpusFiles.Check(f, roots);
            return new Corpus(spec, Fingerprint("tokens", pair), "tokens", pair, () => [], pretokenized: bins);
        }
        if (File.Exists(path))
        {
            CorpusFiles.Check(path, roots);
            var format = FormatOf(path);
            return new Corpus(spec, format == "text" ? Fingerprint("file", [path]) : Fingerprint(format, [path], textField), format, [path], () => Read(path, roots, textField));
        }
        if (Directory.Exists(path))
        {
            CorpusFiles.Check(path, roots);
            var files = Directory.GetFiles(path, "*", SearchOption.AllDirectories)
                .Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal).ToList();
            if (files.Count == 0) throw new CorpusException($"corpus folder '{spec}' contains no files");
            foreach (var f in files) CorpusFiles.Check(f, roots);        // a link out of the roots, or a FIFO, anywhere in it
            var formats = files.Select(FormatOf).Distinct().Order(StringComparer.Ordinal).ToList();
            return new Corpus(spec, Fingerprint("folder", files, formats.Any(f => f != "text") ? textField : null), string.Join(", ", formats), files,
                () => files.SelectMany(f => Read(f, roots, textField)));
        }
        throw new CorpusException($"corpus '{spec}' is neither a built-in corpus ({string.Join(", ", BuiltIn)}) nor an existing file or folder");
    }

    /// <summary>A file's documents: a JSON Lines shard's, one a line; a Parquet file's, one a row; any other file is one document.</summary>
    static IEnumerable<string> Read(string path, IReadOnlyList<string>? roots, string textField) => FormatOf(path) switch
    {
        "jsonl" => JsonLinesCorpus.Documents(path, textField, roots),
        "parquet" => ParquetCorpus.Documents(path, textField, roots),
        _ => [ReadUtf8(path, roots)],
    };

    /// <summary>The folder of a nanoGPT-style pre-tokenized corpus: <paramref name="path"/> names it or its train.bin,
    /// and it holds both train.bin and val.bin. Null when the path is no such thing.</summary>
    static string? PretokenizedFolder(string path)
    {
        var folder = Path.GetFileName(path) == "train.bin" && File.Exists(path) ? Path.GetDirectoryName(path)! : path;
        return Directory.Exists(folder) && File.Exists(Path.Combine(folder, "train.bin")) && File.Exists(Path.Combine(folder, "val.bin")) ? folder : null;
    }

    /// <summary>Whether a built-in corpus can be read on this machine (its source files are installed).</summary>
    public static bool IsAvailable(string builtIn) => builtIn switch
    {
        DotnetDocs => DotnetDocsCorpus.Files().Count > 0,
        LinuxDocs => LinuxDocsRoot() is not null,
        DebianDocs => DebianDocsCorpus.Missing(DebianDocsCorpus.Sources()) is null,
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

    /// <summary>Reads a file as UTF-8 text; binary (NUL bytes), invalid UTF-8, empty or unreadable files are errors, and
    /// so is anything but a regular file, or (given <paramref name="realRoots"/>, resolved) a file whose real path is outside them.</summary>
    public static string ReadUtf8(string path, IReadOnlyList<string>? realRoots = null)
    {
        byte[] bytes;
        try
        {
            using var file = CorpusFiles.OpenRead(path, realRoots);
            using var input = CorpusFiles.Decompressed(file, path);
            using var buffer = new MemoryStream();
            input.CopyTo(buffer);
            bytes = buffer.ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        { throw new CorpusException($"corpus file '{path}' cannot be read: {e.Message}"); }
        if (bytes.Length == 0) throw new CorpusException($"corpus file '{path}' is empty");
        if (Array.IndexOf(bytes, (byte)0) >= 0) throw new CorpusException($"corpus file '{path}' looks binary (contains NUL bytes); MoTLab trains on UTF-8 text");
        try { return StrictUtf8.GetString(bytes).TrimStart('\uFEFF'); }
        catch (DecoderFallbackException e)
        { throw new CorpusException($"corpus file '{path}' is not valid UTF-8 (bad byte at offset {e.Index})"); }
    }

    /// <summary>The first <paramref name="chars"/> characters of a text file (gzipped or not), for a preview: the file is
    /// not read further, and bytes that are not UTF-8 show as U+FFFD.</summary>
    public static string Head(string path, int chars, IReadOnlyList<string>? roots = null)
    {
        try
        {
            using var file = CorpusFiles.OpenRead(path, roots is null ? null : DataRoots.ResolveAll(roots));
            using var input = CorpusFiles.Decompressed(file, path);
            using var reader = new StreamReader(input, new UTF8Encoding(false, false));
            var buffer = new char[chars];
            return new string(buffer, 0, reader.ReadBlock(buffer, 0, chars));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        { throw new CorpusException($"corpus file '{path}' cannot be read: {e.Message}"); }
    }

    /// <summary>The corpus identity (it names the token cache file): <paramref name="kind"/> and a hash of the files' names,
    /// sizes and times, and of the JSON Lines text field when there is one (hashed: a field name is no file name).</summary>
    static string Fingerprint(string kind, IEnumerable<string> files, string? textField = null)
    {
        var sb = new StringBuilder(kind);
        if (textField is not null) sb.Append("|text_field:").Append(textField);
        foreach (var f in files) { var info = new FileInfo(f); sb.Append('|').Append(f).Append(':').Append(info.Length).Append(':').Append(info.LastWriteTimeUtc.Ticks); }
        return $"{kind}-{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16].ToLowerInvariant()}";
    }
}

public sealed class CorpusException(string message) : Exception(message);
