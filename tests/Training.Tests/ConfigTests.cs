using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Training.Model;

namespace MoTLab.Training.Tests;

public class ConfigTests
{
    [Theory]
    [InlineData("model.heads", "must divide d_model")]
    [InlineData("train.batch_size", "multiple of the MoT group size")]
    [InlineData("model.ffn.top_k", "must not exceed the number of experts")]
    [InlineData("model.ffn.eval_group_sizes", "32 does not divide the batch size")]
    public void Invalid_configs_name_the_field(string field, string message)
    {
        var cfg = field switch
        {
            "model.heads" => new RunConfig { Model = new ModelConfig { DModel = 64, Heads = 5 } },
            "train.batch_size" => new RunConfig { Model = new ModelConfig { Ffn = new FfnConfig { Kind = FfnKind.MoT, GroupSize = 4 } }, Train = new TrainConfig { BatchSize = 6 } },
            "model.ffn.eval_group_sizes" => new RunConfig { Model = new ModelConfig { Ffn = new FfnConfig { Kind = FfnKind.MoT, GroupSize = 4, EvalGroupSizes = [8, 32] } }, Train = new TrainConfig { BatchSize = 16 } },
            _ => new RunConfig { Model = new ModelConfig { Ffn = new FfnConfig { Kind = FfnKind.TokenChoice, Experts = 2, TopK = 3 } } },
        };
        var errors = ConfigValidator.Validate(cfg);
        Assert.Contains(errors, e => e.Field == field && e.Message.Contains(message));
    }

    [Fact]
    public void Every_preset_is_valid_and_round_trips_through_json()
    {
        foreach (var p in Presets.All)
        {
            Assert.Empty(ConfigValidator.Validate(p.Config));
            var json = JsonSerializer.Serialize(p.Config, Json.Options);
            Assert.Equal(json, JsonSerializer.Serialize(JsonSerializer.Deserialize<RunConfig>(json, Json.Options), Json.Options));
        }
        Assert.Contains("\"kind\":\"mot\"", JsonSerializer.Serialize(Presets.Find("tiny-mot")!.Config, Json.Options));
    }

    [Fact]
    public void Each_reproduce_group_is_a_matched_set()
    {
        foreach (var g in Presets.Groups)
        {
            var configs = g.Presets.Select(n => Presets.Find(n)!.Config).ToList();
            Assert.Equal(FfnKind.Dense, configs[0].Model.Ffn.Kind);                       // the baseline comes first
            Assert.Equal([FfnKind.Dense, FfnKind.MoT, FfnKind.MoT, FfnKind.TokenChoice, FfnKind.ExpertChoice], configs.Select(c => c.Model.Ffn.Kind));
            double denseFlops = ModelSize.ForwardFlopsPerToken(configs[0].Model, configs[0].Train.BatchSize);
            foreach (var c in configs)
            {
                // same data, order and schedule; only the feed-forward (and the paper's per-kind learning rate) differ
                Assert.Equal(configs[0].Data, c.Data);
                Assert.Equal(configs[0].Train with { LearningRate = 0 }, c.Train with { LearningRate = 0 });
                Assert.Equal(configs[0].Model with { Ffn = new() }, c.Model with { Ffn = new() });
                // experts flop-matched to the dense FFN; routing (and MoT's merge and emit) adds a few %, most with 128 small experts at d128
                Assert.InRange(ModelSize.ForwardFlopsPerToken(c.Model, c.Train.BatchSize) / denseFlops, 0.95, 1.15);
            }
            Assert.Equal((0.01, 0.1, 0.5, 0.1), (configs[0].Train.WarmupFraction, configs[0].Train.MinLrRatio, configs[0].Train.GradClip, configs[0].Train.WeightDecay));
        }
    }

    [Fact]
    public void The_memory_estimate_lets_the_paper_shapes_fit_an_H200_and_refuses_absurd_batches()
    {
        const double GiB = 1024.0 * 1024 * 1024;
        var medium = Presets.Find("medium-mot")!.Config;
        double need = ModelSize.TrainingBytes(medium.Model, medium.Train.BatchSize, bf16: true);
        Assert.InRange(need / GiB, 20, 141);                                     // it trains on one H200 (docs/benchmarks.md)
        Assert.True(ModelSize.TrainingBytes(medium.Model, medium.Train.BatchSize, bf16: false) > need);
        Assert.Null(ConfigValidator.CheckMemory(medium, true, 141 * GiB, "GPU memory"));

        var huge = medium with { Train = medium.Train with { BatchSize = 16_384 } };
        var error = ConfigValidator.CheckMemory(huge, true, 141 * GiB, "GPU memory");
        Assert.Equal("train.batch_size", error!.Field);
        Assert.Contains("more than the 141.0 GiB of GPU memory", error.Message);
    }

    [Fact]
    public void Unknown_json_fields_are_rejected()
    {
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<RunConfig>("{\"modle\":{}}", Json.Options));
    }

    [Theory]
    [InlineData("tiny-dense")]
    [InlineData("tiny-mot")]
    [InlineData("tiny-moe")]
    [InlineData("tiny-ec")]
    public void Parameter_accounting_matches_the_built_model(string preset)
    {
        var cfg = Presets.Find(preset)!.Config.Model;
        using var gpt = new Gpt(cfg);
        Assert.Equal(ModelSize.Parameters(cfg), gpt.ParameterCount());
    }

    [Fact]
    public void Flop_matched_mot_costs_about_the_same_as_dense_per_token()
    {
        var dense = Presets.Find("medium-dense")!.Config.Model;
        var mot = Presets.Find("medium-mot")!.Config.Model;
        double ratio = ModelSize.ForwardFlopsPerToken(mot, 256) / ModelSize.ForwardFlopsPerToken(dense, 256);
        Assert.InRange(ratio, 1.0, 1.05);                           // + controller, merge and emit
        Assert.Equal(512 * 4, mot.Ffn.ExpertHidden(512, 4));        // 4·d·g/E with g = E = 32
        Assert.Equal(512 * 4 / 8, (mot.Ffn with { Granularity = 8 }).ExpertHidden(512, 4)); // "/8": 256 experts of width 256
        Assert.True(ModelSize.Parameters(mot) > 10 * ModelSize.Parameters(dense) / 4);
    }
}
