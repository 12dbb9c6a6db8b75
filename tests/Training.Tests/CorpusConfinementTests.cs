using System.Diagnostics;
using MoTLab.Shared.Data;

namespace MoTLab.Training.Tests;

/// <summary>A dashboard's corpus may only be read from regular files whose real path lies in its data roots: a link
/// inside a root that points out of it, a linked sub-folder, a FIFO, and a file swapped for a link after it was
/// accepted are all refused, by name, where the file is opened.</summary>
public sealed class CorpusConfinementTests : IDisposable
{
    readonly string top = Directory.CreateTempSubdirectory("motlab-roots").FullName;
    string Root => Path.Combine(top, "root");
    string Outside => Path.Combine(top, "outside");
    IReadOnlyList<string> Roots => [Root];
    const string Text = "Mixture of Tokens mixes tokens of different examples at one position. ";

    public CorpusConfinementTests()
    {
        Directory.CreateDirectory(Path.Combine(Root, "dir"));
        Directory.CreateDirectory(Outside);
        File.WriteAllText(Path.Combine(Root, "dir", "ok.txt"), string.Concat(Enumerable.Repeat(Text, 50)));
        File.WriteAllText(Path.Combine(Outside, "secret.txt"), "the password is hunter2");
    }

    public void Dispose() { try { Directory.Delete(top, true); } catch (IOException) { } }

    static void MkFifo(string path)
    {
        using var p = Process.Start("mkfifo", [path])!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public void A_plain_folder_inside_the_roots_opens_and_reads()
    {
        var corpus = Corpus.Open(Path.Combine(Root, "dir"), Roots);
        Assert.StartsWith("Mixture of Tokens", corpus.Documents().Single());
    }

    [Fact]
    public void A_link_inside_a_folder_that_points_out_of_the_roots_is_refused_by_name()
    {
        File.CreateSymbolicLink(Path.Combine(Root, "dir", "leak.txt"), Path.Combine(Outside, "secret.txt"));
        var e = Assert.Throws<CorpusException>(() => Corpus.Open(Path.Combine(Root, "dir"), Roots));
        Assert.Contains("leak.txt", e.Message);
        Assert.Contains("outside the data roots", e.Message);
    }

    [Fact]
    public void A_linked_sub_folder_that_leads_out_of_the_roots_is_refused()
    {
        Directory.CreateSymbolicLink(Path.Combine(Root, "dir", "linked"), Outside);
        var e = Assert.Throws<CorpusException>(() => Corpus.Open(Path.Combine(Root, "dir"), Roots));
        Assert.Contains("outside the data roots", e.Message);
    }

    [Fact]
    public void A_fifo_is_refused_as_not_a_regular_file_without_blocking()
    {
        var fifo = Path.Combine(Root, "pipe.txt");
        MkFifo(fifo);
        var e = Assert.Throws<CorpusException>(() => Corpus.Open(fifo, Roots));
        Assert.Contains("not a regular file", e.Message);
        var inFolder = Assert.Throws<CorpusException>(() => Corpus.Open(Root, Roots));   // also inside a folder
        Assert.Contains("pipe.txt", inFolder.Message);
        Assert.Throws<CorpusException>(() => Corpus.Open(fifo));                            // and on the command line too
    }

    [Fact]
    public async Task A_file_swapped_for_a_link_or_a_fifo_after_it_was_accepted_is_refused_when_it_is_read()
    {
        var file = Path.Combine(Root, "dir", "ok.txt");
        var corpus = Corpus.Open(file, Roots);                  // accepted: a regular file inside the roots
        File.Delete(file);
        File.CreateSymbolicLink(file, Path.Combine(Outside, "secret.txt"));
        var link = Assert.Throws<CorpusException>(() => corpus.Documents().ToList());
        Assert.Contains("outside the data roots", link.Message);

        File.Delete(file);
        MkFifo(file);
        var read = Task.Run(() => Assert.Throws<CorpusException>(() => corpus.Documents().ToList()));
        Assert.True(await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(20))) == read, "reading a FIFO blocked");
        Assert.Contains("not a regular file", (await read).Message);
    }

    [Fact]
    public void Without_roots_the_command_line_reads_links_the_user_made()
    {
        var link = Path.Combine(Root, "mine.txt");
        File.CreateSymbolicLink(link, Path.Combine(Root, "dir", "ok.txt"));
        Assert.StartsWith("Mixture", Corpus.Open(link).Documents().Single());
        var outside = Path.Combine(Root, "elsewhere.txt");
        File.CreateSymbolicLink(outside, Path.Combine(Outside, "secret.txt"));
        Assert.Throws<CorpusException>(() => Corpus.Open(outside, Roots));
    }
}
