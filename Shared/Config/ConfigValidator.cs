namespace MoTLab.Shared.Config;

/// <summary>One problem with a config, named by its JSON path (e.g. "train.batch_size").</summary>
public sealed record ConfigError(string Field, string Message)
{
    public override string ToString() => $"{Field}: {Message}";
}

/// <summary>Checks a RunConfig before anything is allocated; every message names the field.</summary>
public static class ConfigValidator
{
    /// <summary>Parameters above this are refused outright (a typo such as d_model 65536, not a real run).</summary>
    public const long MaxParameters = 20_000_000_000;

    public static IReadOnlyList<ConfigError> Validate(RunConfig c)
    {
        var e = new List<ConfigError>();
        void Check(bool ok, string field, string message) { if (!ok) e.Add(new(field, message)); }
        // JSON may carry "Infinity" (named literals are read): every number without an upper bound is checked to be finite
        void AtLeast(double v, double min, string field, string note = "") => Check(double.IsFinite(v) && v >= min, field, $"must be a finite number ≥ {min}{note}");
        var m = c.Model; var f = m.Ffn; var t = c.Train;

        Check(!string.IsNullOrWhiteSpace(c.Name) && c.Name.Length <= 200, "name", "must be 1–200 characters");
        Check(m.VocabSize is >= 2 and <= 1_000_000, "model.vocab_size", "must be between 2 and 1,000,000");
        Check(m.DModel is >= 1 and <= 65_536, "model.d_model", "must be between 1 and 65,536");
        Check(m.Layers is >= 1 and <= 512, "model.layers", "must be between 1 and 512");
        Check(m.Heads >= 1, "model.heads", "must be at least 1");
        Check(m.Heads < 1 || m.DModel % m.Heads == 0, "model.heads", $"must divide d_model ({m.DModel})");
        Check(m.SeqLen is >= 1 and <= 1_048_576, "model.seq_len", "must be between 1 and 1,048,576");
        Check(m.Dropout is >= 0 and < 1, "model.dropout", "must be in [0, 1)");
        Check(m.DenseMultiplier is >= 1 and <= 64, "model.dense_multiplier", "must be between 1 and 64");
        Check(m.Init is ModelConfig.Gpt2Init or ModelConfig.PaperInit, "model.init", "must be gpt2 (N(0, 0.02)) or paper (truncated normal, σ = √(scale/fan_in))");
        Check(double.IsFinite(m.InitScale) && m.InitScale is > 0 and <= 100, "model.init_scale", "must be in (0, 100]");

        if (!Enum.IsDefined(f.Kind)) { Check(false, "model.ffn.kind", $"must be {string.Join(", ", FfnKinds.All.Select(k => k.Name))}"); return e; }
        var kind = FfnKinds.Of(f.Kind);
        if (kind.Sparse)
        {
            Check(f.Experts is >= 1 and <= 4096, "model.ffn.experts", "must be between 1 and 4,096");
            Check(f.Granularity is >= 1 and <= 64, "model.ffn.granularity", "must be between 1 and 64");
            Check(f.ExpertWidth >= 0, "model.ffn.expert_width", "must be 0 (flop-matched) or positive");
            Check(f.SparseBlocks is not { } listed || listed.Count <= m.Layers, "model.ffn.sparse_blocks", $"lists more blocks than there are layers ({m.Layers})");
            if (f.SparseBlocks is { Count: <= 512 } blocks)
                foreach (var b in blocks)
                    Check(b >= 0 && b < m.Layers, "model.ffn.sparse_blocks", $"block {b} does not exist (layers = {m.Layers})");
        }
        kind.Rules(c, Check);                                 // the kind's own (Shared/Config/FfnKinds.cs)

        Check(t.Steps is >= 1 and <= 100_000_000, "train.steps", "must be between 1 and 100,000,000");
        Check(t.BatchSize is >= 1 and <= 65_536, "train.batch_size", "must be between 1 and 65,536");
        Check(t.Gpus is >= 1 and <= 64, "train.gpus", "must be between 1 and 64");
        Check(t.Gpus < 1 || t.BatchSize % t.Gpus == 0, "train.batch_size", $"must be a multiple of train.gpus ({t.Gpus}): each process takes an equal share");
        Check(t.LearningRate is > 0 and < 10, "train.learning_rate", "must be in (0, 10)");
        Check(t.WarmupFraction is >= 0 and <= 1, "train.warmup_fraction", "must be in [0, 1]");
        Check(t.MinLrRatio is >= 0 and <= 1, "train.min_lr_ratio", "must be in [0, 1]");
        AtLeast(t.WeightDecay, 0, "train.weight_decay");
        Check(t.Beta1 is >= 0 and < 1, "train.beta1", "must be in [0, 1)");
        Check(t.Beta2 is >= 0 and < 1, "train.beta2", "must be in [0, 1)");
        AtLeast(t.GradClip, 0, "train.grad_clip", " (0 = off)");
        Check(t.LogEvery >= 1, "train.log_every", "must be at least 1");
        Check(t.SnapshotEvery >= 1, "train.snapshot_every", "must be at least 1");
        Check(t.EvalEvery >= 1, "train.eval_every", "must be at least 1");
        Check(t.EvalEarlyEvery >= 0, "train.eval_early_every", "must be ≥ 0 (0 = off)");
        Check(t.EvalEarlyUntil >= 0, "train.eval_early_until", "must be ≥ 0");
        Check(t.EvalBatches >= 1, "train.eval_batches", "must be at least 1");
        Check(t.CheckpointEvery >= 0, "train.checkpoint_every", "must be ≥ 0");
        Check(t.Precision is "auto" or "fp32" or "bf16", "train.precision", "must be auto, fp32 or bf16");

        Check(Vocabularies.Names.Contains(c.Data.Tokenizer), "data.tokenizer", $"must be {string.Join(" or ", Vocabularies.Names)}");
        Check(!string.IsNullOrWhiteSpace(c.Data.Corpus), "data.corpus", "must name a built-in corpus or a path");
        Check(c.Data.ValFraction is > 0 and < 0.5, "data.val_fraction", "must be in (0, 0.5)");
        Check(DataSplits.All.Contains(c.Data.Split), "data.split", $"must be {string.Join(" or ", DataSplits.All)}");
        Check(c.Data.TextField is { Length: >= 1 and <= 100 }, "data.text_field", "must name the JSON field or Parquet column of the text (1–100 characters)");

        if (e.Count == 0)
        {
            long p = ModelSize.Parameters(m);
            Check(p <= MaxParameters, "model", $"{p:N0} parameters is beyond what MoTLab trains ({MaxParameters:N0})");
        }
        return e;
    }

