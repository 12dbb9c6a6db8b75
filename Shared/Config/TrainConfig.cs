namespace MoTLab.Shared.Config;

/// <summary>Optimisation and bookkeeping. Defaults suit the tiny CPU presets.</summary>
public sealed record TrainConfig
{
    public int Steps { get; init; } = 200;
    public int BatchSize { get; init; } = 16;           // sequences per step; MoT needs a multiple of the group size
    public double LearningRate { get; init; } = 3e-3;   // peak
    public double WarmupFraction { get; init; } = 0.01; // linear warmup over this share of the steps (paper: 1 %)
    public double MinLrRatio { get; init; } = 0.1;      // cosine decays to 10 % of peak
    public double WeightDecay { get; init; } = 0.1;     // on ≥2-D weights only
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double GradClip { get; init; } = 1.0;        // max global grad norm; 0 = off
    public long Seed { get; init; } = 1337;
    public int LogEvery { get; init; } = 10;            // light stats (loss, lr, grad norm, tokens/s)
    public int SnapshotEvery { get; init; } = 50;       // heavy routing snapshots
    public int EvalEvery { get; init; } = 100;          // held-out loss
    public int EvalBatches { get; init; } = 4;
    /// <summary>Denser evaluation early on, where runs differ most: every this many steps up to <see cref="EvalEarlyUntil"/>
    /// (0 = off). Steps-to-reach a loss is read from evaluations, so its resolution is this interval.</summary>
    public int EvalEarlyEvery { get; init; }
    public int EvalEarlyUntil { get; init; }
    public int CheckpointEvery { get; init; } = 0;      // 0 = only at the end
    /// <summary>Processes that train the run data parallel, one per GPU on CUDA (on the CPU, processes of the host):
    /// each takes batch_size / gpus of every step's batch, and their gradients are averaged before the step. The
    /// global batch, the data order and the results are those of one process, up to rounding (per-process
    /// capacities of token- and expert-choice MoE are the exception: each process routes its own share).</summary>
    public int Gpus { get; init; } = 1;
    /// <summary>auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16.</summary>
    public string Precision { get; init; } = "auto";
    /// <summary>Whether the run computes in bf16 on a CUDA device (<paramref name="cuda"/>) or the CPU: "auto" is bf16 on
    /// CUDA, fp32 on the CPU.</summary>
    public bool Bf16On(bool cuda) => Precision == "bf16" || (Precision == "auto" && cuda);
    /// <summary>Stop the run (Failed, with the step) when the loss or gradient norm is NaN or infinite. Checked on
    /// logged steps, where the values are read anyway, so it costs no extra device sync.</summary>
    public bool StopOnNonFinite { get; init; } = true;
    /// <summary>A checkpoint (or run) folder whose weights start this run, optimizer fresh: transition tuning starts a
    /// token-choice model from a MoT checkpoint this way (controller → router, same experts).</summary>
    public string? InitFrom { get; init; }

    /// <summary>Whether the held-out loss is measured after this many steps (always after the last).</summary>
    public bool EvaluatesAt(long step) =>
        step % EvalEvery == 0 || step == Steps || (EvalEarlyEvery > 0 && step <= EvalEarlyUntil && step % EvalEarlyEvery == 0);
}

/// <summary>Where the text comes from and how it is tokenized.</summary>
public sealed record DataConfig
{
    /// <summary>"synthetic", "dotnet-docs", "linux-docs", "debian-docs" (built in) or a file/folder path (docs/corpora.md).</summary>
    public string Corpus { get; init; } = "synthetic";
    /// <summary>"byte" (vocab 256) or "gpt2" (BPE, vocab 50257).</summary>
    public string Tokenizer { get; init; } = "byte";
    /// <summary>The share of the corpus held out for the eval loss.</summary>
    public double ValFraction { get; init; } = 0.05;
    /// <summary>How the held-out share is drawn: "documents" (whole documents, chosen by a hash of each, so it comes from
    /// every source) or "tail" (the end of the token stream). A corpus of one document is always split by its tail.</summary>
    public string Split { get; init; } = DataSplits.Documents;
    /// <summary>JSON Lines corpora (.jsonl, .jsonl.gz, .jsonl.zst, .json.gz): the field that holds each document's text;
    /// Parquet corpora: the text column.</summary>
    public string TextField { get; init; } = "text";
}

/// <summary>The spellings of data.split.</summary>
public static class DataSplits
{
    public const string Documents = "documents", Tail = "tail";
    public static readonly string[] All = [Documents, Tail];
}

/// <summary>Everything that defines a run; serialised as the run's config.json.</summary>
public sealed record RunConfig
{
    public string Name { get; init; } = "run";
    public string? Preset { get; init; }
    public ModelConfig Model { get; init; } = new();
    public TrainConfig Train { get; init; } = new();
    public DataConfig Data { get; init; } = new();
}
