using MoTLab.Shared.Config;
using MoTLab.Shared.Telemetry;
using MoTLab.Training.Model;
using MoTLab.Training.Train;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

/// <summary>MoV and MoLoRA (docs/architecture.md): lightweight experts on a frozen dense checkpoint.</summary>
public class LightweightExpertsTests
{
    static FfnConfig Adapter(FfnKind kind) => new() { Kind = kind, Experts = 4, Rank = 2, LoraAlpha = 4 };

    [Theory]
    [InlineData(FfnKind.MoV)]
    [InlineData(FfnKind.MoLoRA)]
    public void At_initialisation_the_adapted_model_is_the_frozen_dense_model_exactly(FfnKind kind)
    {
        using var dir = new TestUtil.TempDir();
        var denseCfg = new RunConfig { Name = "dense", Model = TestUtil.TinyModel(new FfnConfig()) };
        manual_seed(5);
        var dense = new Gpt(denseCfg.Model);
        Checkpoint.SaveWeights(Path.Combine(dir.Path, Checkpoint.WeightsFile), denseCfg, dense);
        manual_seed(6);
        var adapted = new Gpt(denseCfg.Model with { Ffn = Adapter(kind) });
        Checkpoint.LoadModel(dir.Path, adapted, fresh: LightweightExperts.IsAdapterWeight);
        dense.eval(); adapted.eval();

        using var _ = no_grad();
        var ids = randint(0, 32, [3, 8], dtype: ScalarType.Int64);                   // (B, T)
        Assert.True(Same(dense.forward(ids), adapted.forward(ids)));                 // bit for bit, not within a tolerance
        var experts = adapted.named_parameters().Where(p => p.name.EndsWith("movDelta") || p.name.EndsWith("loraB1")).ToList();
        Assert.Equal(2, experts.Count);                                               // one per block
        foreach (var (_, p) in experts) p.add_(0.1);
        Assert.False(dense.forward(ids).allclose(adapted.forward(ids), rtol: 1e-3, atol: 1e-3)); // and the experts do act
    }

    [Theory]
    [InlineData(FfnKind.MoV)]
    [InlineData(FfnKind.MoLoRA)]
    public void Fine_tuning_trains_only_the_routers_and_experts(FfnKind kind)
    {
        using var baseDir = new TestUtil.TempDir();
        using var tuneDir = new TestUtil.TempDir();
        var preset = Presets.Find("tiny-dense")!.Config;
        var dense = preset with { Train = preset.Train with { Steps = 20, EvalEvery = 20, LogEvery = 10 } };
        using (var t = new Trainer(dense, baseDir.Path, "cpu", [])) t.Run();

        var cfg = dense with { Model = dense.Model with { Ffn = Adapter(kind) }, Train = dense.Train with { InitFrom = baseDir.Path, SnapshotEvery = 10 } };
        var routing = new List<RoutingSnapshot>();
        using var tune = new Trainer(cfg, tuneDir.Path, "cpu", [new Routing(routing)]);
        var frozen = tune.Model.named_parameters().Where(p => !LightweightExperts.IsAdapterWeight(p.name)).ToDictionary(p => p.name, p => p.parameter.clone());
        var adapters = tune.Model.named_parameters().Where(p => LightweightExperts.IsAdapterWeight(p.name)).ToDictionary(p => p.name, p => p.parameter.clone());
        tune.Run();

        Assert.Equal(ModelSize.Parameters(cfg.Model), tune.Model.ParameterCount());
        Assert.Equal(ModelSize.TrainableParameters(cfg.Model), adapters.Values.Sum(t => t.numel()));
        Assert.True(ModelSize.TrainableParameters(cfg.Model) < 0.1 * ModelSize.Parameters(cfg.Model));
        var now = tune.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.All(frozen, kv => Assert.True(Same(kv.Value, now[kv.Key]), $"{kv.Key} changed"));
        Assert.All(adapters, kv => Assert.False(Same(kv.Value, now[kv.Key]), $"{kv.Key} did not train"));
        Assert.Contains(routing, r => r.Kind == kind && r.ExpertLoad!.Length == 4 && r.Entropy > 0);
    }

    [Fact]
    public void Lightweight_experts_need_a_dense_checkpoint_to_start_from()
    {
        var cfg = new RunConfig { Model = TestUtil.TinyModel(Adapter(FfnKind.MoLoRA) with { Rank = 0 }) };
        var errors = ConfigValidator.Validate(cfg).Select(e => e.Field).ToList();
        Assert.Contains("train.init_from", errors);
        Assert.Contains("model.ffn.rank", errors);
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    sealed class Routing(List<RoutingSnapshot> into) : ITelemetrySink
    {
        public void OnStep(StepMetrics m) { }
        public void OnRouting(IReadOnlyList<RoutingSnapshot> s) => into.AddRange(s);
    }
}
