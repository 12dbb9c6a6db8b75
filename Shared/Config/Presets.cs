namespace MoTLab.Shared.Config;

/// <summary>Named starting points. `tiny-*` train on two CPU cores in seconds per hundred steps on the
/// built-in synthetic corpus; `mini-*` (d256 L4 h4) and `medium-*` (d512 L8 h8) are the MoT paper's shapes
/// (seq 256, batch 256, GPT-2 BPE, English prose) and want a GPU.</summary>
public static class Presets
{
    public sealed record Preset(string Name, string Description, RunConfig Config);

    /// <summary>Runs meant to be launched together and compared: same data, order and seed, equal FLOPs per token.</summary>
    public sealed record Group(string Name, string Description, IReadOnlyList<string> Presets);

    static readonly ModelConfig Tiny = new() { DModel = 64, Layers = 2, Heads = 4, SeqLen = 64 };
    static readonly TrainConfig TinyTrain = new() { Steps = 200, BatchSize = 16, LearningRate = 3e-3, LogEvery = 10, SnapshotEvery = 25, EvalEvery = 50 };
    // the paper's shapes as the paper's authors build them: a head of its own, weights drawn as theirs (model.init: paper)
    static readonly ModelConfig Mini = new() { DModel = 256, Layers = 4, Heads = 4, SeqLen = 256, VocabSize = 50257, TiedHead = false, Init = ModelConfig.PaperInit };
    static readonly ModelConfig Medium = new() { DModel = 512, Layers = 8, Heads = 8, SeqLen = 256, VocabSize = 50257, TiedHead = false, Init = ModelConfig.PaperInit };
    static readonly TrainConfig PaperTrain = new()
    {
        Steps = 5000, BatchSize = 256, WarmupFraction = 0.01, MinLrRatio = 0.1, GradClip = 0.5, WeightDecay = 0.1,
        LogEvery = 10, SnapshotEvery = 100, EvalEvery = 250, EvalBatches = 8, CheckpointEvery = 1000,
        EvalEarlyEvery = 25, EvalEarlyUntil = 500,   // steps-to-reach a loss is read to 25 steps where the runs part
    };
    /// <summary>The paper presets' English prose: debian-docs where Debian's documentation packages are installed (52 MB),
    /// else the .NET docs (1.4 M GPT-2 tokens, which small models overfit within a few hundred steps).</summary>
    static readonly string ProseCorpus = Data.Corpus.IsAvailable(Data.Corpus.DebianDocs) ? Data.Corpus.DebianDocs : Data.Corpus.DotnetDocs;
    static readonly DataConfig Prose = new() { Corpus = ProseCorpus, Tokenizer = "gpt2" };
    // laptop-sized: the paper's recipe at a quarter of mini's width, byte tokens (a CPU cannot afford a 50k softmax)
    static readonly ModelConfig Cpu = new() { DModel = 128, Layers = 4, Heads = 4, SeqLen = 128 };
    static readonly TrainConfig CpuTrain = PaperTrain with { Steps = 1000, BatchSize = 64, EvalEvery = 100, EvalBatches = 4, CheckpointEvery = 250, EvalEarlyEvery = 0 };
    static readonly DataConfig CpuProse = new() { Corpus = ProseCorpus, Tokenizer = "byte" };
    static readonly FfnConfig CpuMoT = new() { Kind = FfnKind.MoT, Experts = 16, GroupSize = 16 };

    static readonly FfnConfig TinyMoT = new() { Kind = FfnKind.MoT, Experts = 8, GroupSize = 4 };
    static readonly FfnConfig TinyMoE = new() { Kind = FfnKind.TokenChoice, Experts = 8, TopK = 1, CapacityFactor = 1.25 };
    static readonly FfnConfig TinyEC = new() { Kind = FfnKind.ExpertChoice, Experts = 8, Capacity = 1.0 };
    static readonly FfnConfig PaperMoT = new() { Kind = FfnKind.MoT, Experts = 32, GroupSize = 32 };
    static readonly FfnConfig PaperMoE = new() { Kind = FfnKind.TokenChoice, Experts = 32, TopK = 1, CapacityFactor = 1.25 };
    static readonly FfnConfig PaperEC = new() { Kind = FfnKind.ExpertChoice, Experts = 32, Capacity = 1.0 };

