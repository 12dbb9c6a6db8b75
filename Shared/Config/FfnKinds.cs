using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoTLab.Shared.Config;

/// <summary>Which feed-forward the sparse blocks use (dense blocks always use the dense FFN). MoV and MoLoRA are
/// lightweight experts on a frozen dense FFN, for fine-tuning a dense checkpoint (train.init_from). Its one spelling
/// as text (config, API, database, routing.jsonl) is the JSON name: dense, mot, token_choice, expert_choice, mov,
/// molora (<see cref="FfnKindInfo.Name"/>).</summary>
public enum FfnKind
{
    Dense, [JsonStringEnumMemberName("mot")] MoT, TokenChoice, ExpertChoice,
    [JsonStringEnumMemberName("mov")] MoV, [JsonStringEnumMemberName("molora")] MoLoRA,
}

/// <summary>A config rule: when <c>ok</c> is false, <c>field</c> (a JSON path) gets <c>message</c>.</summary>
public delegate void ConfigRule(bool ok, string field, string message);

/// <summary>Everything that differs between FFN kinds outside their module: names, sizing, parameter and FLOP counts,
/// config rules and what the kind logs. The validator, <see cref="ModelSize"/>, the New-run form, the Run page and
/// the Runs table read it; the module itself lives in Training/Model (docs/architecture.md: "Add an FFN kind").</summary>
public sealed record FfnKindInfo
{
    public required FfnKind Kind { get; init; }
    /// <summary>The kind as text everywhere: "mot" (its JSON name, worked out once: the database converts every row's kind).</summary>
    public string Name => field ??= JsonSerializer.Serialize(Kind, Json.Options).Trim('"');
    /// <summary>Short, for tables, legends and headers: "MoT".</summary>
    public required string Label { get; init; }
    /// <summary>In full, for the New-run form: "Mixture of Tokens".</summary>
    public required string Title { get; init; }
    public bool Sparse { get; init; } = true;
    /// <summary>Tokens past an expert's capacity skip the FFN: the run logs the dropped share.</summary>
    public bool DropsTokens { get; init; }
    /// <summary>The objective has router losses (load balance, z-loss): the run logs them.</summary>
    public bool AuxLosses { get; init; }
    /// <summary>The run logs one group's mixing weights (tokens × experts) in its routing snapshots.</summary>
    public bool MergeWeights { get; init; }
    public string EntropyTitle { get; init; } = "Router entropy";
    public string UsageTitle { get; init; } = "Expert usage (share of routed tokens)";
    /// <summary>The model.ffn settings this kind reads beyond those of every sparse kind (experts, granularity,
    /// expert_width, sparse_blocks): the New-run form shows these fields.</summary>
    public IReadOnlyList<string> Settings { get; init; } = [];
    /// <summary>Hidden units over all experts when expert_width is 0 (flop-matched), from the dense FFN's hidden width.</summary>
    public Func<FfnConfig, long, long> MatchedHidden { get; init; } = (f, dense) => dense * f.Experts;
    /// <summary>Parameters of one sparse FFN.</summary>
    public Func<ModelConfig, long> Parameters { get; init; } = m => RouterAndExperts(m);
    /// <summary>Lightweight experts only: the parameters of one FFN that train (the dense FFN under them is frozen).</summary>
    public Func<ModelConfig, long>? Adapters { get; init; }
    public bool Lightweight => Adapters is not null;
    /// <summary>Forward FLOPs per token of one sparse FFN, for a batch of the given tokens (matmuls, multiply-add = 2).</summary>
    public Func<ModelConfig, double, double> ForwardFlops { get; init; } = (_, _) => 0;
    /// <summary>The kind's own config rules (the validator checks those of every sparse kind).</summary>
    public Action<RunConfig, ConfigRule> Rules { get; init; } = (_, _) => { };

    internal static long RouterAndExperts(ModelConfig m)
    {
        var f = m.Ffn; long d = m.DModel, e = f.EffectiveExperts;
        return d * e + 2 * e * d * f.ExpertHidden(m.DModel, m.DenseMultiplier);
    }
}

/// <summary>The FFN kinds MoTLab trains, one descriptor each.</summary>
public static class FfnKinds
{
    static double DenseHidden(ModelConfig m) => (double)m.DenseMultiplier * m.DModel;
    static double ExpertSlotFlops(ModelConfig m) => 2 * 2 * m.DModel * (double)m.Ffn.ExpertHidden(m.DModel, m.DenseMultiplier);

