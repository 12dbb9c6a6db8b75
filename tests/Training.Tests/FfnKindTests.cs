using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

/// <summary>The kinds' descriptors (Shared/Config/FfnKinds.cs) and their modules agree: a kind added to one and
/// forgotten in the other fails here.</summary>
public class FfnKindTests
{
    public static TheoryData<FfnKind> Kinds => new(Enum.GetValues<FfnKind>());

    [Theory, MemberData(nameof(Kinds))]
    public void Every_kind_has_one_descriptor_spelled_as_in_the_config(FfnKind kind)
    {
        var info = FfnKinds.Of(kind);
        Assert.Equal(kind, info.Kind);
        Assert.Equal(JsonSerializer.Serialize(kind, Json.Options), $"\"{info.Name}\"");
        Assert.Same(info, FfnKinds.Parse(info.Name));
        Assert.Single(FfnKinds.All, k => k.Label == info.Label);
        Assert.Null(FfnKinds.Parse(kind.ToString() + "x"));
    }

    [Theory, MemberData(nameof(Kinds))]
    public void Every_sparse_kind_has_one_module_that_reports_its_kind_and_counts_the_parameters_it_has(FfnKind kind)
    {
        var info = FfnKinds.Of(kind);
        Assert.Equal(info.Sparse, SparseFeedForward.Builders.ContainsKey(kind));
        if (!info.Sparse) return;
        var model = new ModelConfig { DModel = 16, Heads = 2, Ffn = new FfnConfig { Kind = kind, Experts = 4, GroupSize = 2, Rank = 2 } };
        using var layer = SparseFeedForward.Build(model, new WeightInit(model), ScalarType.Float32);
        Assert.Equal(kind, layer.Kind);
        Assert.Equal(ModelSize.SparseFfnParameters(model), layer.parameters().Sum(p => p.numel()));
        if (info.Adapters is { } adapters)
            Assert.Equal(adapters(model), layer.named_parameters().Where(p => LightweightExperts.IsAdapterWeight(p.name)).Sum(p => p.parameter.numel()));
    }

    [Theory, MemberData(nameof(Kinds))]
    public void The_settings_a_kind_reads_are_fields_of_the_ffn_config(FfnKind kind)
    {
        var fields = JsonSerializer.SerializeToNode(new FfnConfig { SparseBlocks = [], EvalGroupSizes = [] }, Json.Options)!.AsObject().Select(p => $"model.ffn.{p.Key}").ToHashSet();
        foreach (var path in FfnKinds.Of(kind).Settings) Assert.Contains(path, fields);
    }

    [Fact]
    public void A_kind_is_read_by_its_name_only_and_an_undefined_one_is_a_field_error()
    {
        var ex = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<FfnConfig>("{\"kind\": 1}", Json.Options));
        Assert.Contains("kind", ex.Path);
        Assert.Equal(FfnKind.TokenChoice, JsonSerializer.Deserialize<FfnConfig>("{\"kind\": \"token_choice\"}", Json.Options)!.Kind);
        var errors = ConfigValidator.Validate(new RunConfig { Model = new ModelConfig { Ffn = new FfnConfig { Kind = (FfnKind)7 } } });
        Assert.Contains(errors, e => e.Field == "model.ffn.kind" && e.Message.Contains("token_choice"));
    }
}
