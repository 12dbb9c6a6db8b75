namespace MoTLab.Shared.Config;

/// <summary>Parameter and FLOP accounting from the config alone (no tensors), so the UI can show it
/// before launch. FLOPs are those actually computed per token in the forward pass, matmuls only
/// (multiply-add = 2 FLOPs); a training step is 3× (forward + backward).</summary>
public static class ModelSize
{
    public static long Parameters(ModelConfig m)
    {
        long d = m.DModel, v = m.VocabSize;
        long embed = v * d + (long)m.SeqLen * d + (m.TiedHead ? 0 : v * d);
        long perBlockBase = 4 * d * d + 4 * d;            // qkv + out proj; two LayerNorms (weight + bias)
        long dense = 2 * d * m.DenseMultiplier * d;
        var sparse = m.SparseBlockIndices();
        long total = embed + 2 * d + m.Layers * perBlockBase + (m.Layers - sparse.Count) * dense;
        total += sparse.Count * SparseFfnParameters(m);
        return total;
    }

    /// <summary>Parameters of one sparse FFN (the kind's <see cref="FfnKindInfo.Parameters"/>).</summary>
    public static long SparseFfnParameters(ModelConfig m) => FfnKinds.Of(m.Ffn.Kind).Parameters(m);

    /// <summary>Parameters that train: all of them, except in a lightweight-experts fine-tune (only routers and experts).</summary>
    public static long TrainableParameters(ModelConfig m) =>
        FfnKinds.Of(m.Ffn.Kind).Adapters is { } adapters ? m.SparseBlockIndices().Count * adapters(m) : Parameters(m);

    /// <summary>The trainable parameters' share of all (1 unless a lightweight-experts fine-tune).</summary>
    public static double TrainableShare(ModelConfig m) => (double)TrainableParameters(m) / Parameters(m);

    /// <summary>Forward FLOPs per token for a batch of <paramref name="batch"/> sequences.</summary>
    public static double ForwardFlopsPerToken(ModelConfig m, int batch)
    {
        double d = m.DModel, t = m.SeqLen;
        double attn = 2 * 4 * d * d + 2 * 2 * t * d;      // projections + QKᵀ and AV (non-causal count, as PaLM)
        double dense = 2 * 2 * d * m.DenseMultiplier * d;
        var sparse = m.SparseBlockIndices().Count;
        double head = 2 * d * m.VocabSize;
        return m.Layers * attn + (m.Layers - sparse) * dense + sparse * SparseFlopsPerToken(m, batch) + head;
    }

    /// <summary>Forward FLOPs per token of one sparse FFN (the kind's <see cref="FfnKindInfo.ForwardFlops"/>).</summary>
    public static double SparseFlopsPerToken(ModelConfig m, int batch) => FfnKinds.Of(m.Ffn.Kind).ForwardFlops(m, (double)batch * m.SeqLen);

    /// <summary>Rough peak memory of a training step, to refuse what cannot fit before anything is allocated:
    /// fp32 weights, gradients and AdamW moments (16 B per parameter, +2 for the bf16 working copy); activations
    /// kept for backward, about (18 + 4·dense_multiplier)·d_model values per token and layer (SDPA keeps no
    /// seq×seq matrix); and the logits with their softmax and gradient (3 fp32 copies, +1 bf16).</summary>
    public static double TrainingBytes(ModelConfig m, int batch, bool bf16)
    {
        double tokens = (double)batch * m.SeqLen, valueBytes = bf16 ? 2 : 4;
        double state = Parameters(m) * (16.0 + (bf16 ? 2 : 0));
        double activations = m.Layers * tokens * m.DModel * (18 + 4 * m.DenseMultiplier) * valueBytes;
        double logits = tokens * m.VocabSize * (12 + (bf16 ? 2 : 0));
        return state + activations + logits;
    }

    public static int TokenChoiceCapacity(FfnConfig f, double tokens) =>
        (int)Math.Max(1, Math.Min(Math.Floor(f.CapacityFactor * tokens * f.TopK / f.EffectiveExperts), tokens));

    public static int ExpertChoiceCapacity(FfnConfig f, double tokens) =>
        (int)Math.Clamp(Math.Round(f.Capacity * tokens / f.EffectiveExperts), 1, tokens);
}
