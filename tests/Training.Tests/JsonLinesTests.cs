using MoTLab.Shared.Config;
using System.IO.Compression;
using System.Text;
using MoTLab.Shared.Data;
using MoTLab.Training.Data;

namespace MoTLab.Training.Tests;

/// <summary>JSON Lines shards as corpora: plain, gzip and zstd (written here by the same libraries MoTLab reads them
/// with), a folder of shards, another text field; every bad shard named with its file and line.</summary>
public class JsonLinesTests
{
    readonly string folder = Directory.CreateTempSubdirectory("motlab-jsonl").FullName;
    static readonly string[] Texts = ["first document\nwith a line break", "second: ünïcode ✓", "third"];
    static string Lines(string field = "text") => string.Join('\n', Texts.Select(t => System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object> { [field] = t, ["url"] = "x" }))) + "\n\n";

    string Write(string name, string content)
    {
        var path = Path.Combine(folder, name);
        var bytes = Encoding.UTF8.GetBytes(content);
        using var file = File.Create(path);
        using Stream output = name.EndsWith(".gz") ? new GZipStream(file, CompressionLevel.Fastest) : name.EndsWith(".zst") ? new ZstdSharp.CompressionStream(file) : file;
        output.Write(bytes);
        return path;
    }

    [Theory]
    [InlineData("shard.jsonl")]
    [InlineData("shard.jsonl.gz")]
    [InlineData("shard.jsonl.zst")]
    [InlineData("c4-train.00000-of-01024.json.gz")]
    public void A_shard_is_one_document_a_line_in_order(string name)
    {
        var corpus = Corpus.Open(Write(name, Lines()));
        Assert.Equal(Texts, corpus.Documents());
    }

    [Fact]
    public void A_folder_of_shards_reads_each_shard_in_name_order_and_the_text_field_can_be_named()
    {
        Write("b.jsonl.zst", Lines("content"));
        Write("a.jsonl", Lines("content"));
        var corpus = Corpus.Open(folder, textField: "content");
        Assert.Equal(Texts.Concat(Texts), corpus.Documents());
        Assert.NotEqual(corpus.Identity, Corpus.Open(folder, textField: "text").Identity);      // another field, another token cache
    }

    [Theory]
    [InlineData("bad.jsonl", "{\"text\": \"ok\"}\n{not json\n", "line 2: not a JSON object")]
    [InlineData("nofield.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"ok\"}\n{\"body\": \"x\"}\n", "line 3: no text field 'text'")]
    [InlineData("number.jsonl", "{\"text\": 5}\n", "line 1: no text field 'text'")]
    [InlineData("empty.jsonl", "\n\n", "holds no documents")]
    public void A_bad_shard_is_an_error_naming_its_file_and_line(string name, string content, string message)
    {
        var path = Write(name, content);
        var e = Assert.Throws<CorpusException>(() => Corpus.Open(path).Documents().ToList());
        Assert.Contains(path, e.Message);
        Assert.Contains(message, e.Message);
    }

    [Theory]
    [InlineData("cut.jsonl.gz")]
    [InlineData("cut.jsonl.zst")]
    public void A_truncated_archive_is_an_error_naming_the_file(string name)
    {
        var path = Write(name, string.Concat(Enumerable.Repeat(Lines(), 400)));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<CorpusException>(() => Corpus.Open(path).Documents().ToList());
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated or corrupt", e.Message);
    }

    [Fact]
    public void Invalid_utf8_is_an_error_naming_the_line()
    {
        var path = Path.Combine(folder, "latin1.jsonl");
        File.WriteAllBytes(path, [.. Encoding.UTF8.GetBytes("{\"text\": \"ok\"}\n{\"text\": \"caf"), 0xE9, .. Encoding.UTF8.GetBytes("\"}\n")]);
        var e = Assert.Throws<CorpusException>(() => Corpus.Open(path).Documents().ToList());
        Assert.Contains("line 2: not valid UTF-8", e.Message);
    }

    [Fact]
    public void Tokenizing_a_bad_shard_tells_its_file_and_line_and_a_field_name_stays_out_of_the_cache_file_name()
    {
        Write("a.jsonl", Lines());
        var bad = Write("b.jsonl", "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n");
        var cache = Directory.CreateTempSubdirectory("motlab-jsonl-cache").FullName;
        var corpus = Corpus.Open(folder, textField: "../../escape");
        Assert.DoesNotContain("escape", corpus.Identity);
        Assert.DoesNotContain("/", corpus.Identity);
        var e = Assert.Throws<CorpusException>(() => TokenStoreWriter.Prepare(Corpus.Open(folder), new ByteTokenizer(), DataSplits.Documents, 0.05, cache));   // not an AggregateException
        Assert.Contains($"'{bad}' line 2: no text field 'text'", e.Message);
    }
}