    public static readonly IReadOnlyList<Preset> All =
    [
        Make("tiny-dense", "Dense GPT, d64 L2, byte tokens, synthetic corpus (CPU)", Tiny, new(), TinyTrain, new()),
        Make("tiny-mot", "Mixture of Tokens, 8 experts, group 4, flop-matched (CPU)", Tiny, TinyMoT, TinyTrain, new()),
        Make("tiny-moe", "Token-choice MoE, 8 experts, top-1, capacity 1.25 (CPU)", Tiny, TinyMoE, TinyTrain, new()),
        Make("tiny-ec", "Expert-choice MoE, 8 experts, capacity 1 (CPU)", Tiny, TinyEC, TinyTrain, new()),
        Make("mini-dense", "Paper mini: dense d256 L4 h4, lr 4e-3", Mini, new(), PaperTrain with { LearningRate = 4e-3 }, Prose),
        Make("mini-mot", "Paper mini: MoT 32 experts, group 32, later half, lr 2e-3", Mini, PaperMoT, PaperTrain with { LearningRate = 2e-3 }, Prose),
        Make("mini-mot-32e8", "Paper mini: MoT 32E/8 granularity (256 experts)", Mini, PaperMoT with { Granularity = 8 }, PaperTrain with { LearningRate = 2e-3 }, Prose),
        Make("mini-moe", "Paper mini: token-choice MoE 32 experts, top-1", Mini, PaperMoE, PaperTrain with { LearningRate = 2e-3 }, Prose),
        Make("mini-ec", "Paper mini: expert-choice MoE 32 experts, capacity 1", Mini, PaperEC, PaperTrain with { LearningRate = 2e-3 }, Prose),
        Make("medium-dense", "Paper medium: dense d512 L8 h8", Medium, new(), PaperTrain with { LearningRate = 7e-4, Steps = 10000 }, Prose),
        Make("medium-mot", "Paper medium: MoT 32 experts, group 32 in blocks 5–8, lr 7e-4", Medium, PaperMoT, PaperTrain with { LearningRate = 7e-4, Steps = 10000 }, Prose),
        Make("medium-mot-32e8", "Paper medium: MoT 32E/8 granularity (256 experts)", Medium, PaperMoT with { Granularity = 8 }, PaperTrain with { LearningRate = 7e-4, Steps = 10000 }, Prose),
        Make("medium-moe", "Paper medium: token-choice MoE 32 experts, top-1", Medium, PaperMoE, PaperTrain with { LearningRate = 7e-4, Steps = 10000 }, Prose),
        Make("medium-ec", "Paper medium: expert-choice MoE 32 experts, capacity 1", Medium, PaperEC, PaperTrain with { LearningRate = 7e-4, Steps = 10000 }, Prose),
        Make("cpu-dense", "Laptop reproduction: dense d128 L4 h4, byte tokens, English prose, lr 4e-3", Cpu, new(), CpuTrain with { LearningRate = 4e-3 }, CpuProse),
        Make("cpu-mot", "Laptop reproduction: MoT 16 experts, group 16, later half, lr 2e-3", Cpu, CpuMoT, CpuTrain with { LearningRate = 2e-3 }, CpuProse),
        Make("cpu-mot-16e8", "Laptop reproduction: MoT 16E/8 granularity (128 experts)", Cpu, CpuMoT with { Granularity = 8 }, CpuTrain with { LearningRate = 2e-3 }, CpuProse),
        Make("cpu-moe", "Laptop reproduction: token-choice MoE 16 experts, top-1", Cpu, CpuMoT with { Kind = FfnKind.TokenChoice, TopK = 1, CapacityFactor = 1.25 }, CpuTrain with { LearningRate = 2e-3 }, CpuProse),
        Make("cpu-ec", "Laptop reproduction: expert-choice MoE 16 experts, capacity 1", Cpu, CpuMoT with { Kind = FfnKind.ExpertChoice, Capacity = 1.0 }, CpuTrain with { LearningRate = 2e-3 }, CpuProse),
    ];

    /// <summary>"Reproduce" groups: the MoT paper's comparison — dense, MoT, MoT /8 granularity, token-choice and
    /// expert-choice MoE — at one shape. The first preset is the baseline the others are measured against.</summary>
    public static readonly IReadOnlyList<Group> Groups =
    [
        new("reproduce-cpu", "The paper's comparison at laptop size (d128 L4, byte tokens): 5 runs of 1,000 steps on a CPU",
            ["cpu-dense", "cpu-mot", "cpu-mot-16e8", "cpu-moe", "cpu-ec"]),
        new("reproduce-mini", "The paper's mini comparison (d256 L4 h4, GPT-2 BPE, seq 256, batch 256): wants a GPU",
            ["mini-dense", "mini-mot", "mini-mot-32e8", "mini-moe", "mini-ec"]),
        new("reproduce-medium", "The paper's medium comparison (d512 L8 h8): wants a GPU",
            ["medium-dense", "medium-mot", "medium-mot-32e8", "medium-moe", "medium-ec"]),
    ];

    public static Group? FindGroup(string name) => Groups.FirstOrDefault(g => g.Name.Equals(name, StringComparison.OrdinalIgnoreCase));

    public static Preset? Find(string name) => All.FirstOrDefault(p => p.Name.Equals(name, StringComparison.OrdinalIgnoreCase));

    static Preset Make(string name, string description, ModelConfig model, FfnConfig ffn, TrainConfig train, DataConfig data) =>
        new(name, description, new RunConfig { Name = name, Preset = name, Model = model with { Ffn = ffn }, Train = train, Data = data });
}