    /// <summary>The checks of a run about to train on a machine, made by the dashboard before it stores the run and by the
    /// worker before it allocates anything: the config's rules with its tokenizer's vocabulary, then, when they pass and
    /// the memory is known (<paramref name="availableBytes"/>), whether a training step fits in it.</summary>
    public static IReadOnlyList<ConfigError> ValidateRun(RunConfig c, bool cuda, double? availableBytes, string memory)
    {
        c = c.WithTokenizerVocab();
        var errors = Validate(c);
        if (errors.Count == 0 && availableBytes is { } bytes && CheckMemory(c, c.Train.Bf16On(cuda), bytes, memory) is { } tooBig) return [tooBig];
        return errors;
    }

    /// <summary>Refuses a config whose training step would not fit in <paramref name="availableBytes"/> of
    /// <paramref name="memory"/> (e.g. "RAM", "GPU memory"), by <see cref="ModelSize.TrainingBytes"/>.</summary>
    public static ConfigError? CheckMemory(RunConfig c, bool bf16, double availableBytes, string memory)
    {
        double need = ModelSize.TrainingBytes(c.Model, c.Train.BatchSize, bf16);
        if (need <= availableBytes) return null;
        const double GiB = 1024.0 * 1024 * 1024;
        return new ConfigError("train.batch_size", $"training needs about {need / GiB:N1} GiB (weights, gradients, AdamW state, activations " +
            $"and logits at batch {c.Train.BatchSize} × sequence {c.Model.SeqLen}), more than the {availableBytes / GiB:N1} GiB of {memory}: " +
            "lower the batch size, the sequence length or the model size");
    }
}
