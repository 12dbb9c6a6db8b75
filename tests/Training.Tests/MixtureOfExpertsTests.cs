using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Tests;

public class MixtureOfExpertsTests
{
    /// <summary>Router = identity on a 2-d input, so a token's expert is the larger of its two coordinates.</summary>
    static TokenChoiceMoE TwoExperts(double capacityFactor, double alpha = 0.01)
    {
        manual_seed(0);
        var moe = new TokenChoiceMoE(2, new FfnConfig { Kind = FfnKind.TokenChoice, Experts = 2, TopK = 1, CapacityFactor = capacityFactor, BalanceLoss = alpha, ExpertWidth = 64 }, 4, new WeightInit(new ModelConfig()), ScalarType.Float32);
        using (no_grad()) moe.Router.copy_(eye(2) * 10);
        return moe;
    }

    [Fact]
    public void Tokens_past_capacity_are_dropped_in_order_and_pass_through_as_zero()
    {
        using var moe = TwoExperts(capacityFactor: 1.0);        // N = 6, E = 2, k = 1 → C = 3
        moe.Stats = StatsLevel.Full;
        // tokens 0..4 prefer expert 0, token 5 prefers expert 1: expert 0 keeps tokens 0, 1, 2 and drops 3, 4
        using var x = tensor(new float[] { 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 0, 1 }, [1, 6, 2]);
        using var y = moe.forward(x);
        for (int t = 0; t < 6; t++)
        {
            bool dropped = t is 3 or 4;
            bool zero = y[0, t].abs().sum().item<float>() == 0;
            Assert.True(dropped == zero, $"token {t}: dropped={dropped}, zero output={zero}");
        }
        var snap = moe.Snapshot(1, 0);
        Assert.Equal(2.0 / 6, snap.DroppedRatio!.Value, 5);
        Assert.Equal(new[] { 5f / 6, 1f / 6 }, snap.ExpertLoad!.Select(v => (float)Math.Round(v, 5)).ToArray(), new ToleranceComparer(1e-4f));
        Assert.Equal(0, snap.UnusedExperts);
    }

    /// <summary>The layer's gathers (dispatch into slots, combine back) against each token run through its kept experts
    /// directly, values and every gradient, with tokens dropped (capacity 0.5), slots left empty (top-2 of 4 experts
    /// are rarely even) and both k = 1 and k = 2.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Token_choice_equals_each_kept_token_run_through_its_experts_in_values_and_gradients(int topK)
    {
        manual_seed(3);
        const int d = 8, E = 4;
        var cfg = new FfnConfig { Kind = FfnKind.TokenChoice, Experts = E, TopK = topK, CapacityFactor = 0.5, BalanceLoss = 0, ExpertWidth = 16 };
        using var moe = new TokenChoiceMoE(d, cfg, 4, new WeightInit(new ModelConfig()), ScalarType.Float32);
        using var x = TestUtil.Randn(4, 2, 12, d).requires_grad_();
        using var probe = TestUtil.Randn(5, 2, 12, d);
        var layer = moe.forward(x);
        (layer * probe).sum().backward();
        var grads = moe.parameters().Select(p => p.grad!.clone()).Prepend(x.grad!.clone()).ToList();
        moe.zero_grad(); x.grad!.zero_();

        // the reference: the same routing decisions, then a dense sum over experts of each kept assignment's output
        long N = 24; int C = ModelSize.TokenChoiceCapacity(cfg, N);
        var flat = x.reshape(N, d);
        var probs = functional.softmax(flat.matmul(moe.Router), 1);
        var (gate, choice) = probs.topk(topK, 1);                       // (N, k)
        var (slot, _) = TokenChoiceMoE.Assign(choice, E, C);            // (k·N)
        var kept = slot.lt(E * C).view(topK, N).t().to_type(ScalarType.Float32); // (N, k)
        Assert.True(kept.sum().item<float>() < topK * N, "some assignments are dropped");
        var reference = zeros(N, d);
        for (int e = 0; e < E; e++)
        {
            var (w1, w2) = moe.ExpertWeights.Expert(e);
            var share = (gate * kept * choice.eq(e).to_type(ScalarType.Float32)).sum(1, keepdim: true); // (N, 1)
            reference = reference + share * functional.relu(flat.matmul(w1)).matmul(w2);
        }
        Assert.True(allclose(layer, reference.view(2, 12, d), rtol: 1e-5, atol: 1e-6), "values");
        (reference.view(2, 12, d) * probe).sum().backward();
        var expected = moe.parameters().Select(p => p.grad!).Prepend(x.grad!).ToList();
        for (int i = 0; i < grads.Count; i++)
            Assert.True(allclose(grads[i], expected[i], rtol: 1e-5, atol: 1e-6), $"gradient {i}: max |Δ| {(grads[i] - expected[i]).abs().max().item<float>()}");
    }

