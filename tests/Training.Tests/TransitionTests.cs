using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using MoTLab.Training.Train;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

/// <summary>Transition tuning: a MoT model becomes a token-choice MoE sharing its controller and experts.</summary>
public class TransitionTests
{
    static (Gpt Mot, Gpt TokenChoice, RunConfig Config) Convert(double capacityFactor, TestUtil.TempDir dir)
    {
        var motCfg = new RunConfig { Name = "mot", Model = TestUtil.TinyModel(TestUtil.Mot(experts: 4, group: 4) with { LearnableTemperature = true }) };
        manual_seed(3);
        var mot = new Gpt(motCfg.Model);
        Checkpoint.SaveWeights(Path.Combine(dir.Path, Checkpoint.WeightsFile), motCfg, mot);
        var tcCfg = Transition.ToTokenChoice(motCfg, dir.Path, steps: 10, capacityFactor);
        Assert.Empty(ConfigValidator.Validate(tcCfg));
        var tc = new Gpt(tcCfg.Model);
        Checkpoint.LoadModel(dir.Path, tc, Transition.MapWeightName);
        mot.eval(); tc.eval();
        return (mot, tc, tcCfg);
    }

    [Fact]
    public void At_the_conversion_point_token_choice_computes_what_MoT_computes_on_one_sequence()
    {
        using var dir = new TestUtil.TempDir();
        var (mot, tc, cfg) = Convert(capacityFactor: 4, dir);                   // C = N: no token can be dropped
        Assert.Equal(FfnKind.TokenChoice, cfg.Model.Ffn.Kind);
        Assert.Equal(dir.Path, cfg.Train.InitFrom);
        using var _ = no_grad();
        var ids = randint(0, 32, [3, 8], dtype: ScalarType.Int64);                // (B, T)
        using var together = tc.forward(ids);                                   // token-choice on the whole batch
        for (int b = 0; b < 3; b++)
        {
            using var one = mot.forward(ids[b..(b + 1)]);                         // MoT at batch 1: each token to its argmax expert
            Assert.True(one.allclose(together[b..(b + 1)], rtol: 1e-5, atol: 1e-5), $"sequence {b}");
            using var alone = tc.forward(ids[b..(b + 1)]);                        // and the transitioned model samples at batch 1
            Assert.True(one.allclose(alone, rtol: 1e-5, atol: 1e-5));
        }
    }

    [Fact]
    public void The_router_keeps_learning_through_the_straight_through_gate()
    {
        using var dir = new TestUtil.TempDir();
        var (_, tc, _) = Convert(capacityFactor: 2, dir);
        tc.train();
        var ids = randint(0, 32, [4, 8], dtype: ScalarType.Int64);
        var (objective, _, _) = tc.Loss(ids, ids.roll(1, 1));
        objective.backward();
        var router = tc.named_parameters().Single(p => p.name == "blocks.1.ffn.router").parameter;
        Assert.True(router.grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void A_MoT_run_starts_from_a_MoT_checkpoint_with_its_controller_and_temperatures()
    {
        using var baseDir = new TestUtil.TempDir();
        using var nextDir = new TestUtil.TempDir();
        var preset = Presets.Find("tiny-mot")!.Config;
        var mot = preset with
        {
            Model = preset.Model with { Ffn = preset.Model.Ffn with { LearnableTemperature = true } },
            Train = preset.Train with { Steps = 10, EvalEvery = 10, LogEvery = 10 },
        };
        Dictionary<string, Tensor> trained;
        using (var t = new Trainer(mot, baseDir.Path, "cpu", []))
        {
            t.Run();
            trained = t.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        }
        using var next = new Trainer(mot with { Train = mot.Train with { InitFrom = baseDir.Path } }, nextDir.Path, "cpu", []);
        var loaded = next.Model.state_dict();
        Assert.Contains(loaded.Keys, k => k.EndsWith(".ffn.controller", StringComparison.Ordinal));
        Assert.All(trained, kv => Assert.True(kv.Value.allclose(loaded[kv.Key], rtol: 0, atol: 0), $"{kv.Key} was not taken from the checkpoint"));
    }

    [Fact]
    public void Only_MoT_transitions_and_a_dense_checkpoint_does_not_load()
    {
        var dense = new RunConfig { Model = TestUtil.TinyModel(new FfnConfig()) };
        Assert.Throws<ArgumentException>(() => Transition.ToTokenChoice(dense, "x", 10));
        Assert.Equal("blocks.3.ffn.router", Transition.MapWeightName("blocks.3.ffn.controller"));
        Assert.Null(Transition.MapWeightName("blocks.3.ffn.logTempEmit"));
        Assert.Equal("blocks.3.ffn.experts.w1", Transition.MapWeightName("blocks.3.ffn.experts.w1"));
    }
}
