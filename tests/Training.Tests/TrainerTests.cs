using MoTLab.Shared.Runs;
using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Shared.Telemetry;
using MoTLab.Training.Train;
using TorchSharp;

namespace MoTLab.Training.Tests;

public class TrainerTests
{
    sealed class Collect : ITelemetrySink
    {
        public readonly List<StepMetrics> Steps = [];
        public readonly List<RoutingSnapshot> Routing = [];
        public void OnStep(StepMetrics m) => Steps.Add(m);
        public void OnRouting(IReadOnlyList<RoutingSnapshot> s) => Routing.AddRange(s);
    }

    static RunConfig Tiny(string preset, int steps) => Presets.Find(preset)!.Config with
    {
        Train = Presets.Find(preset)!.Config.Train with { Steps = steps, LogEvery = 10, EvalEvery = steps, SnapshotEvery = 50 },
    };

    [Theory]
    [InlineData("tiny-dense")]
    [InlineData("tiny-mot")]
    [InlineData("tiny-moe")]
    [InlineData("tiny-ec")]
    public void Loss_falls_clearly_within_100_steps_on_the_synthetic_corpus(string preset)
    {
        using var dir = new TestUtil.TempDir();
        var sink = new Collect();
        using var trainer = new Trainer(Tiny(preset, 100), dir.Path, "cpu", [sink]);
        trainer.Run();
        double first = sink.Steps[0].TrainLoss, last = sink.Steps[^1].TrainLoss;
        Assert.True(last < 2.6 && last < first - 1.0, $"{preset}: loss {first:F3} → {last:F3}");
        Assert.True(sink.Steps[^1].EvalLoss < 2.6, $"{preset}: eval loss {sink.Steps[^1].EvalLoss}");
        Assert.All(sink.Steps, m => Assert.True(m.TokensPerS > 0 && m.Mfu > 0 && m.GradNorm > 0 && m.Lr > 0));
        if (preset != "tiny-dense")
        {
            Assert.Equal(2, sink.Routing.Select(r => r.Step).Distinct().Count());   // steps 50 and 100
            Assert.All(sink.Routing, r => Assert.InRange(r.Entropy, 0, 1));
            Assert.All(sink.Steps, m => Assert.NotNull(m.RouterEntropy));
        }
        if (preset == "tiny-mot") Assert.All(sink.Routing, r => Assert.Equal(4, r.MergeWeights!.Length));
        if (preset == "tiny-moe") Assert.All(sink.Steps, m => Assert.True(m.BalanceLoss > 0 && m.DroppedRatio >= 0));
        Assert.Single(RunFolder.Checkpoints(dir.Path));
    }

    [Theory]
    [InlineData("tiny-mot")]
    [InlineData("tiny-moe")]
    public void Training_2N_steps_equals_N_then_resume_and_N_more_bitwise(string preset)
    {
        var cfg = Tiny(preset, 20) with { Train = Tiny(preset, 20).Train with { LogEvery = 5, EvalEvery = 10, SnapshotEvery = 10 } };
        using var straight = new TestUtil.TempDir();
        using var split = new TestUtil.TempDir();
        using (var a = new Trainer(cfg, straight.Path, "cpu", [new JsonlSink(straight.Path)])) a.Run();

        using (var sink = new JsonlSink(split.Path))
        using (var b = new Trainer(cfg, split.Path, "cpu", [sink])) b.Run(until: 10);
        using (var sink = new JsonlSink(split.Path, resumedFromStep: 10))
        using (var c = new Trainer(cfg, split.Path, "cpu", [sink], resumeFrom: split.Path)) c.Run();

        var straightFinal = RunFolder.Checkpoint(straight.Path);
        var splitFinal = RunFolder.Checkpoint(split.Path);
        Assert.Equal(File.ReadAllBytes(Path.Combine(straightFinal, "model.safetensors")), File.ReadAllBytes(Path.Combine(splitFinal, "model.safetensors")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(straightFinal, "optimizer.bin")), File.ReadAllBytes(Path.Combine(splitFinal, "optimizer.bin")));
        var lossesA = Losses(straight.Path); var lossesB = Losses(split.Path);
        Assert.Equal(new long[] { 5, 10, 15, 20 }, lossesB.Select(l => l.Step));   // no step twice
        Assert.Equal(lossesA, lossesB);
    }

