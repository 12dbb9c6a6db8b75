using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using static TorchSharp.torch;

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