    public static readonly FfnKindInfo Dense = new() { Kind = FfnKind.Dense, Label = "Dense", Title = "Dense", Sparse = false };

    public static readonly FfnKindInfo MoT = new()
    {
        Kind = FfnKind.MoT, Label = "MoT", Title = "Mixture of Tokens", MergeWeights = true,
        EntropyTitle = "Merge-weight entropy", UsageTitle = "Mix peakedness per expert (1/g uniform … 1 one token)",
        Settings = ["model.ffn.group_size", "model.ffn.temperature", "model.ffn.learnable_temperature", "model.ffn.emit_over_experts",
                    "model.ffn.discrete_eval", "model.ffn.eval_group_sizes"],
        MatchedHidden = (f, dense) => dense * f.GroupSize,                                   // g× the dense parameters, same FLOPs
        Parameters = m => FfnKindInfo.RouterAndExperts(m) + (m.Ffn.LearnableTemperature ? 2 : 0),
        // controller, merge (E mixes see every token), E·(B/g) expert calls over B tokens, emit
        ForwardFlops = (m, n) => { double d = m.DModel, e = m.Ffn.EffectiveExperts; return 2 * d * e + 2 * e * d + e * ExpertSlotFlops(m) / m.Ffn.GroupSize + 2 * e * d; },
        Rules = (c, check) =>
        {
            var f = c.Model.Ffn; var t = c.Train;
            check(f.GroupSize >= 1, "model.ffn.group_size", "must be at least 1");
            check(f.GroupSize < 1 || t.Gpus < 1 || t.BatchSize % t.Gpus != 0 || t.BatchSize / t.Gpus % f.GroupSize == 0, "train.batch_size",
                t.Gpus > 1
                    ? $"must be a multiple of the MoT group size ({f.GroupSize}) times train.gpus ({t.Gpus}): each process mixes tokens of {f.GroupSize} different examples of its share"
                    : $"must be a multiple of the MoT group size ({f.GroupSize}): MoT mixes tokens of {f.GroupSize} different examples");
            check(double.IsFinite(f.Temperature) && f.Temperature > 0, "model.ffn.temperature", "must be a finite positive number");
            check(f.EvalGroupSizes is not { Count: > 16 }, "model.ffn.eval_group_sizes", "at most 16 extra group sizes");
            foreach (var eg in f.EvalGroupSizes is { Count: <= 16 } sizes ? sizes : [])
                check(eg >= 1 && t.BatchSize % eg == 0, "model.ffn.eval_group_sizes",
                    $"{eg} does not divide the batch size ({t.BatchSize}): evaluation batches are grouped the same way");
        },
    };

    public static readonly FfnKindInfo TokenChoice = new()
    {
        Kind = FfnKind.TokenChoice, Label = "Token-choice", Title = "Token-choice MoE", DropsTokens = true, AuxLosses = true,
        Settings = ["model.ffn.top_k", "model.ffn.capacity_factor", "model.ffn.balance_loss", "model.ffn.z_loss"],
        MatchedHidden = (f, dense) => dense / Math.Max(1, f.TopK) * f.Experts,              // k experts per token
        ForwardFlops = (m, n) => 2 * m.DModel * m.Ffn.EffectiveExperts + m.Ffn.EffectiveExperts * ModelSize.TokenChoiceCapacity(m.Ffn, n) * ExpertSlotFlops(m) / n,
        Rules = (c, check) =>
        {
            var f = c.Model.Ffn;
            check(f.TopK >= 1, "model.ffn.top_k", "must be at least 1");
            check(f.TopK <= f.EffectiveExperts, "model.ffn.top_k", $"must not exceed the number of experts ({f.EffectiveExperts})");
            check(double.IsFinite(f.CapacityFactor) && f.CapacityFactor > 0, "model.ffn.capacity_factor", "must be a finite positive number");
            check(double.IsFinite(f.BalanceLoss) && f.BalanceLoss >= 0, "model.ffn.balance_loss", "must be a finite number ≥ 0");
            check(double.IsFinite(f.ZLoss) && f.ZLoss >= 0, "model.ffn.z_loss", "must be a finite number ≥ 0");
        },
    };

