using System.IO.Compression;
using System.Text;
using System.Text.Json;
using MoTLab.Shared.Config;
using MoTLab.Shared.Data;
using MoTLab.Training.Data;
using MoTLab.Training.Train;
using Parquet;
using Parquet.Schema;

namespace MoTLab.Training.Tests;

/// <summary>The token store: held-out documents, resuming, completeness, wide vocabularies, and the formats it reads
/// (Parquet and nanoGPT's pre-tokenized bins; JSON Lines in <see cref="JsonLinesTests"/>).</summary>
public class TokenStoreTests
{
    /// <summary>Document <paramref name="i"/>: distinct text, with a marker no other document contains.</summary>
    static string Doc(int i) => $"<doc {i:D5}> " + string.Concat(Enumerable.Range(0, 5 + i % 7).Select(j => $"word{(i * 31 + j) % 97} ")) + $"</doc {i:D5}>\n";

    static void Shard(string path, IEnumerable<string> docs)
    {
        using var gz = new GZipStream(File.Create(path), CompressionLevel.Fastest);
        using var w = new StreamWriter(gz);
        foreach (var d in docs) w.WriteLine(JsonSerializer.Serialize(new { text = d }));
    }

    static string Text(string store, string file) => Encoding.UTF8.GetString(TestUtil.Ids(store, file).Select(i => (byte)i).ToArray());

    [Fact]
    public void Whole_documents_are_held_out_from_every_source_and_none_of_them_occurs_in_training()
    {
        using var dir = new TestUtil.TempDir();
        var folder = Directory.CreateDirectory(Path.Combine(dir.Path, "shards")).FullName;
        Shard(Path.Combine(folder, "a.jsonl.gz"), Enumerable.Range(0, 600).Select(Doc));
        Shard(Path.Combine(folder, "b.jsonl.gz"), Enumerable.Range(600, 600).Select(Doc));
        var store = TokenStoreWriter.Prepare(Corpus.Open(folder), new ByteTokenizer(), DataSplits.Documents, 0.1, Path.Combine(dir.Path, "cache"), chunkChars: 10_000);
        var m = TokenStore.Manifest(store)!;
        Assert.Equal((1200, "documents", "uint16"), (m.Documents, m.Split, m.TokenType));
        Assert.Equal(m.Documents, m.TrainDocuments + m.ValDocuments);
        string train = Text(store, TokenStore.TrainFile), val = Text(store, TokenStore.ValFile);
        var held = Enumerable.Range(0, 1200).Where(i => val.Contains($"<doc {i:D5}>")).ToList();
        Assert.Equal(m.ValDocuments, held.Count);
        Assert.InRange(held.Count, 60, 180);                                             // about a tenth
        Assert.Contains(held, i => i < 600); Assert.Contains(held, i => i >= 600);        // from both shards
        Assert.All(held, i => Assert.DoesNotContain($"<doc {i:D5}>", train));
        Assert.All(Enumerable.Range(0, 1200).Except(held), i => Assert.Contains(Doc(i), train));
        Assert.All(held, i => Assert.True(TokenStoreWriter.IsHeldOut(Doc(i), 0.1)));      // a function of the text alone
        Assert.Equal(m.TrainTokens, new FileInfo(Path.Combine(store, TokenStore.TrainFile)).Length / 2);
    }

    [Fact]
    public void A_stopped_preparation_never_looks_complete_and_resumes_to_the_same_store()
    {
        using var dir = new TestUtil.TempDir();
        var file = Path.Combine(dir.Path, "docs.jsonl.gz");
        Shard(file, Enumerable.Range(0, 2000).Select(Doc));
        var corpus = Corpus.Open(file);
        var whole = TokenStoreWriter.Prepare(corpus, new ByteTokenizer(), DataSplits.Documents, 0.05, Path.Combine(dir.Path, "whole"), chunkChars: 5_000);

        var cache = Path.Combine(dir.Path, "stopped");
        using var stop = new CancellationTokenSource();
        int chunks = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => TokenStoreWriter.Prepare(corpus, new ByteTokenizer(), DataSplits.Documents, 0.05, cache, chunkChars: 5_000,
            progress: _ => { if (++chunks == 3) stop.Cancel(); }, cancel: stop.Token));
        var folder = TokenStore.Folder(cache, corpus.Identity, "byte", DataSplits.Documents, 0.05);
        Assert.False(Directory.Exists(folder));                                           // not under the store's name
        Assert.Null(TokenStore.Manifest(folder));
        var state = TokenStore.Preparing(folder)!;
        Assert.True(state.Documents is > 0 and < 2000, $"{state.Documents} documents");
        // what a crash in the middle of a chunk leaves: ids beyond the saved state
        using (var partialTrain = File.OpenWrite(Path.Combine(folder + TokenStore.Partial, TokenStore.TrainFile))) { partialTrain.Seek(0, SeekOrigin.End); partialTrain.Write(new byte[1234]); }

