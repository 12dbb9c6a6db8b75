using System.Text;
using Microsoft.ML.Tokenizers;
using MoTLab.Shared.Config;

namespace MoTLab.Training.Data;

/// <summary>Text ↔ token ids. Ids must fit in 16 bits (both built-in vocabularies do), so token caches are ushort.</summary>
public interface ITextTokenizer
{
    string Name { get; }
    int VocabSize { get; }
    int[] Encode(string text);
    string Decode(IEnumerable<int> ids);
}

/// <summary>UTF-8 bytes as tokens (vocab 256). Decoding replaces invalid sequences with U+FFFD.</summary>
public sealed class ByteTokenizer : ITextTokenizer
{
    public string Name => Vocabularies.Byte;
    public int VocabSize => Vocabularies.SizeOf(Name);
    public int[] Encode(string text) => Encoding.UTF8.GetBytes(text).Select(b => (int)b).ToArray();
    public string Decode(IEnumerable<int> ids) => Encoding.UTF8.GetString(ids.Select(i => (byte)i).ToArray());
}

/// <summary>GPT-2 byte-level BPE (vocab 50257) from Microsoft.ML.Tokenizers and its bundled data. One tokenizer per
/// thread: threads sharing one instance (its word cache) prepared a corpus on 16 cores at half the speed (docs/benchmarks.md).</summary>
public sealed class Gpt2Tokenizer : ITextTokenizer
{
    private static readonly ThreadLocal<Tokenizer> PerThread = new(() => TiktokenTokenizer.CreateForModel("gpt2"));
    public string Name => Vocabularies.Gpt2;
    public int VocabSize => Vocabularies.SizeOf(Name);
    public int[] Encode(string text) => PerThread.Value!.EncodeToIds(text).ToArray();
    public string Decode(IEnumerable<int> ids) => PerThread.Value!.Decode(ids);
}

public static class Tokenizers
{
    public static ITextTokenizer Create(string name) => name switch
    {
        Vocabularies.Byte => new ByteTokenizer(),
        Vocabularies.Gpt2 => new Gpt2Tokenizer(),
        _ => throw new ArgumentException($"data.tokenizer: unknown tokenizer '{name}' (byte or gpt2)"),
    };
}
