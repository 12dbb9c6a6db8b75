using MoTLab.Shared;
using Microsoft.Extensions.Options;
using MoTLab.Shared.Config;
using MoTLab.Shared.Data;

namespace MoTLab.WebApp.Runs;

/// <summary>Which corpora a run may use: the built-in ones, and files or folders that resolve (links followed) inside a
/// configured data root or the uploads folder; and what each holds: format, size, and its token stores (tokens per
/// tokenizer, prepared or being prepared) in the dashboard's cache, which its workers share.</summary>
public sealed class CorpusCatalog(IOptions<MoTLabOptions> options)
{
    /// <summary>One corpus as the Corpora page, the New-run form and <c>GET /api/corpora</c> show it.</summary>
    /// <param name="Kind">"builtin", "file", "folder" (under a data root) or "upload".</param>
    /// <param name="Problem">Why it cannot be read (a missing package, a bad file), or null.</param>
    public sealed record CorpusInfo(string Name, string Kind, string Description, bool Available, string? Format = null, long? Bytes = null,
        int? Files = null, string? Problem = null, IReadOnlyList<StoreInfo>? Stores = null);

    /// <summary>One token store of a corpus: finished (its counts) or being prepared (its progress).</summary>
    public sealed record StoreInfo(string Tokenizer, string Split, double HeldOut, TokenStoreManifest? Prepared, PrepareState? Preparing, bool Live);

    public IReadOnlyList<string> Roots =>
        [.. options.Value.DataRoots.Select(Path.GetFullPath), options.Value.UploadsPath];

    string Cache => options.Value.CachePath;

    /// <summary>Every corpus, each with what it holds (<paramref name="details"/>: format, size and stores, which opens it).</summary>
    public IReadOnlyList<CorpusInfo> List(bool details = false)
    {
        var list = new List<CorpusInfo>
        {
            new(Corpus.Synthetic, "builtin", "Synthetic multi-task text: arithmetic, brackets, reversal, lookup, sorting, prose", Corpus.IsAvailable(Corpus.Synthetic)),
            new(Corpus.DotnetDocs, "builtin", "English prose from the .NET SDK's reference-pack XML docs", Corpus.IsAvailable(Corpus.DotnetDocs)),
            new(Corpus.LinuxDocs, "builtin", "Linux kernel documentation (.rst) from Debian's linux-doc package", Corpus.IsAvailable(Corpus.LinuxDocs)),
            new(Corpus.DebianDocs, "builtin", DebianDocsCorpus.Missing(DebianDocsCorpus.Sources()) is { } missing ? $"English prose from Debian's documentation packages ({missing})"
                : "English prose from Debian's documentation packages: the Linux kernel, Python, Perl and PostgreSQL manuals (~52 MB)", Corpus.IsAvailable(Corpus.DebianDocs)),
        };
        foreach (var root in Roots.Where(Directory.Exists))
            foreach (var entry in Directory.EnumerateFileSystemEntries(root).Where(e => !e.EndsWith(".part", StringComparison.Ordinal)).Order().Take(200))   // not an upload in flight
                list.Add(new(entry, root == options.Value.UploadsPath ? "upload" : Directory.Exists(entry) ? "folder" : "file", Path.GetFileName(entry), true));
        return details ? list.Select(Describe).ToList() : list;
    }

    /// <summary>The corpus named <paramref name="name"/> with what it holds, or null when the catalog has no such corpus.</summary>
    public CorpusInfo? Find(string name) => List().FirstOrDefault(c => c.Name == name) is { } c ? Describe(c) : null;

    /// <summary>Opens the corpus to tell its format, size and stores; a corpus that cannot be read says why.</summary>
    CorpusInfo Describe(CorpusInfo c)
    {
        if (!c.Available && c.Kind == "builtin") return c with { Problem = Problem(c.Name) };
        try
        {
            var corpus = Corpus.Open(c.Name, Roots);
            var stores = TokenStore.Of(Cache, corpus.Identity).Select(e => new StoreInfo(e.Tokenizer, e.Split, e.HeldOut, e.Manifest, e.Preparing, e.Preparing?.Live() == true)).ToList();
            return c with { Format = corpus.Format, Bytes = corpus.SourceBytes, Files = corpus.Files.Count, Stores = stores };
        }
        catch (Exception e) when (e is CorpusException or IOException or UnauthorizedAccessException) { return c with { Problem = e.Message }; }
    }

    static string? Problem(string builtIn)
    {
        try { Corpus.Open(builtIn); return null; }
        catch (CorpusException e) { return e.Message; }
    }

