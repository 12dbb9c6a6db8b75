using MoTLab.Shared.Config;

namespace MoTLab.WebApp.Components;

/// <summary>The New-run form's editable state: flat, mutable fields that map to and from a RunConfig.</summary>
public sealed class RunForm
{
    public string Name { get; set; } = "run";
    public string? Preset { get; set; }
    public int DModel { get; set; }
    public int Layers { get; set; }
    public int Heads { get; set; }
    public int SeqLen { get; set; }
    public double Dropout { get; set; }
    public FfnKind Kind { get; set; }
    public string SparseBlocks { get; set; } = "";
    public int Experts { get; set; }
    public int ExpertWidth { get; set; }
    public int Granularity { get; set; } = 1;
    public int GroupSize { get; set; }
    public double Temperature { get; set; } = 1;
    public bool LearnableTemperature { get; set; }
    public bool EmitOverExperts { get; set; }
    public bool DiscreteEval { get; set; }
    public string EvalGroupSizes { get; set; } = "";
    public int TopK { get; set; } = 1;
    public double CapacityFactor { get; set; } = 1.25;
    public double BalanceLoss { get; set; } = 0.01;
    public double ZLoss { get; set; }
    public double Capacity { get; set; } = 1;
    public int Steps { get; set; }
    public int BatchSize { get; set; }
    public double LearningRate { get; set; }
    public double WarmupFraction { get; set; }
    public double WeightDecay { get; set; }
    public double GradClip { get; set; }
    public long Seed { get; set; }
    public int LogEvery { get; set; }
    public int EvalEvery { get; set; }
    public int EvalEarlyEvery { get; set; }
    public int EvalEarlyUntil { get; set; }
    public int SnapshotEvery { get; set; }
    public string Corpus { get; set; } = "synthetic";
    public string Tokenizer { get; set; } = "byte";
    public string Device { get; set; } = "cpu";
    public string Tags { get; set; } = "";
    public string Notes { get; set; } = "";
    RunConfig template = new();

    public static RunForm From(RunConfig c) => new()
    {
        template = c, Name = c.Name, Preset = c.Preset, DModel = c.Model.DModel, Layers = c.Model.Layers, Heads = c.Model.Heads, SeqLen = c.Model.SeqLen,
        Dropout = c.Model.Dropout, Kind = c.Model.Ffn.Kind, SparseBlocks = string.Join(",", c.Model.Ffn.SparseBlocks?.Select(b => b + 1) ?? []),
        Experts = c.Model.Ffn.Experts, ExpertWidth = c.Model.Ffn.ExpertWidth, Granularity = c.Model.Ffn.Granularity, GroupSize = c.Model.Ffn.GroupSize,
        Temperature = c.Model.Ffn.Temperature, LearnableTemperature = c.Model.Ffn.LearnableTemperature, EmitOverExperts = c.Model.Ffn.EmitOverExperts,
        DiscreteEval = c.Model.Ffn.DiscreteEval, EvalGroupSizes = string.Join(",", c.Model.Ffn.EvalGroupSizes ?? []), TopK = c.Model.Ffn.TopK, CapacityFactor = c.Model.Ffn.CapacityFactor, BalanceLoss = c.Model.Ffn.BalanceLoss,
        ZLoss = c.Model.Ffn.ZLoss, Capacity = c.Model.Ffn.Capacity, Steps = c.Train.Steps, BatchSize = c.Train.BatchSize, LearningRate = c.Train.LearningRate,
        WarmupFraction = c.Train.WarmupFraction, WeightDecay = c.Train.WeightDecay, GradClip = c.Train.GradClip, Seed = c.Train.Seed,
        LogEvery = c.Train.LogEvery, EvalEvery = c.Train.EvalEvery, SnapshotEvery = c.Train.SnapshotEvery,
        EvalEarlyEvery = c.Train.EvalEarlyEvery, EvalEarlyUntil = c.Train.EvalEarlyUntil, Corpus = c.Data.Corpus, Tokenizer = c.Data.Tokenizer,
    };

    /// <summary>The config these fields describe, or the field whose text cannot be read and why.</summary>
    public (RunConfig? Config, (string Field, string Message)? Error) ToConfig()
    {
        var (blocks, badBlock) = Numbers(SparseBlocks);
        if (badBlock is not null) return (null, ("model.ffn.sparse_blocks", $"'{badBlock}' is not a block number (1-based, comma separated)"));
        var (evalGroups, badGroup) = Numbers(EvalGroupSizes);
        if (badGroup is not null) return (null, ("model.ffn.eval_group_sizes", $"'{badGroup}' is not a number (comma separated, e.g. 64,128)"));
        var c = template;
        return (c with
        {
            Name = Name, Preset = Preset,
            Model = c.Model with
            {
                DModel = DModel, Layers = Layers, Heads = Heads, SeqLen = SeqLen, Dropout = Dropout,
                Ffn = c.Model.Ffn with
                {
                    Kind = Kind, SparseBlocks = blocks?.Select(b => b - 1).ToList(), Experts = Experts, ExpertWidth = ExpertWidth, Granularity = Granularity, GroupSize = GroupSize,
                    Temperature = Temperature, LearnableTemperature = LearnableTemperature, EmitOverExperts = EmitOverExperts, DiscreteEval = DiscreteEval,
                    EvalGroupSizes = evalGroups,
                    TopK = TopK, CapacityFactor = CapacityFactor, BalanceLoss = BalanceLoss, ZLoss = ZLoss, Capacity = Capacity,
                },
            },
            Train = c.Train with
            {
                Steps = Steps, BatchSize = BatchSize, LearningRate = LearningRate, WarmupFraction = WarmupFraction, WeightDecay = WeightDecay,
                GradClip = GradClip, Seed = Seed, LogEvery = LogEvery, EvalEvery = EvalEvery, SnapshotEvery = SnapshotEvery,
                EvalEarlyEvery = EvalEarlyEvery, EvalEarlyUntil = EvalEarlyUntil,
            },
            Data = c.Data with { Corpus = Corpus, Tokenizer = Tokenizer },
        }, null);
    }

    /// <summary>A comma-separated list of integers (null when empty), or the first part that is not one.</summary>
    static (List<int>? Values, string? Bad) Numbers(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) return (null, null);
        var values = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            if (int.TryParse(part, out var v)) values.Add(v);
            else return (null, part);
        return (values, null);
    }
}
