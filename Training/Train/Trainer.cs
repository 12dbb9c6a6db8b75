using MoTLab.Training.Data;
using MoTLab.Shared.Runs;
using System.Diagnostics;
using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Shared.Telemetry;
using MoTLab.Shared.Data;
using MoTLab.Training.Model;
using MoTLab.Training.Model.Gpu;
using MoTLab.Training.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoTLab.Training.Train;

/// <summary>Trains one run: data, model, AdamW, schedule, telemetry, evaluation, checkpoints. Call
/// <see cref="Run"/> on one dedicated thread (dispose scopes and no_grad are per thread) and never await
/// inside it. Cancelling stops after the current step and writes a checkpoint.
///
/// As one process of a data-parallel run (<see cref="ProcessGroup"/>, <c>train.gpus</c>) it trains rows
/// [rank·b, (rank + 1)·b) of every step's batch (b = batch_size / gpus: the same rows, in the same order, as one
/// process draws), averages the gradients over the processes before clipping, and logs the mean training loss; only
/// rank 0 evaluates, writes the run folder's files and checkpoints (the other ranks get no sinks).</summary>
public sealed class Trainer : IDisposable
{
    public RunConfig Config { get; }
    public Gpt Model { get; }
    public Device Device { get; }
    public ScalarType Compute { get; }
    public TrainerState State { get; private set; } = new(0, 0, 0, null, null);

    private readonly string runDir;
    private readonly TokenDataset data;
    private readonly AdamW optimizer;
    private readonly IReadOnlyList<ITelemetrySink> sinks;
    private readonly IReadOnlyList<Parameter> parameters;
    private readonly ProcessGroup? group;
    bool IsRoot => group is null || group.IsRoot;
    int World => group?.World ?? 1;                // processes training this run

    /// <param name="tokens">Token stream to train on instead of the configured corpus (benchmarks use random ids).</param>
    /// <param name="dataRoots">A dashboard's data roots: corpus files must resolve inside them (null: any file).</param>
    public Trainer(RunConfig config, string runDir, string device, IReadOnlyList<ITelemetrySink> sinks,
                   string? resumeFrom = null, string? cacheDir = null, ushort[]? tokens = null, IReadOnlyList<string>? dataRoots = null,
                   ProcessGroup? group = null)
    {
        this.group = group;
        TorchRuntime.Initialise();
        Device = TorchRuntime.ResolveDevice(device);
        bool cuda = Device.type == DeviceType.CUDA;
        var errors = ConfigValidator.ValidateRun(config, cuda, cuda ? null : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, "this machine's memory");
        if (errors.Count > 0) throw new ConfigException(errors);
        if (config.Train.Gpus != World)
            throw new ConfigException([new ConfigError("train.gpus", group is null
                ? $"{config.Train.Gpus} processes are started by `MoTLab.Training train` (the dashboard and its workers train a run in one process): set it to 1 here"
                : $"is {config.Train.Gpus}, but this process is one of {group.World}")]);
        Compute = config.Train.Bf16On(cuda) ? ScalarType.BFloat16 : ScalarType.Float32;
        this.runDir = runDir; this.sinks = sinks;

        var tokenizer = Tokenizers.Create(config.Data.Tokenizer);
        Config = config = config.WithTokenizerVocab();
        data = tokens is not null ? TokenDataset.InMemory(tokens, config.Model.SeqLen, config.Data.ValFraction, config.Train.Seed) : OpenCorpus(config, tokenizer, dataRoots, cacheDir);

        manual_seed(config.Train.Seed);
        Model = new Gpt(config.Model, Compute);
        Model.to(Device);
        parameters = Model.TrainableParameters();
        var t = config.Train;
        optimizer = new AdamW(parameters, t.LearningRate, t.Beta1, t.Beta2, t.WeightDecay);

        Directory.CreateDirectory(runDir);
        if (resumeFrom is not null)
        {
            var ckpt = RunFolder.Checkpoint(resumeFrom);
            Checkpoint.LoadModel(ckpt, Model);
            Checkpoint.LoadOptimizerAndRng(ckpt, optimizer);
            State = RunFolder.ReadState(ckpt);
            Log($"resumed from {ckpt} at step {State.Step}");
        }
        else if (config.Train.InitFrom is { } init)
        {
            var ckpt = RunFolder.Checkpoint(init);
            Checkpoint.LoadModel(ckpt, Model, Transition.WeightNamesInto(config.Model),
                fresh: config.Model.Ffn.IsLightweight ? LightweightExperts.IsAdapterWeight : null);
            Log($"weights from {ckpt}");
        }
        if (IsRoot) File.WriteAllText(Path.Combine(runDir, "config.json"), JsonSerializer.Serialize(config, Json.Indented));
        long trainable = parameters.Sum(p => p.numel());
        Log($"{Model.ParameterCount():N0} parameters{(trainable < Model.ParameterCount() ? $" ({trainable:N0} trainable, {(double)trainable / Model.ParameterCount():P2})" : "")}, {ModelSize.ForwardFlopsPerToken(config.Model, t.BatchSize) * 3 / 1e6:N1} MFLOP per token per training step, " +
            $"device {Device}{(Device.type == DeviceType.CPU ? $" ({get_num_threads()} thread{(get_num_threads() == 1 ? "" : "s")})" : "")}, compute {Compute}, " +
            $"attention {AttentionPath(config.Model)}, {(World > 1 ? $"data parallel over {World} processes ({config.Train.BatchSize / World} rows each), " : "")}{(Device.type == DeviceType.CUDA ? $"kernels: {GpuKernels.Describe(Device)}, " : "")}{data.TrainTokens:N0} train / {data.ValTokens:N0} eval tokens");
    }