    public static readonly FfnKindInfo ExpertChoice = new()
    {
        Kind = FfnKind.ExpertChoice, Label = "Expert-choice", Title = "Expert-choice MoE",
        Settings = ["model.ffn.capacity"],
        MatchedHidden = (f, dense) => (long)(dense / Math.Max(0.01, f.Capacity)) * f.Experts,
        ForwardFlops = (m, n) => 2 * m.DModel * m.Ffn.EffectiveExperts + m.Ffn.EffectiveExperts * ModelSize.ExpertChoiceCapacity(m.Ffn, n) * ExpertSlotFlops(m) / n,
        Rules = (c, check) =>
        {
            var f = c.Model.Ffn;
            check(f.Capacity > 0 && f.Capacity <= f.EffectiveExperts, "model.ffn.capacity", $"must be in (0, experts = {f.EffectiveExperts}]");
        },
    };

    /// <summary>The rules both lightweight kinds share: they fine-tune a dense checkpoint in its shape.</summary>
    static void LightweightRules(RunConfig c, ConfigRule check)
    {
        var f = c.Model.Ffn;
        check(c.Train.InitFrom is not null, "train.init_from", $"{Of(f.Kind).Label} fine-tunes a dense checkpoint: name its run or checkpoint folder");
        check(f.Granularity == 1 && f.ExpertWidth == 0, "model.ffn.granularity", "lightweight experts keep the dense FFN's shape (granularity 1, expert_width 0)");
    }

    static long DenseFfn(ModelConfig m) => 2L * m.DModel * m.DenseMultiplier * m.DModel;
    static long MoVAdapters(ModelConfig m) => (long)m.DModel * m.Ffn.Experts + (long)m.Ffn.Experts * m.DenseMultiplier * m.DModel;
    static long MoLoRAAdapters(ModelConfig m) => (long)m.DModel * m.Ffn.Experts + 2L * m.Ffn.Experts * m.Ffn.Rank * (m.DModel + (long)m.DenseMultiplier * m.DModel);

    public static readonly FfnKindInfo MoV = new()
    {
        Kind = FfnKind.MoV, Label = "MoV", Title = "Mixture of vectors (IA³ experts)",
        UsageTitle = "Mean router weight per expert (soft: nothing drops)",
        Adapters = MoVAdapters, Parameters = m => DenseFfn(m) + MoVAdapters(m),
        // the dense FFN, the router, then MoV's p·(l − 1) per site
        ForwardFlops = (m, _) => 2 * DenseFfn(m) + 2.0 * m.DModel * m.Ffn.Experts + 2 * m.Ffn.Experts * DenseHidden(m),
        Rules = LightweightRules,
    };

    public static readonly FfnKindInfo MoLoRA = new()
    {
        Kind = FfnKind.MoLoRA, Label = "MoLoRA", Title = "Mixture of LoRA experts",
        UsageTitle = "Mean router weight per expert (soft: nothing drops)",
        Settings = ["model.ffn.rank", "model.ffn.lora_alpha"],
        Adapters = MoLoRAAdapters, Parameters = m => DenseFfn(m) + MoLoRAAdapters(m),
        // the dense FFN, the router, then two codes and their up-projections per site
        ForwardFlops = (m, _) => 2 * DenseFfn(m) + 2.0 * m.DModel * m.Ffn.Experts + 2 * 2 * m.Ffn.Experts * m.Ffn.Rank * (m.DModel + DenseHidden(m)),
        Rules = (c, check) =>
        {
            var f = c.Model.Ffn;
            LightweightRules(c, check);
            check(f.Rank is >= 1 and <= 4096, "model.ffn.rank", "must be between 1 and 4,096");
            check(double.IsFinite(f.LoraAlpha) && f.LoraAlpha > 0, "model.ffn.lora_alpha", "must be a finite positive number");
        },
    };

    /// <summary>Every kind, in the enum's order.</summary>
    public static readonly IReadOnlyList<FfnKindInfo> All = [Dense, MoT, TokenChoice, ExpertChoice, MoV, MoLoRA];

    /// <summary>The kinds a run is trained from scratch with (lightweight kinds fine-tune a dense run).</summary>
    public static IEnumerable<FfnKindInfo> FromScratch => All.Where(k => !k.Lightweight);

    public static FfnKindInfo Of(FfnKind kind) => Enum.IsDefined(kind) ? All[(int)kind] : throw new ArgumentOutOfRangeException(nameof(kind), kind, "not an FFN kind");

    /// <summary>The kind named <paramref name="name"/> (its <see cref="FfnKindInfo.Name"/>), or null.</summary>
    public static FfnKindInfo? Parse(string? name) => All.FirstOrDefault(k => k.Name == name);

    public static FfnKindInfo Info(this FfnKind kind) => Of(kind);
}