    [Fact]
    public void Early_evaluation_is_denser_then_falls_back_to_eval_every()
    {
        var t = Tiny("tiny-dense", 30).Train with { LogEvery = 7, EvalEvery = 20, EvalEarlyEvery = 4, EvalEarlyUntil = 12, EvalBatches = 1 };
        using var dir = new TestUtil.TempDir();
        var sink = new Collect();
        using (var trainer = new Trainer(Tiny("tiny-dense", 30) with { Train = t }, dir.Path, "cpu", [sink])) trainer.Run();
        Assert.Equal(new long[] { 4, 8, 12, 20, 30 }, sink.Steps.Where(m => m.EvalLoss is not null).Select(m => m.Step));
        Assert.Equal(new long[] { 4, 7, 8, 12, 14, 20, 21, 28, 30 }, sink.Steps.Select(m => m.Step));   // evaluated steps are logged too
    }

    static List<(long Step, double Loss)> Losses(string dir) => File.ReadLines(Path.Combine(dir, RunFolder.MetricsFile))
        .Select(l => JsonSerializer.Deserialize<StepMetrics>(l, Json.Options)!).Select(m => (m.Step, m.TrainLoss)).ToList();

    [Fact]
    public void Mot_extra_evaluations_are_logged_beside_the_eval_loss()
    {
        using var dir = new TestUtil.TempDir();
        var baseCfg = Tiny("tiny-mot", 20);
        var cfg = baseCfg with { Model = baseCfg.Model with { Ffn = baseCfg.Model.Ffn with { DiscreteEval = true, EvalGroupSizes = [8, 16] } } };
        var sink = new Collect();
        using (var trainer = new Trainer(cfg, dir.Path, "cpu", [sink])) trainer.Run();
        var last = sink.Steps[^1];
        Assert.NotNull(last.EvalLoss);
        Assert.Equal(new[] { "discrete", "group_16", "group_8" }, last.EvalExtra!.Keys.Order());
        Assert.All(last.EvalExtra.Values, v => Assert.InRange(v, 0.5, 10));
        Assert.NotEqual(last.EvalLoss!.Value, last.EvalExtra["discrete"]);   // a different function, not a copy
    }

    [Fact]
    public void A_diverging_run_stops_with_the_step_named()
    {
        using var dir = new TestUtil.TempDir();
        var cfg = Tiny("tiny-dense", 50) with { Train = Tiny("tiny-dense", 50).Train with { LogEvery = 5 } };
        using var trainer = new Trainer(cfg, dir.Path, "cpu", []);
        for (int i = 0; i < 7; i++) trainer.Step();
        using (TorchSharp.torch.no_grad()) trainer.Model.parameters().First().fill_(double.NaN);   // a blow-up in step 8
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Run());
        Assert.Equal(10, e.Step);                                 // the first logged step after it
        Assert.Contains($"training diverged at step {e.Step}", e.Message);
    }

    [Fact]
    public void No_tensor_leaks_over_50_steps()
    {
        using var dir = new TestUtil.TempDir();
        using var trainer = new Trainer(Tiny("tiny-moe", 70), dir.Path, "cpu", []);
        for (int i = 0; i < 20; i++) trainer.Step();               // warm up: optimizer state and grads exist now
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 50; i++) trainer.Step();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void A_checkpoint_of_another_architecture_is_refused_with_a_clear_message()
    {
        using var dir = new TestUtil.TempDir();
        using (var t = new Trainer(Tiny("tiny-dense", 2), dir.Path, "cpu", [])) t.Run();
        var other = Tiny("tiny-dense", 4) with { Model = Tiny("tiny-dense", 4).Model with { DModel = 32 } };
        using var other2 = new TestUtil.TempDir();
        var e = Assert.Throws<InvalidOperationException>(() => new Trainer(other, other2.Path, "cpu", [], resumeFrom: dir.Path));
        Assert.Contains("does not match the model", e.Message);
    }

    [Fact]
    public void Learning_rate_warms_up_then_decays_to_ten_percent()
    {
        Assert.Equal(0.1, LrSchedule.At(0, 1000, 1.0, 0.01, 0.1), 6);    // first of 10 warmup steps
        Assert.Equal(1.0, LrSchedule.At(9, 1000, 1.0, 0.01, 0.1), 6);    // end of warmup
        Assert.Equal(0.1, LrSchedule.At(999, 1000, 1.0, 0.01, 0.1), 6);  // last step
        Assert.InRange(LrSchedule.At(505, 1000, 1.0, 0.01, 0.1), 0.5, 0.6);
    }
}