    /// <summary>Which attention the model runs here: MoTLab's CPU kernel or SDPA; with attention dropout, training
    /// takes SDPA and evaluation (no dropout) can still take the kernel.</summary>
    string AttentionPath(ModelConfig m)
    {
        bool Kernel(double dropout) => CausalSelfAttention.UsesCpuKernel(Device.type, Compute, m.HeadDim, m.SeqLen, dropout);
        return Kernel(m.Dropout) ? "CPU kernel" : Kernel(0) ? "SDPA (CPU kernel when evaluating)" : "SDPA";
    }

    /// <summary>Trains until the configured step count (or <paramref name="until"/>, or cancellation), writes a
    /// checkpoint and returns the final state. The schedule always follows the configured step count.</summary>
    public TrainerState Run(CancellationToken cancel = default, long? until = null)
    {
        var t = Config.Train;
        int batch = t.BatchSize, seq = Config.Model.SeqLen;
        double peak = TorchRuntime.PeakFlops(Device, Compute);
        using var system = new Runtime.SystemSampler(Device.type == DeviceType.CUDA ? Math.Max(0, (int)Device.index) : null, TimeSpan.FromSeconds(5));
        var clock = Stopwatch.StartNew();
        double startElapsed = State.ElapsedS, lastLogTime = 0; long lastLogStep = State.Step;
        Model.train();
        bool parallel = World > 1, agreedStop = false;   // ranks stop together, at a logged step
        long? launchesBefore = Device.type == DeviceType.CUDA ? GpuKernels.Launches : null;   // told after the first step
        while (State.Step < Math.Min(t.Steps, until ?? long.MaxValue) && !(parallel ? agreedStop : cancel.IsCancellationRequested))
        {
            long step = State.Step;          // 0-based index of the step being taken
            long done = step + 1;            // steps completed after it
            bool eval = t.EvaluatesAt(done);
            bool log = done % t.LogEvery == 0 || eval;
            bool snapshot = done % t.SnapshotEvery == 0;
            Model.SetStats(snapshot ? StatsLevel.Full : log ? StatsLevel.Light : StatsLevel.None);
            double lr = LrSchedule.At(step, t.Steps, t.LearningRate, t.WarmupFraction, t.MinLrRatio);

            using (var scope = NewDisposeScope())
            {
                var (ce, aux, gradNorm) = TakeStep(step, lr);
                if (launchesBefore is { } before)
                {
                    long launched = GpuKernels.Launches - before;
                    Log(launched > 0 ? $"kernels: {launched} fused-kernel launches in the first step"
                        : $"kernels: no fused kernel ran in the first step ({GpuKernels.Describe(Device)}): every op took its libtorch path");
                    launchesBefore = null;
                }
                if (log && parallel)
                {
                    // every process's own share (their mean is the batch's), and whether any was asked to stop
                    var shared = stack([ce.detach(), aux.detach(), full(Array.Empty<long>(), cancel.IsCancellationRequested ? 1.0 : 0.0, dtype: ce.dtype, device: ce.device)]);
                    group!.AllReduceMean([shared]);
                    (ce, aux) = (shared[0], shared[1]);
                    agreedStop = shared[2].item<float>() > 0;
                }
                if (snapshot) // before evaluation, whose forwards replace the recorded statistics
                {
                    var snaps = Model.SparseLayers.Select(l => l.Ffn.Snapshot(done, l.Layer)).ToList();
                    if (snaps.Count > 0) foreach (var s in sinks) s.OnRouting(snaps);
                }

                if (log)
                {
                    var metrics = LightMetrics(ce, aux, gradNorm, lr);   // reads the loss: the device syncs here
                    if (t.StopOnNonFinite && (!double.IsFinite(metrics.TrainLoss) || !double.IsFinite(metrics.GradNorm)))
                        throw new TrainingDivergedException(done, metrics.TrainLoss, metrics.GradNorm);
                    double now = clock.Elapsed.TotalSeconds;
                    double tps = (done - lastLogStep) * (double)batch * seq / Math.Max(now - lastLogTime, 1e-9);
                    lastLogStep = done;
                    metrics = metrics with
                    {
                        Step = done, Tokens = State.Tokens, ElapsedS = startElapsed + now, TokensPerS = tps,
                        Time = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0,
                        Mfu = Model.EstimateMfu(batch, tps, peak * World),   // the peak of every process's device
                        RssMb = system.Latest?.RssMb, CpuPercent = system.Latest?.CpuPercent,
                        GpuUtilPercent = system.Latest?.GpuUtilPercent, GpuMemoryMb = system.Latest?.GpuMemoryMb,
                    };
                    if (eval && IsRoot)
                    {
                        var (evalLoss, extra) = Evaluate();
                        metrics = metrics with { EvalLoss = evalLoss, EvalExtra = extra };
                        State = State with { LastEvalLoss = evalLoss };
                    }
                    State = State with { LastTrainLoss = metrics.TrainLoss, ElapsedS = startElapsed + clock.Elapsed.TotalSeconds };
                    foreach (var s in sinks) s.OnStep(metrics);
                    lastLogTime = clock.Elapsed.TotalSeconds;        // throughput counts training steps, not evaluation
                }
            }
            State = State with { ElapsedS = startElapsed + clock.Elapsed.TotalSeconds };
            if (IsRoot && t.CheckpointEvery > 0 && State.Step % t.CheckpointEvery == 0 && State.Step < t.Steps) SaveCheckpoint();
        }
        if (IsRoot) SaveCheckpoint();
        return State;
    }

