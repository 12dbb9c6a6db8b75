
namespace MoTLab.Shared.Config;

/// <summary>The tokenizers a run may name (data.tokenizer) and their vocabulary sizes, known without loading their
/// data; the tokenizers themselves are in Training/Data/Tokenizers.cs.</summary>
public static class Vocabularies
{
    public const string Byte = "byte", Gpt2 = "gpt2";
    public static readonly IReadOnlyList<string> Names = [Byte, Gpt2];

    /// <summary>The vocabulary size of <paramref name="tokenizer"/> (UTF-8 bytes 256, GPT-2 BPE 50,257).</summary>
    public static int SizeOf(string tokenizer) => tokenizer == Gpt2 ? 50257 : 256;

    /// <summary>The config with model.vocab_size set from its tokenizer: the one place a run's vocabulary is decided.</summary>
    public static RunConfig WithTokenizerVocab(this RunConfig c) =>
        c.Model.VocabSize == SizeOf(c.Data.Tokenizer) ? c : c with { Model = c.Model with { VocabSize = SizeOf(c.Data.Tokenizer) } };
}
