using MoTLab.Shared.Config;
using MoTLab.Training.Data;
using MoTLab.Shared.Data;

namespace MoTLab.Training.Tests;

public class DataTests
{
    [Theory]
    [InlineData("byte")]
    [InlineData("gpt2")]
    public void Tokenizers_round_trip(string name)
    {
        var tok = Tokenizers.Create(name);
        foreach (var text in new[] { "Hello, world!\n", "Mixture of Tokens: 12+35=47 ([{}])", "naïve café — ünïcødé ✓ 日本語", "" })
            Assert.Equal(text, tok.Decode(tok.Encode(text)));
        Assert.Equal(name == "byte" ? 256 : 50257, tok.VocabSize);
    }

    [Fact]
    public void Gpt2_matches_known_ids()
    {
        Assert.Equal(new[] { 15496, 11, 995 }, new Gpt2Tokenizer().Encode("Hello, world"));
    }

    [Fact]
    public void Synthetic_corpus_is_deterministic_and_has_distinct_tasks()
    {
        var a = SyntheticCorpus.Documents(600).ToList();
        Assert.Equal(a, SyntheticCorpus.Documents(600).ToList());
        Assert.Contains(a, d => d.Contains('='));
        Assert.Contains(a, d => d.StartsWith("brackets "));
        Assert.Contains(a, d => d.StartsWith("reverse "));
        Assert.Contains(a, d => d.Contains(" ? k"));
        Assert.Contains(a, d => d.StartsWith("sort "));
        Assert.Contains(a, d => d.StartsWith("The "));
        var rev = a.First(d => d.StartsWith("reverse ")).Trim().Split(' ');
        Assert.Equal(new string(rev[1].Reverse().ToArray()), rev[3]);
    }

    [Fact]
    public void Dotnet_docs_corpus_holds_each_text_once_so_its_held_out_tail_is_not_training_text()
    {
        var files = DotnetDocsCorpus.Files();
        var raw = files.SelectMany(DotnetDocsCorpus.Extract).ToList();
        var docs = DotnetDocsCorpus.Documents(files).ToList();
        Assert.True(docs.Count < raw.Count * 0.8, $"{raw.Count} member texts, {docs.Count} distinct: the packs repeat less than expected");
        Assert.Equal(docs.Count, docs.Distinct(StringComparer.Ordinal).Count());
        // the held-out split is the corpus's tail; before, all of it was text from earlier files (the ASP.NET pack ships
        // copies of the runtime's docs), so eval loss measured recall
        int cut = (int)(docs.Count * 0.95);
        var head = docs[..cut].ToHashSet(StringComparer.Ordinal);
        Assert.DoesNotContain(docs[cut..], head.Contains);
        Assert.True(raw.Skip(raw.Count * 95 / 100).Count(head.Contains) > 0);
    }

    [Fact]
    public void Dotnet_docs_corpus_yields_english_prose_with_cross_references_named()
    {
        var files = DotnetDocsCorpus.Files();
        Assert.NotEmpty(files);
        var docs = DotnetDocsCorpus.Extract(files.First(f => f.EndsWith("System.Runtime.xml"))).Take(2000).ToList();
        Assert.True(docs.Count > 500);
        Assert.Contains(docs, d => d.StartsWith("Represents "));
        Assert.Contains(docs, d => d.Contains(" String"));
        Assert.DoesNotContain(docs, d => d.Contains("<see") || d.Contains("T:System."));
    }

    [Fact]
    public void Bad_corpora_get_clear_errors()
    {
        using var dir = new TestUtil.TempDir();
        string Write(string name, byte[] bytes) { var p = Path.Combine(dir.Path, name); File.WriteAllBytes(p, bytes); return p; }
        var empty = Write("empty.txt", []);
        var binary = Write("blob.bin", [1, 2, 0, 3]);
        var latin1 = Write("latin1.txt", [0x63, 0x61, 0x66, 0xE9, 0x20, 0x6F, 0x6B]);
        Assert.Contains("is empty", Assert.Throws<CorpusException>(() => Corpus.Open(empty).Documents().ToList()).Message);
        Assert.Contains("looks binary", Assert.Throws<CorpusException>(() => Corpus.Open(binary).Documents().ToList()).Message);
        Assert.Contains("not valid UTF-8", Assert.Throws<CorpusException>(() => Corpus.Open(latin1).Documents().ToList()).Message);
        Assert.Contains("neither a built-in corpus", Assert.Throws<CorpusException>(() => Corpus.Open(Path.Combine(dir.Path, "missing"))).Message);
        var small = Write("small.txt", "tiny text"u8.ToArray());
        var store = TokenStoreWriter.Prepare(Corpus.Open(small), new ByteTokenizer(), DataSplits.Documents, 0.05, dir.Path);
        var e = Assert.Throws<CorpusException>(() => TokenDataset.Open(store, 64, 1, small, 256));
        Assert.Contains("too few for one sequence of 64 tokens", e.Message);
    }