    /// <summary>One optimisation step on the batch of the current step; no telemetry (benchmarks call this).</summary>
    public void Step()
    {
        Model.SetStats(StatsLevel.None);
        var t = Config.Train;
        using var scope = NewDisposeScope();
        TakeStep(State.Step, LrSchedule.At(State.Step, t.Steps, t.LearningRate, t.WarmupFraction, t.MinLrRatio));
    }

    /// <summary>Stages a benchmark may leave out to see what each costs (never used in real training).</summary>
    public StepStages Omit { get; set; }

    /// <summary>Forward, loss, backward, clip, AdamW; tensors stay in the caller's dispose scope.</summary>
    (Tensor CrossEntropy, Tensor Aux, Tensor GradNorm) TakeStep(long step, double lr)
    {
        optimizer.LearningRate = lr;
        int batch = Config.Train.BatchSize, share = batch / World;
        var (x, y) = data.TrainBatch(step, batch, Device, first: (group?.Rank ?? 0) * share, count: share);
        var (objective, ce, aux) = Model.Loss(x, y);
        Model.zero_grad();
        if (!Omit.HasFlag(StepStages.Backward)) objective.backward();
        if (World > 1 && !Omit.HasFlag(StepStages.Backward)) group!.AllReduceMean(Gradients());
        var gradNorm = Omit.HasFlag(StepStages.Clip) || Omit.HasFlag(StepStages.Backward) ? objective.detach() : ClipGradNorm(Config.Train.GradClip);
        if (!Omit.HasFlag(StepStages.Optimizer) && !Omit.HasFlag(StepStages.Backward)) optimizer.Step();
        State = State with { Step = step + 1, Tokens = State.Tokens + (long)Config.Train.BatchSize * Config.Model.SeqLen };
        return (ce, aux, gradNorm);
    }