    /// <summary>The first documents of a corpus, each cut to <paramref name="chars"/> characters (none for a pre-tokenized one).</summary>
    public IReadOnlyList<string> Preview(string name, int count = 3, int chars = 600)
    {
        var corpus = Corpus.Open(name, Roots);
        if (corpus.Pretokenized is not null) return [];
        var documents = corpus.Format == "text" ? corpus.Files.Take(count).Select(f => Corpus.Head(f, chars + 1, Roots)) : corpus.Documents().Take(count);   // a text file's head, not the whole file
        return documents.Select(d => d.Length <= chars ? d : d[..chars] + " …").ToList();
    }

    /// <summary>The training tokens of <paramref name="data"/>'s corpus with its tokenizer: counted when a store of that
    /// tokenizer exists (null <c>Estimated</c>), else estimated from the size of a plain-text corpus, else unknown.</summary>
    public (long? Tokens, bool Estimated) TrainTokens(DataConfig data)
    {
        try
        {
            var corpus = Corpus.Open(data.Corpus, Roots, data.TextField);
            var stores = TokenStore.Of(Cache, corpus.Identity).Where(e => e.Tokenizer == data.Tokenizer && e.Manifest is not null).ToList();
            var best = stores.FirstOrDefault(e => e.Split == TokenStore.SplitOf(corpus, data.Split) && e.HeldOut == data.ValFraction) ?? stores.FirstOrDefault();
            if (best?.Manifest is { } m) return (m.TrainTokens, false);
            if (corpus.Format != "text" || corpus.SourceBytes == 0 || corpus.Files.Any(f => f.EndsWith(".gz", StringComparison.Ordinal))) return (null, true);
            // UTF-8 bytes per token: 1 for bytes; about 3 for GPT-2 on English prose (debian-docs: 52.0 MB, 17.6 M tokens)
            double perToken = data.Tokenizer == Vocabularies.Byte ? 1 : 3;
            return ((long)(corpus.SourceBytes * (1 - data.ValFraction) / perToken), true);
        }
        catch (Exception e) when (e is CorpusException or IOException or UnauthorizedAccessException) { return (null, true); }
    }

    /// <summary>Deletes a corpus's token stores, and an uploaded corpus's file; a store being prepared is kept (null
    /// when done, else why not).</summary>
    public string? Delete(string name)
    {
        if (Find(name) is not { } c) return $"no corpus '{name}'";
        if (c.Stores?.Any(s => s.Live) == true) return $"corpus '{name}' is being prepared; delete it once that has ended";
        var corpus = c.Problem is null ? Corpus.Open(name, Roots) : null;
        var stores = corpus is null ? [] : TokenStore.Of(Cache, corpus.Identity).ToList();
        // a preparation holds its partial folder's lock from its start (before it writes any state): such a store stays
        if (stores.Any(e => Held(e.Folder + TokenStore.Partial))) return $"corpus '{name}' is being prepared; delete it once that has ended";
        foreach (var e in stores)
        {
            if (Directory.Exists(e.Folder)) Directory.Delete(e.Folder, recursive: true);
            if (Directory.Exists(e.Folder + TokenStore.Partial)) Directory.Delete(e.Folder + TokenStore.Partial, recursive: true);
        }
        if (c.Kind == "upload") File.Delete(name);
        return null;
    }

    /// <summary>Whether a process holds the lock of the partial store folder <paramref name="partial"/>.</summary>
    static bool Held(string partial)
    {
        var file = Path.Combine(partial, TokenStore.LockFile);
        if (!File.Exists(file)) return false;
        try { using var _ = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.None); return false; }
        catch (IOException) { return true; }
    }

    /// <summary>Null when the corpus may be used, else the reason. The worker checks every file again where it opens
    /// it (the file may be swapped between now and then).</summary>
    public string? Check(string corpus)
    {
        if (Corpus.BuiltIn.Contains(corpus)) return null;
        if (!Path.IsPathRooted(corpus)) return $"'{corpus}' is not a built-in corpus ({string.Join(", ", Corpus.BuiltIn)}) nor an absolute path inside a data root";
        var full = DataRoots.Resolve(corpus);
        if (!DataRoots.Contains(DataRoots.ResolveAll(Roots), full))
            return $"'{corpus}' is outside the data roots ({string.Join(", ", Roots)})";
        if (!File.Exists(full) && !Directory.Exists(full)) return $"'{corpus}' does not exist";
        try { Corpus.Open(corpus, Roots); }
        catch (CorpusException e) { return e.Message; }
        return null;
    }
}
