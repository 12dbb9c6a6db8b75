using MoTLab.Training.Data;
using MoTLab.Training.Model;
using static TorchSharp.torch;

namespace MoTLab.Training.Train;

/// <summary>Autoregressive text generation at batch 1 (temperature + top-k), cropping the context to seq_len.</summary>
public static class Sampler
{
    public static string Generate(Gpt model, ITextTokenizer tokenizer, string prompt, int maxTokens, double temperature, int topK, long seed, Device device)
    {
        var ids = tokenizer.Encode(prompt).Select(i => (long)i).ToList();
        if (ids.Count == 0) ids.Add(tokenizer.Encode("\n")[0]);
        var generator = new Generator((ulong)seed, device);
        model.eval();
        using (no_grad())
            for (int n = 0; n < maxTokens; n++)
            {
                using var scope = NewDisposeScope();
                var context = ids.Skip(Math.Max(0, ids.Count - model.Config.SeqLen)).ToArray();
                var x = tensor(context, [1, context.Length], device: device);              // (1, T)
                var logits = model.forward(x)[0, -1].to_type(ScalarType.Float32);          // (V)
                if (temperature <= 0) { ids.Add(logits.argmax().item<long>()); continue; }
                logits = logits / temperature;
                if (topK > 0 && topK < logits.shape[0])
                {
                    var kth = logits.topk(topK).values[-1];
                    logits = logits.masked_fill(logits.lt(kth), double.NegativeInfinity);
                }
                var probs = logits.softmax(0);                                             // (V)
                ids.Add(multinomial(probs, 1, generator: generator).item<long>());
            }
        return tokenizer.Decode(ids.Select(i => (int)i));
    }
}
