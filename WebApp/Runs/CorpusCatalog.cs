using MoTLab.Shared;
using Microsoft.Extensions.Options;
using MoTLab.Shared.Data;

namespace MoTLab.WebApp.Runs;

/// <summary>Which corpora a run may use: the built-in ones, and files or folders that resolve (links
/// followed) inside a configured data root or the uploads folder.</summary>
public sealed class CorpusCatalog(IOptions<MoTLabOptions> options)
{
    public sealed record CorpusInfo(string Name, string Kind, string Description, bool Available);

    public IReadOnlyList<string> Roots =>
        [.. options.Value.DataRoots.Select(Path.GetFullPath), options.Value.UploadsPath];

    public IReadOnlyList<CorpusInfo> List()
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
            foreach (var entry in Directory.EnumerateFileSystemEntries(root).Order().Take(200))
                list.Add(new(entry, Directory.Exists(entry) ? "folder" : "file", Path.GetFileName(entry), true));
        return list;
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