    public string SaveCheckpoint()
    {
        var path = Checkpoint.Save(runDir, Config, Model, optimizer, State);
        Log($"checkpoint {path}");
        foreach (var s in sinks) s.OnCheckpoint(State.Step, path, State.LastTrainLoss, State.LastEvalLoss);
        return path;
    }

    StepMetrics LightMetrics(Tensor ce, Tensor aux, Tensor gradNorm, double lr)
    {
        double? balance = null, z = null, dropped = null, entropy = null;
        var layers = Model.SparseLayers.Select(l => l.Ffn).ToList();
        if (layers.Count > 0)
        {
            var b = layers.Where(f => f.BalanceLoss is not null).Select(f => f.BalanceLoss!.item<float>()).ToList();
            var zs = layers.Where(f => f.ZLoss is not null).Select(f => f.ZLoss!.item<float>()).ToList();
            var d = layers.Where(f => f.LastStats?.Dropped is not null).Select(f => f.LastStats!.Dropped!.item<float>()).ToList();
            var e = layers.Where(f => f.LastStats?.Entropy is not null).Select(f => f.LastStats!.Entropy!.item<float>()).ToList();
            balance = b.Count > 0 ? b.Sum() : null; z = zs.Count > 0 ? zs.Sum() : null;
            dropped = d.Count > 0 ? d.Average() : null; entropy = e.Count > 0 ? e.Average() : null;
        }
        return new StepMetrics
        {
            TrainLoss = ce.item<float>(), Lr = lr, GradNorm = gradNorm.item<float>(), AuxLoss = aux.item<float>(),
            BalanceLoss = balance, ZLoss = z, DroppedRatio = dropped, RouterEntropy = entropy,
        };
    }

    /// <summary>Every trainable parameter's gradient, in one order on every process (a parameter without one would
    /// leave the processes' lists out of step: none of MoTLab's layers leaves a trainable weight out of the graph).</summary>
    IReadOnlyList<Tensor> Gradients() => parameters.Select((p, i) => p.grad ?? throw new InvalidOperationException(
        $"trainable parameter {i} has no gradient this step: data-parallel processes must average the same tensors")).ToList();

    /// <summary>Global L2 norm of all gradients, scaled down to max_norm when above it; no host sync.</summary>
    Tensor ClipGradNorm(double maxNorm) =>
        FusedOps.ClipGradNorm(parameters.Select(p => p.grad).OfType<Tensor>().ToArray(), maxNorm);