    [Fact]
    public void Capacity_follows_the_formula()
    {
        var f = new FfnConfig { Kind = FfnKind.TokenChoice, Experts = 8, TopK = 2, CapacityFactor = 1.25 };
        Assert.Equal(80, ModelSize.TokenChoiceCapacity(f, 256));   // floor(1.25·256·2/8)
        Assert.Equal(4, ModelSize.TokenChoiceCapacity(f with { CapacityFactor = 100 }, 4)); // never more than N
    }

    [Fact]
    public void Balance_loss_equals_alpha_when_routing_is_uniform()
    {
        manual_seed(0);
        using var moe = new TokenChoiceMoE(4, new FfnConfig { Kind = FfnKind.TokenChoice, Experts = 4, TopK = 1, BalanceLoss = 0.01 }, 4, new WeightInit(new ModelConfig()), ScalarType.Float32);
        using (no_grad()) moe.Router.zero_();                    // p = 1/E for every token
        using var x = TestUtil.Randn(1, 2, 8, 4);
        moe.forward(x).Dispose();
        Assert.Equal(0.01, moe.BalanceLoss!.item<float>(), 6);
    }

    [Fact]
    public void Z_loss_is_added_when_configured()
    {
        manual_seed(0);
        using var moe = new TokenChoiceMoE(4, new FfnConfig { Kind = FfnKind.TokenChoice, Experts = 4, ZLoss = 1e-3 }, 4, new WeightInit(new ModelConfig()), ScalarType.Float32);
        using (no_grad()) moe.Router.zero_();                    // logsumexp = log 4 for every token
        using var x = TestUtil.Randn(1, 2, 8, 4);
        moe.forward(x).Dispose();
        Assert.Equal(1e-3 * Math.Pow(Math.Log(4), 2), moe.ZLoss!.item<float>(), 6);
    }

    [Fact]
    public void Expert_choice_gives_every_expert_exactly_its_capacity()
    {
        manual_seed(0);
        var cfg = new FfnConfig { Kind = FfnKind.ExpertChoice, Experts = 4, Capacity = 1.0 };
        using var moe = new ExpertChoiceMoE(8, cfg, 4, new WeightInit(new ModelConfig()), ScalarType.Float32) { Stats = StatsLevel.Full };
        using var x = TestUtil.Randn(2, 4, 8, 8);                 // N = 32 → C = 8 per expert
        using var y = moe.forward(x);
        var snap = moe.Snapshot(1, 0);
        var perToken = snap.ExpertsPerToken!;                      // share of tokens chosen by 0..E experts
        Assert.Equal(1.0, perToken.Sum(), 5);
        double meanExperts = perToken.Select((share, k) => share * k).Sum();
        Assert.Equal(4 * 8 / 32.0, meanExperts, 5);                // E·C assignments over N tokens
        Assert.Equal(x.shape, y.shape);
    }

    sealed class ToleranceComparer(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(float v) => 0;
    }
}
