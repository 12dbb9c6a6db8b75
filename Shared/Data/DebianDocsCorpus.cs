using System.Security.Cryptography;
using System.Text;
using AngleSharp.Dom;
using AngleSharp.Html.Parser;

namespace MoTLab.Shared.Data;

/// <summary>The built-in <c>debian-docs</c> corpus: English prose from Debian's documentation packages, one document
/// per file, in a fixed order (source by source, files by name), exact duplicates and pages under 200 characters
/// left out. The sources (docs/corpora.md has their sizes):
/// <list type="bullet">
/// <item>linux-doc: the kernel's Documentation/ (.rst, .rst.gz): subsystems, APIs, admin guides;</item>
/// <item>python3-doc: the Python manual's reST sources (html/_sources/*.txt): tutorial, library reference, HOWTOs;</item>
/// <item>perl-doc: Perl's pods (/usr/share/perl/5.*/pod/*.pod): the language reference and FAQs;</item>
/// <item>postgresql-doc: PostgreSQL's manual, HTML pages read as their visible text (AngleSharp's parser).</item>
/// </list>
/// The same text that docs/training-parity.md trains on.</summary>
public static class DebianDocsCorpus
{
    /// <summary>One package's documents: where they lie once installed, which files are documents.</summary>
    public sealed record Source(string Name, string Package, string? Root, IReadOnlyList<string> Endings);

    /// <summary>The four sources on this machine (Root null where the package is not installed; the newest version when several are).</summary>
    public static IReadOnlyList<Source> Sources() =>
    [
        new("linux", "linux-doc", Newest("/usr/share/doc", "linux-doc-*", "Documentation"), [".rst", ".rst.gz"]),
        new("python", "python3-doc", Newest("/usr/share/doc", "python3.*", "html/_sources"), [".txt"]),
        new("perl", "perl-doc", Newest("/usr/share/perl", "5.*", "pod"), [".pod"]),
        new("postgresql", "postgresql-doc", Newest("/usr/share/doc", "postgresql-doc-*", "html"), [".html"]),
    ];

    static string? Newest(string parent, string pattern, string below) =>
        Directory.Exists(parent)
            ? Directory.GetDirectories(parent, pattern).Select(d => Path.Combine(d, below)).Where(Directory.Exists)
                .OrderByDescending(d => d, StringComparer.Ordinal).FirstOrDefault()
            : null;

    /// <summary>Null when every source is installed, else the command that installs the missing ones.</summary>
    public static string? Missing(IReadOnlyList<Source> sources) =>
        sources.Where(s => s.Root is null).Select(s => s.Package).ToList() is { Count: > 0 } missing
            ? $"Debian's documentation packages are missing: apt-get install {string.Join(' ', missing)}"
            : null;

    /// <summary>The document files of every source, in corpus order.</summary>
    public static List<string> Files(IReadOnlyList<Source> sources) =>
        sources.Where(s => s.Root is not null).SelectMany(s => Directory.EnumerateFiles(s.Root!, "*", SearchOption.AllDirectories)
            .Where(f => s.Endings.Any(e => f.EndsWith(e, StringComparison.Ordinal))).Order(StringComparer.Ordinal)).ToList();

    /// <summary>The documents of <paramref name="files"/>: each file's text, lines right-trimmed, under 200 characters
    /// or seen before (the same text, by SHA-256) left out.</summary>
    public static IEnumerable<string> Documents(IReadOnlyList<string> files)
    {
        var seen = new HashSet<string>();
        foreach (var file in files)
        {
            var text = Text(file);
            if (text.Length < 200 || text.Contains('\0') || !seen.Add(Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text))))) continue;
            yield return text;
        }
    }

    static readonly HtmlParser Html = new();
    static readonly HashSet<string> Blocks = ["P", "DIV", "PRE", "H1", "H2", "H3", "H4", "LI", "TR", "DT", "DD", "BR", "TABLE", "UL", "OL", "DL"];

    /// <summary>A document file as plain text (undecodable bytes dropped; HTML as its visible text).</summary>
    public static string Text(string file)
    {
        using var stream = CorpusFiles.OpenRead(file, realRoots: null);            // regular files only, as every corpus
        using var input = CorpusFiles.Decompressed(stream, file);
        var text = new StreamReader(input, new UTF8Encoding(false, false)).ReadToEnd().Replace("\uFFFD", "").Replace("\r", "");
        if (file.EndsWith(".html", StringComparison.Ordinal)) text = Visible(Html.ParseDocument(text).Body);
        return string.Join('\n', text.Split('\n').Select(l => l.TrimEnd())).Trim('\n') + "\n";
    }

    /// <summary>The text a reader sees: scripts and styles left out, a line break after each block.</summary>
    static string Visible(IElement? body)
    {
        var sb = new StringBuilder();
        void Walk(INode node)
        {
            foreach (var child in node.ChildNodes)
                switch (child)
                {
                    case IText t: sb.Append(t.Data); break;
                    case IElement e when e.TagName is "SCRIPT" or "STYLE": break;
                    case IElement e:
                        Walk(e);
                        if (Blocks.Contains(e.TagName)) sb.Append('\n');
                        break;
                }
        }
        if (body is not null) Walk(body);
        return sb.ToString();
    }
}