        var logs = new List<string>();
        var resumed = TokenStoreWriter.Prepare(corpus, new ByteTokenizer(), DataSplits.Documents, 0.05, cache, log: logs.Add, chunkChars: 5_000);
        Assert.Contains(logs, l => l.Contains($"resuming the preparation of corpus '{file}' with byte after {state.Documents:N0} documents"));
        Assert.False(Directory.Exists(folder + TokenStore.Partial));
        foreach (var f in new[] { TokenStore.TrainFile, TokenStore.ValFile })
            Assert.Equal(File.ReadAllBytes(Path.Combine(whole, f)), File.ReadAllBytes(Path.Combine(resumed, f)));
        var (a, b) = (TokenStore.Manifest(whole)!, TokenStore.Manifest(resumed)!);
        Assert.Equal((a.Documents, a.TrainDocuments, a.ValDocuments, a.TrainTokens, a.ValTokens), (b.Documents, b.TrainDocuments, b.ValDocuments, b.TrainTokens, b.ValTokens));
    }

    [Fact]
    public async Task Two_preparations_of_one_store_at_once_write_it_once()
    {
        using var dir = new TestUtil.TempDir();
        var file = Path.Combine(dir.Path, "docs.jsonl.gz");
        Shard(file, Enumerable.Range(0, 3000).Select(Doc));
        var cache = Path.Combine(dir.Path, "cache");
        var logs = new System.Collections.Concurrent.ConcurrentBag<string>();
        var both = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
            TokenStoreWriter.Prepare(Corpus.Open(file), new ByteTokenizer(), DataSplits.Documents, 0.05, cache, log: logs.Add, chunkChars: 2_000))).ToArray();
        var folders = await Task.WhenAll(both);
        Assert.Equal(folders[0], folders[1]);
        Assert.True(logs.Count(l => l.StartsWith("preparing corpus", StringComparison.Ordinal)) <= 1, string.Join("\n", logs));
        Assert.Equal(3000, TokenStore.Manifest(folders[0])!.Documents);
        Assert.Single(Directory.GetDirectories(TokenStore.Root(cache)));
    }

    /// <summary>A vocabulary above 65,536 ids: every character an id above 65,535.</summary>
    sealed class WideTokenizer : ITextTokenizer
    {
        public string Name => "wide";
        public int VocabSize => 70_000;
        public int[] Encode(string text) => text.Select(c => 65_536 + c % 4_000).ToArray();
        public string Decode(IEnumerable<int> ids) => throw new NotSupportedException();
    }

    [Fact]
    public void A_vocabulary_above_16_bits_is_stored_as_uint32_and_read_back()
    {
        using var dir = new TestUtil.TempDir();
        var file = Path.Combine(dir.Path, "a.txt");
        File.WriteAllText(file, string.Concat(Enumerable.Range(0, 200).Select(Doc)));
        var store = TokenStoreWriter.Prepare(Corpus.Open(file), new WideTokenizer(), DataSplits.Documents, 0.05, dir.Path);
        var m = TokenStore.Manifest(store)!;
        Assert.Equal(("uint32", "tail"), (m.TokenType, m.Split));
        Assert.Equal(m.TrainTokens * 4, new FileInfo(Path.Combine(store, TokenStore.TrainFile)).Length);
        using var data = TokenDataset.Open(store, 16, 1, file, 70_000);
        var (x, y) = data.TrainBatch(0, 4, TorchSharp.torch.CPU);
        Assert.True(x.ge(65_536).all().item<bool>() && y.lt(70_000).all().item<bool>());
    }

    static async Task WriteParquet(string path, params (string?[] Texts, int[] Ids)[] groups)
    {
        var text = new DataField<string>("text"); var id = new DataField<int>("id");
        await using var stream = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(id, text), stream);
        foreach (var (texts, ids) in groups)
        {
            using var group = writer.CreateRowGroup();
            await group.WriteAsync(id, (ReadOnlyMemory<int>)ids.AsMemory());
            await group.WriteAsync(text, texts!);
        }
    }

    [Fact]
    public async Task Parquet_rows_are_documents_and_a_bad_file_is_named_with_what_is_wrong()
    {
        using var dir = new TestUtil.TempDir();
        var file = Path.Combine(dir.Path, "train-00000.parquet");
        await WriteParquet(file, (["first row\n", null, "third row\n"], [1, 2, 3]), (["fourth row\n"], [4]));
        var corpus = Corpus.Open(file);
        Assert.Equal("parquet", corpus.Format);
        Assert.Equal(["first row\n", "third row\n", "fourth row\n"], corpus.Documents().ToList());   // a missing text is no document

        var e = Assert.Throws<CorpusException>(() => Corpus.Open(file, textField: "content").Documents().ToList());
        Assert.Contains($"'{file}': no text column 'content'", e.Message);
        Assert.Contains("id (Int32), text (String)", e.Message);
        Assert.Contains("no text column 'id'", Assert.Throws<CorpusException>(() => Corpus.Open(file, textField: "id").Documents().ToList()).Message);

        var cut = Path.Combine(dir.Path, "cut.parquet");
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        Assert.Contains($"'{cut}': not a readable Parquet file, or a truncated or corrupt one", Assert.Throws<CorpusException>(() => Corpus.Open(cut).Documents().ToList()).Message);
        var empty = Path.Combine(dir.Path, "empty.parquet");
        await WriteParquet(empty, ([null], [1]));
        Assert.Contains("holds no documents", Assert.Throws<CorpusException>(() => Corpus.Open(empty).Documents().ToList()).Message);
    }

    [Fact]
    public void NanoGpt_bins_are_used_as_they_are_and_checked_against_the_vocabulary()
    {
        using var dir = new TestUtil.TempDir();
        var bins = Directory.CreateDirectory(Path.Combine(dir.Path, "openwebtext")).FullName;
        static byte[] Ids(int n, int offset) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(Enumerable.Range(0, n).Select(i => (ushort)((i * 7 + offset) % 50_257)).ToArray().AsSpan()).ToArray();
        File.WriteAllBytes(Path.Combine(bins, "train.bin"), Ids(5000, 0));
        File.WriteAllBytes(Path.Combine(bins, "val.bin"), Ids(500, 3));
        foreach (var spec in new[] { bins, Path.Combine(bins, "train.bin") })
        {
            var corpus = Corpus.Open(spec);
            Assert.Equal(("tokens", bins), (corpus.Format, corpus.Pretokenized));
            Assert.Equal(bins, TokenStoreWriter.Prepare(corpus, new Gpt2Tokenizer(), DataSplits.Documents, 0.05, dir.Path));
        }
        using (var data = TokenDataset.Open(bins, 32, 1, bins, 50_257)) Assert.Equal((5000L, 500L), (data.TrainTokens, data.ValTokens));

        var cfg = Presets.Find("tiny-dense")!.Config;
        cfg = cfg with { Data = cfg.Data with { Corpus = bins, Tokenizer = "byte" } };
        var e = Assert.Throws<ConfigException>(() => { using var _ = new Trainer(cfg, Path.Combine(dir.Path, "run"), "cpu", []); });
        Assert.Contains("data.tokenizer: corpus", e.Message);

        var bad = Ids(500, 3); bad[2 * 123] = 0xFF; bad[2 * 123 + 1] = 0xFF;               // id 65535 at position 123
        File.WriteAllBytes(Path.Combine(bins, "val.bin"), bad);
        var out_ = Assert.Throws<CorpusException>(() => TokenDataset.Open(bins, 32, 1, bins, 50_257));
        Assert.Contains($"{Path.Combine(bins, "val.bin")} holds token id 65535 at position 123", out_.Message);
    }

    [Fact]
    public void Few_documents_split_by_documents_is_an_error_that_says_what_to_do()
    {
        using var dir = new TestUtil.TempDir();
        var folder = Directory.CreateDirectory(Path.Combine(dir.Path, "two")).FullName;
        File.WriteAllText(Path.Combine(folder, "a.txt"), Doc(1));
        File.WriteAllText(Path.Combine(folder, "b.txt"), Doc(2));
        var e = Assert.Throws<CorpusException>(() => TokenStoreWriter.Prepare(Corpus.Open(folder), new ByteTokenizer(), DataSplits.Documents, 0.05, dir.Path));
        Assert.Contains("set data.split to \"tail\"", e.Message);
        var tail = TokenStoreWriter.Prepare(Corpus.Open(folder), new ByteTokenizer(), DataSplits.Tail, 0.05, dir.Path);
        Assert.Equal(Doc(1) + Doc(2), Text(tail, TokenStore.TrainFile) + Text(tail, TokenStore.ValFile));
        Assert.Equal(e.Message, TokenStore.Preparing(TokenStore.Folder(dir.Path, Corpus.Open(folder).Identity, "byte", DataSplits.Documents, 0.05))!.Error);
    }
    [Fact]
    public void A_long_document_tokenized_in_pieces_has_the_ids_of_the_whole_text()
    {
        using var dir = new TestUtil.TempDir();
        var file = Path.Combine(dir.Path, "long.txt");
        // 300 K characters: paragraphs, single and double line breaks, indented lines, CRLF, numbers and punctuation
        var text = string.Concat(Enumerable.Range(0, 3000).Select(i =>
            $"Paragraph {i}: the model's {i % 7}th line, with 'quotes' and 3.5%.\n{(i % 3 == 0 ? "\n" : "")}{(i % 5 == 0 ? "    indented code();\r\n" : "")}Next line here\n"));
        File.WriteAllText(file, text);
        var gpt2 = new Gpt2Tokenizer();
        var store = TokenStoreWriter.Prepare(Corpus.Open(file), gpt2, DataSplits.Documents, 0.05, dir.Path);
        Assert.Equal(gpt2.Encode(text).Select(i => (ushort)i), TestUtil.Ids(store, TokenStore.TrainFile).Concat(TestUtil.Ids(store, TokenStore.ValFile)));
    }
}
