using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

/// <summary>model.init: each scheme's per-weight spread on a small model (d 64, 2 layers, MoT in the second block).</summary>
public class WeightInitTests
{
    static readonly ModelConfig Model = new()
    {
        DModel = 64, Layers = 2, Heads = 4, SeqLen = 32, VocabSize = 256, TiedHead = false,
        Ffn = new FfnConfig { Kind = FfnKind.MoT, Experts = 8, GroupSize = 4 },
    };

    static Dictionary<string, (double Std, double MaxAbs, long[] Shape)> Spread(ModelConfig cfg)
    {
        manual_seed(1);
        using var gpt = new Gpt(cfg);
        return gpt.named_parameters().Where(p => p.parameter.dim() >= 2).ToDictionary(p => p.name,
            p => (p.parameter.std().item<float>() * 1.0, p.parameter.abs().max().item<float>() * 1.0, p.parameter.shape));
    }

    [Fact]
    public void Paper_init_draws_every_weight_with_std_one_over_the_root_of_its_fan_in()
    {
        var s = Spread(Model with { Init = "paper" });
        void Near(string name, double std) =>
            Assert.True(Math.Abs(s[name].Std - std) < 0.06 * std, $"{name}: std {s[name].Std:G4}, expected {std:G4}");
        Near("blocks.0.attn.qkv", 1 / Math.Sqrt(64));
        Near("blocks.0.attn.proj", 1 / Math.Sqrt(64));
        Near("blocks.0.ffn.w1", 1 / Math.Sqrt(64));
        Near("blocks.0.ffn.w2", 1 / Math.Sqrt(256));
        Near("blocks.1.ffn.controller", 1 / Math.Sqrt(64));
        Near("blocks.1.ffn.experts.w1", 1 / Math.Sqrt(64));
        Near("blocks.1.ffn.experts.w2", 1 / Math.Sqrt(s["blocks.1.ffn.experts.w2"].Shape[1]));   // fan-in: the expert width
        Near("head", 1 / Math.Sqrt(64));
        // embeddings take one-hot inputs (fan-in 1): N(0, 1) truncated at ±2, whose std is 0.880
        Near("wte.weight", 0.8796);
        Assert.True(s["wte.weight"].MaxAbs <= 2.0);

        // tied to the head, the token embedding is the head's weight too and is drawn as the head (fan-in d)
        var tied = Spread(Model with { Init = "paper", TiedHead = true });
        Assert.True(Math.Abs(tied["wte.weight"].Std - 1 / Math.Sqrt(64)) < 0.06 / Math.Sqrt(64), $"tied wte: std {tied["wte.weight"].Std:G4}");
        Assert.False(tied.ContainsKey("head"));
    }

    [Fact]
    public void Gpt2_init_is_0_02_with_residual_outputs_scaled_by_depth()
    {
        var s = Spread(Model);                                    // the default
        double residual = 0.02 / Math.Sqrt(2 * Model.Layers);
        foreach (var (name, (std, _, _)) in s)
        {
            bool isResidualOut = name.EndsWith("attn.proj") || name.EndsWith("ffn.w2") || name.EndsWith("experts.w2");
            double expected = isResidualOut ? residual : 0.02;
            Assert.True(Math.Abs(std - expected) < 0.08 * expected, $"{name}: std {std:G4}, expected {expected:G4}");
        }
    }

    [Fact]
    public void The_scheme_is_validated_by_name()
    {
        var cfg = new RunConfig { Model = Model with { Init = "xavier" } };
        Assert.Contains(ConfigValidator.Validate(cfg), e => e.Field == "model.init");
        Assert.Contains(ConfigValidator.Validate(new RunConfig { Model = Model with { InitScale = double.PositiveInfinity } }), e => e.Field == "model.init_scale");
    }
}
