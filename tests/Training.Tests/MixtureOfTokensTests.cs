using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

public class MixtureOfTokensTests
{
    static MixtureOfTokens Create(FfnConfig cfg, int d = 8, long seed = 1)
    {
        manual_seed(seed);
        return new MixtureOfTokens(d, cfg, 4, new WeightInit(new ModelConfig()), ScalarType.Float32);
    }

    [Fact]
    public void Merge_weights_sum_to_one_over_the_group_for_every_expert()
    {
        using var mot = Create(TestUtil.Mot(experts: 3, group: 4));
        using var x = TestUtil.Randn(2, 8, 5, 8);                 // (B=8, T=5, d=8)
        using var w = mot.MergeWeights(x, 4);                    // (T, G, g, E)
        Assert.Equal(new long[] { 5, 2, 4, 3 }, w.shape);
        using var sums = w.sum(2);                               // (T, G, E)
        Assert.True(sums.allclose(ones_like(sums), rtol: 0, atol: 1e-6));
        Assert.True(w.gt(0).all().item<bool>(), "softmax weights are strictly positive");
    }

    [Fact]
    public void One_expert_and_group_of_one_equals_a_dense_ffn_with_the_same_weights()
    {
        using var mot = Create(TestUtil.Mot(experts: 1, group: 1));
        var (w1, w2) = mot.ExpertWeights.Expert(0);              // (d, 4d), (4d, d): flop-matched width 4·d·g/E = 4d
        Assert.Equal(new long[] { 8, 32 }, w1.shape);
        using var dense = DenseFeedForward.FromWeights(w1, w2, ScalarType.Float32);
        using var x = TestUtil.Randn(3, 6, 4, 8);
        using var a = mot.forward(x);
        using var b = dense.forward(x);
        Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-6), $"max diff {(a - b).abs().max().item<float>()}");
    }

    [Fact]
    public void Output_at_position_t_ignores_later_positions_but_mixes_other_examples_at_t()
    {
        using var mot = Create(TestUtil.Mot(experts: 4, group: 4));
        using var x = TestUtil.Randn(4, 4, 6, 8);                // one group of 4 examples, T = 6
        using var baseline = mot.forward(x);
        const int t = 2;

        // a later position of any example changes: nothing at positions ≤ t moves
        using var later = x.clone();
        later[1, t + 1] = later[1, t + 1] + 5.0;
        using var outLater = mot.forward(later);
        Assert.True(outLater[.., ..(t + 1)].eq(baseline[.., ..(t + 1)]).all().item<bool>());
        Assert.False(outLater[1, t + 1].allclose(baseline[1, t + 1]), "the changed position itself does change");

        // another example of the same group at position t changes: example 0 at t changes
        using var sibling = x.clone();
        sibling[2, t] = sibling[2, t] + 5.0;
        using var outSibling = mot.forward(sibling);
        Assert.False(outSibling[0, t].allclose(baseline[0, t], rtol: 0, atol: 1e-7), "tokens of the same group are mixed");
        Assert.True(outSibling[0, ..t].eq(baseline[0, ..t]).all().item<bool>(), "earlier positions are untouched");
    }

    [Fact]
    public void Whole_model_is_causal_in_positions()
    {
        var cfg = TestUtil.TinyModel(TestUtil.Mot(experts: 4, group: 2));
        manual_seed(5);
        using var gpt = new Gpt(cfg);
        gpt.eval();
        using var idx = randint(0, cfg.VocabSize, [4, cfg.SeqLen]);
        using var baseline = gpt.forward(idx);
        for (int t = 0; t < cfg.SeqLen - 1; t++)
        {
            using var changed = idx.clone();
            changed[3, t + 1] = (changed[3, t + 1] + 1) % cfg.VocabSize;
            using var logits = gpt.forward(changed);
            Assert.True(logits[.., ..(t + 1)].allclose(baseline[.., ..(t + 1)], rtol: 0, atol: 1e-6), $"position ≤ {t} moved when {t + 1} changed");
        }
        using var sibling = idx.clone();
        sibling[1, 3] = (sibling[1, 3] + 1) % cfg.VocabSize;     // same group as example 0 (g = 2)
        using var mixed = gpt.forward(sibling);
        Assert.False(mixed[0, 3].allclose(baseline[0, 3], rtol: 0, atol: 1e-7), "example 0 sees its group partner at the same position");
    }

    [Fact]
    public void Gradients_reach_the_controller_the_experts_and_a_learnable_temperature()
    {
        using var mot = Create(TestUtil.Mot() with { LearnableTemperature = true });
        using var x = TestUtil.Randn(6, 4, 3, 8);
        mot.forward(x).square().sum().backward();
        foreach (var (name, p) in mot.named_parameters())
        {
            Assert.NotNull(p.grad);
            Assert.True(p.grad!.abs().sum().item<float>() > 0, $"{name} got no gradient");
        }
        Assert.Equal(5, mot.named_parameters().Count()); // controller, merge and emit temperatures, experts' W1 and W2
    }

    [Fact]
    public void Batch_that_is_not_a_multiple_of_the_group_is_a_clear_error()
    {
        using var mot = Create(TestUtil.Mot(group: 4));
        using var x = TestUtil.Randn(7, 6, 3, 8);
        var e = Assert.Throws<ArgumentException>(() => mot.forward(x));
        Assert.Contains("not a multiple of the MoT group size 4", e.Message);
    }

    [Fact]
    public void Discrete_evaluation_gives_each_expert_exactly_one_token()
    {
        using var mot = Create(TestUtil.Mot(experts: 3, group: 4));
        mot.eval();
        mot.DiscreteEval = true;
        using var x = TestUtil.Randn(8, 8, 2, 8);
        using var w = mot.MergeWeights(x, 4);                    // (T, G, g, E)
        Assert.True(w.sum(2).eq(1).all().item<bool>());
        Assert.True((w.eq(0) | w.eq(1)).all().item<bool>());
        using var y = mot.forward(x);
        Assert.Equal(x.shape, y.shape);
    }

    [Fact]
    public void Evaluation_at_another_group_size_and_at_batch_one()
    {
        using var mot = Create(TestUtil.Mot(experts: 4, group: 4));
        mot.eval();
        mot.EvalGroupSize = 8;
        using var x = TestUtil.Randn(9, 8, 3, 8);
        Assert.Equal(new long[] { 3, 1, 8, 4 }, mot.MergeWeights(x, 8).shape);
        Assert.Equal(x.shape, mot.forward(x).shape);
        mot.EvalGroupSize = null;
        using var one = TestUtil.Randn(10, 1, 5, 8);
        Assert.Equal(one.shape, mot.forward(one).shape);         // discrete routing at batch 1
    }
}
