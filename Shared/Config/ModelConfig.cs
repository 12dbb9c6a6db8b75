namespace MoTLab.Shared.Config;

/// <summary>Shape of the GPT decoder. Defaults are the `tiny` CPU shape.</summary>
public sealed record ModelConfig
{
    public int VocabSize { get; init; } = 256;     // set from the tokenizer (byte 256, GPT-2 50257)
    public int DModel { get; init; } = 64;         // residual width
    public int Layers { get; init; } = 2;
    public int Heads { get; init; } = 4;           // must divide DModel
    public int SeqLen { get; init; } = 64;         // context length (learned positions)
    public double Dropout { get; init; } = 0.0;    // the MoT paper trains without dropout
    public bool TiedHead { get; init; } = true;    // share token embedding and output head (GPT-2)
    public int DenseMultiplier { get; init; } = 4; // dense FFN hidden = 4·d
    public FfnConfig Ffn { get; init; } = new();
    /// <summary>How weights start: "gpt2" (N(0, 0.02), residual outputs scaled by 1/√(2L); what the tiny presets and
    /// older runs use) or "paper" (the MoT authors' truncated normal with σ = √(init_scale / fan_in), which trains the
    /// paper's shapes markedly better: docs/training-parity.md).</summary>
    public string Init { get; init; } = Gpt2Init;
    public const string Gpt2Init = "gpt2", PaperInit = "paper";
    public double InitScale { get; init; } = 1.0;  // "paper" only

    [System.Text.Json.Serialization.JsonIgnore] public int HeadDim => DModel / Heads;

    /// <summary>Indices (0-based) of blocks that use the sparse FFN.</summary>
    public IReadOnlyList<int> SparseBlockIndices()
    {
        if (Ffn.Kind == FfnKind.Dense) return [];
        if (Ffn.SparseBlocks is { Count: > 0 } chosen) return chosen;
        if (Ffn.IsLightweight) return Enumerable.Range(0, Layers).ToArray();  // adapters go everywhere, as in Zadouri et al.
        return Enumerable.Range(Layers / 2, Layers - Layers / 2).ToArray(); // the later half, as in the paper
    }
}

/// <summary>Sparse feed-forward settings (docs/architecture.md, "The feed-forward kinds"; each kind's rules in FfnKinds). Unused fields are ignored by other kinds.</summary>
public sealed record FfnConfig
{
    public FfnKind Kind { get; init; } = FfnKind.Dense;
    /// <summary>Blocks that get the sparse FFN; empty = the later half.</summary>
    public IReadOnlyList<int>? SparseBlocks { get; init; }
    public int Experts { get; init; } = 8;
    /// <summary>Hidden width of one expert; 0 = flop-matched (MoT: 4·d·g/E; token-choice: 4·d/k; expert-choice: 4·d/capacity).</summary>
    public int ExpertWidth { get; init; } = 0;
    /// <summary>"/k" granularity: experts ×k, expert width ÷k.</summary>
    public int Granularity { get; init; } = 1;

    // Mixture of Tokens
    public int GroupSize { get; init; } = 8;               // tokens mixed per group (from different examples)
    public double Temperature { get; init; } = 1.0;        // softmax temperature over the group
    public bool LearnableTemperature { get; init; } = false; // separate learnable merge and emit temperatures
    public bool EmitOverExperts { get; init; } = false;    // emit softmax over experts instead of reusing merge weights
    public bool DiscreteEval { get; init; } = false;       // evaluation: one-hot argmax of the merge weights
    public IReadOnlyList<int>? EvalGroupSizes { get; init; } // evaluation also at these group sizes (e.g. g·2, g·4): extra eval curves

    // Token-choice MoE
    public int TopK { get; init; } = 1;
    public double CapacityFactor { get; init; } = 1.25;    // C = min(floor(cf·N·k/E), N)
    public double BalanceLoss { get; init; } = 0.01;       // α of the load-balancing loss
    public double ZLoss { get; init; } = 0.0;              // β of the router z-loss (ST-MoE uses 1e-3)
    public bool StraightThroughGate { get; init; } = false; // output unscaled (gate/gate.detach() = 1), router still learns: a MoT transition keeps MoT's batch-1 function

    // Expert-choice MoE
    public double Capacity { get; init; } = 1.0;           // C = round(capacity·N/E) tokens per expert

    // Lightweight experts (MoV, MoLoRA)
    public int Rank { get; init; } = 4;                    // MoLoRA: rank r of each adapter
    public double LoraAlpha { get; init; } = 8;            // MoLoRA: adapters are scaled by α/r

    [System.Text.Json.Serialization.JsonIgnore] public bool IsLightweight => FfnKinds.Of(Kind).Lightweight;

    [System.Text.Json.Serialization.JsonIgnore] public int EffectiveExperts => Experts * Math.Max(1, Granularity);

    /// <summary>Hidden width of one expert after sizing (the kind's <see cref="FfnKindInfo.MatchedHidden"/>) and granularity.</summary>
    public int ExpertHidden(int dModel, int denseMultiplier)
    {
        int k = Math.Max(1, Granularity);
        if (ExpertWidth > 0) return Math.Max(1, ExpertWidth / k);
        long total = FfnKinds.Of(Kind).MatchedHidden(this, (long)denseMultiplier * dModel);
        return (int)Math.Max(1, total / EffectiveExperts);
    }
}