    [Fact]
    public void A_token_store_is_reused_and_follows_file_changes()
    {
        using var dir = new TestUtil.TempDir();
        var file = Path.Combine(dir.Path, "a.txt");
        File.WriteAllText(file, "abcdefghijklmnopqrst");
        var first = TokenStoreWriter.Prepare(Corpus.Open(file), new ByteTokenizer(), DataSplits.Documents, 0.1, dir.Path);
        Assert.EndsWith(".tail-0.1", first);                                     // one document: held out by its tail
        Assert.Equal("abcdefghijklmnopqr"u8.ToArray().Select(b => (ushort)b), TestUtil.Ids(first, TokenStore.TrainFile));
        Assert.Equal("st"u8.ToArray().Select(b => (ushort)b), TestUtil.Ids(first, TokenStore.ValFile));
        var written = File.GetLastWriteTimeUtc(Path.Combine(first, TokenStore.TrainFile));
        Assert.Equal(first, TokenStoreWriter.Prepare(Corpus.Open(file), new ByteTokenizer(), DataSplits.Documents, 0.1, dir.Path));
        Assert.Equal(written, File.GetLastWriteTimeUtc(Path.Combine(first, TokenStore.TrainFile)));   // reused, not written again
        File.WriteAllText(file, "abcdefghijklmnopqrstuvwxyz0123456789");
        File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddMinutes(1));
        var second = TokenStoreWriter.Prepare(Corpus.Open(file), new ByteTokenizer(), DataSplits.Documents, 0.1, dir.Path);
        Assert.NotEqual(first, second);
        Assert.Equal(36, TokenStore.Manifest(second)!.TrainTokens + TokenStore.Manifest(second)!.ValTokens);
    }

    [Fact]
    public void Batches_are_a_function_of_seed_and_step()
    {
        var tokens = Enumerable.Range(0, 5000).Select(i => (ushort)(i % 200)).ToArray();
        using var a = TokenDataset.InMemory(tokens, 16, 0.1, 7); using var b = TokenDataset.InMemory(tokens, 16, 0.1, 7);
        var (x1, y1) = a.TrainBatch(42, 4, TorchSharp.torch.CPU);
        var (x2, _) = b.TrainBatch(42, 4, TorchSharp.torch.CPU);
        Assert.True(x1.eq(x2).all().item<bool>());
        Assert.True(x1[.., 1..].eq(y1[.., ..^1]).all().item<bool>(), "targets are inputs shifted by one");
        var (x3, _) = a.TrainBatch(43, 4, TorchSharp.torch.CPU);
        Assert.False(x1.eq(x3).all().item<bool>());
    }
}

public class RstCorpusTests
{
    [Fact]
    public void Gzipped_and_plain_rst_files_are_read_as_text()
    {
        using var dir = new TestUtil.TempDir();
        var sub = Directory.CreateDirectory(Path.Combine(dir.Path, "Documentation", "PCI")).FullName;
        File.WriteAllText(Path.Combine(sub, "plain.rst"), "Plain text\n==========\n");
        using (var gz = new System.IO.Compression.GZipStream(File.Create(Path.Combine(sub, "packed.rst.gz")), System.IO.Compression.CompressionLevel.Fastest))
            gz.Write("Packed text about the PCI bus.\n"u8);
        File.WriteAllText(Path.Combine(sub, "notes.txt"), "not rst");
        var files = Corpus.RstFiles(dir.Path);
        Assert.Equal(2, files.Count);
        Assert.Equal("Packed text about the PCI bus.\n", Corpus.ReadUtf8(files.Single(f => f.EndsWith(".gz"))));
    }
}
