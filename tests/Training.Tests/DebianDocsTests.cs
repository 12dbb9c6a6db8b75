using System.IO.Compression;
using System.Text;
using MoTLab.Shared.Data;

namespace MoTLab.Training.Tests;

/// <summary>The debian-docs corpus: each source's files read as text, HTML as what a reader sees, duplicates and stubs
/// left out, missing packages named with the command that installs them.</summary>
public class DebianDocsTests
{
    static readonly string Prose = string.Concat(Enumerable.Repeat("Sparse layers route tokens to experts. ", 8));

    [Fact]
    public void Documents_come_source_by_source_as_plain_text_without_duplicates_or_stubs()
    {
        var root = Directory.CreateTempSubdirectory("motlab-debian-docs").FullName;
        string Folder(string name) => Directory.CreateDirectory(Path.Combine(root, name)).FullName;
        var linux = Folder("linux"); var python = Folder("python"); var pg = Folder("pg");
        File.WriteAllText(Path.Combine(linux, "a.rst"), "Kernel   \r\n" + Prose + "\n\n");
        using (var gz = new GZipStream(File.Create(Path.Combine(linux, "b.rst.gz")), CompressionLevel.Fastest))
            gz.Write(Encoding.UTF8.GetBytes("Gzipped\n" + Prose));
        File.WriteAllText(Path.Combine(linux, "c.rst"), "too short to be a document");
        File.WriteAllText(Path.Combine(linux, "notes.png"), Prose);                                  // not a document file
        File.WriteAllText(Path.Combine(python, "dup.txt"), "Kernel\n" + Prose);                       // a.rst's text again
        File.WriteAllText(Path.Combine(pg, "page.html"), $"<html><head><style>p {{}}</style><script>var x = 1;</script></head>" +
            $"<body><h1>SELECT &amp; joins</h1><p>{Prose}</p><ul><li>one</li><li>two</li></ul></body></html>");
        var sources = new[]
        {
            new DebianDocsCorpus.Source("linux", "linux-doc", linux, [".rst", ".rst.gz"]),
            new DebianDocsCorpus.Source("python", "python3-doc", python, [".txt"]),
            new DebianDocsCorpus.Source("postgresql", "postgresql-doc", pg, [".html"]),
        };
        Assert.Null(DebianDocsCorpus.Missing(sources));

        var docs = DebianDocsCorpus.Documents(DebianDocsCorpus.Files(sources)).ToList();
        Assert.Equal(3, docs.Count);                                       // c.rst a stub, dup.txt a duplicate, the PNG not a document
        Assert.Equal("Kernel\n" + Prose.TrimEnd() + "\n", docs[0]);          // lines right-trimmed, one final newline
        Assert.StartsWith("Gzipped\n", docs[1]);
        Assert.Equal($"SELECT & joins\n{Prose.TrimEnd()}\none\ntwo\n", docs[2]);   // the visible text, a line per block
    }

    [Fact]
    public void Missing_packages_are_named_with_the_command_that_installs_them()
    {
        var sources = new[]
        {
            new DebianDocsCorpus.Source("linux", "linux-doc", "/tmp", [".rst"]),
            new DebianDocsCorpus.Source("perl", "perl-doc", null, [".pod"]),
            new DebianDocsCorpus.Source("postgresql", "postgresql-doc", null, [".html"]),
        };
        Assert.Equal("Debian's documentation packages are missing: apt-get install perl-doc postgresql-doc", DebianDocsCorpus.Missing(sources));
    }

    [Fact]
    public void The_built_in_corpus_opens_where_the_packages_are_installed_and_says_what_to_install_where_not()
    {
        if (Corpus.IsAvailable(Corpus.DebianDocs))
        {
            var corpus = Corpus.Open(Corpus.DebianDocs);
            Assert.StartsWith("debian-docs-v1-", corpus.Identity);
            Assert.True(corpus.Documents().Take(50).Count() == 50);
        }
        else
        {
            var refused = Assert.Throws<CorpusException>(() => Corpus.Open(Corpus.DebianDocs));
            Assert.Contains("apt-get install", refused.Message);
        }
    }
}