    /// <summary>Mean held-out loss over the fixed eval batches, plus MoT's extra evaluations
    /// (discrete argmax routing, other group sizes) when configured.</summary>
    public (double Loss, IReadOnlyDictionary<string, double>? Extra) Evaluate()
    {
        var mot = Model.SparseLayers.Select(l => l.Ffn).OfType<MixtureOfTokens>().ToList();
        double loss = EvalLoss(() => { });
        Dictionary<string, double>? extra = null;
        var f = Config.Model.Ffn;
        if (mot.Count > 0 && f.DiscreteEval)
            (extra ??= [])["discrete"] = EvalLoss(() => mot.ForEach(m => m.DiscreteEval = true));
        foreach (var eg in mot.Count > 0 ? (f.EvalGroupSizes ?? []).Where(g => g != f.GroupSize).Distinct() : [])
            (extra ??= [])[$"group_{eg}"] = EvalLoss(() => mot.ForEach(m => m.EvalGroupSize = eg));
        return (loss, extra);

        double EvalLoss(Action configure)
        {
            mot.ForEach(m => { m.DiscreteEval = false; m.EvalGroupSize = null; });
            configure();
            Model.eval();
            Model.SetStats(StatsLevel.None);
            double sum = 0;
            using (no_grad())
                for (int j = 0; j < Config.Train.EvalBatches; j++)
                {
                    using var scope = NewDisposeScope();
                    var (x, y) = data.EvalBatch(j, Config.Train.BatchSize, Device);
                    sum += Model.Loss(x, y).CrossEntropy.item<float>();
                }
            mot.ForEach(m => { m.DiscreteEval = false; m.EvalGroupSize = null; });
            Model.train();
            return sum / Config.Train.EvalBatches;
        }
    }

    void Log(string line) { foreach (var s in sinks) s.OnLog(line); }

    /// <summary>The configured corpus's token store, prepared first if it is not yet (its progress in the log every 10 s).</summary>
    TokenDataset OpenCorpus(RunConfig config, ITextTokenizer tokenizer, IReadOnlyList<string>? dataRoots, string? cacheDir)
    {
        var d = config.Data;
        var corpus = Corpus.Open(d.Corpus, dataRoots, d.TextField);
        if (corpus.Pretokenized is not null && tokenizer.Name != Vocabularies.Gpt2)
            throw new ConfigException([new ConfigError("data.tokenizer", $"corpus '{d.Corpus}' is pre-tokenized with GPT-2 ids: set it to \"gpt2\"")]);
        var told = Stopwatch.StartNew();
        var folder = TokenStoreWriter.Prepare(corpus, tokenizer, d.Split, d.ValFraction, cacheDir, log: Log, progress: p =>
        {
            if (told.Elapsed < TimeSpan.FromSeconds(10)) return;
            told.Restart();
            Log($"preparing: {p.Describe()}");
        });
        return TokenDataset.Open(folder, config.Model.SeqLen, config.Train.Seed, d.Corpus, tokenizer.VocabSize);
    }

    public void Dispose() { optimizer.Dispose(); Model.Dispose(); data.Dispose(); }
}

/// <summary>The loss or gradient norm stopped being finite; the message names the step.</summary>
public sealed class TrainingDivergedException(long step, double loss, double gradNorm)
    : Exception($"training diverged at step {step}: loss {loss}, gradient norm {gradNorm} (train.stop_on_non_finite)")
{
    public long Step { get; } = step;
}

[Flags]
public enum StepStages { None = 0, Backward = 1, Clip = 2, Optimizer = 4 }

/// <summary>A config that failed validation; the message lists every field and what is wrong with it.</summary>
public sealed class ConfigException(IReadOnlyList<ConfigError> errors)
    : Exception("invalid config:\n  " + string.Join("\n  ", errors))
{
    public IReadOnlyList<ConfigError> Errors { get; } = errors;
}
