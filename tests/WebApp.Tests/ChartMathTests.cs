using MoTLab.WebApp.Components;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Runs;
using MoTLab.WebApp.Components.Charts;

namespace MoTLab.WebApp.Tests;

public class ChartMathTests
{
    static ReachMetric.Point P(long step, double loss) => new(step, step * 2.0, step * 100, loss);

    [Fact]
    public void Reach_metric_finds_the_first_step_at_or_below_the_baseline_final_loss()
    {
        var dense = new[] { P(100, 4), P(200, 3), P(300, 2.5), P(400, 2.2) };
        var mot = new[] { P(100, 3.5), P(200, 2.4), P(300, 2.1), P(400, 1.9) };
        var r = ReachMetric.Compute(dense, mot)!;
        Assert.Equal(2.2, r.Target);
        Assert.Equal(300, r.Reached!.Step);
        Assert.Equal(0.75, r.StepFraction);
        Assert.Equal(0.75, r.TimeFraction);
        Assert.Equal("mot: 75 % of the steps, 75 % of the time, 75 % of the tokens", r.Describe("mot").Replace("\u00a0", " "));
        Assert.Null(ReachMetric.Compute(dense, [P(100, 5)])!.Reached);
    }

    [Fact]
    public void Against_the_best_loss_an_overfitting_baseline_is_measured_where_it_was_lowest()
    {
        var dense = new[] { P(100, 4), P(200, 3), P(300, 3.5), P(400, 5) };   // eval loss rises after step 200
        var moe = new[] { P(100, 3.2), P(200, 2.9), P(300, 4), P(400, 6) };
        Assert.Equal(0.25, ReachMetric.Compute(dense, moe)!.StepFraction);       // "25 % of the steps": an artefact
        var best = ReachMetric.Compute(dense, moe, toBest: true)!;
        Assert.Equal(3, best.Target);
        Assert.Equal(200, best.Reached!.Step);
        Assert.Equal(1.0, best.StepFraction);                                  // reached dense's best when dense did
    }

    [Fact]
    public void The_run_form_carries_extra_eval_group_sizes_and_names_the_field_of_a_typo()
    {
        var mot = MoTLab.Shared.Config.Presets.Find("tiny-mot")!.Config;
        var form = RunForm.From(mot);
        form.EvalGroupSizes = "8, 16";
        Assert.Equal([8, 16], form.ToConfig().Config!.Model.Ffn.EvalGroupSizes);
        Assert.Equal("8,16", RunForm.From(form.ToConfig().Config!).EvalGroupSizes);
        form.EvalGroupSizes = "8,x";
        Assert.Equal("model.ffn.eval_group_sizes", form.ToConfig().Error!.Value.Field);
        form.EvalGroupSizes = "";
        form.SparseBlocks = "2";                                                   // 1-based in the form, 0-based in the config
        Assert.Equal([1], form.ToConfig().Config!.Model.Ffn.SparseBlocks);
        form.SparseBlocks = "two";
        Assert.Equal("model.ffn.sparse_blocks", form.ToConfig().Error!.Value.Field);
    }

    [Fact]
    public void Ema_smoothing_is_the_debiased_weighted_mean_of_the_points_so_far()
    {
        // w = 0.5: 1; (0.5·1 + 3) / 1.5; (0.25·1 + 0.5·3 + 3) / 1.75
        var s = ReachMetric.Smooth([P(1, 1), P(2, 3), P(3, 3)], new Smoothing(SmoothingKind.Ema, 0.5), 3);
        Assert.Equal([1.0, Math.Round(3.5 / 1.5, 12), Math.Round(4.75 / 1.75, 12)], s.Select(p => Math.Round(p.Loss, 12)));
        Assert.Equal([1.0, 3.0, 3.0], ReachMetric.Smooth([P(1, 1), P(2, 3), P(3, 3)], Smoothing.Off, 3).Select(p => p.Loss));
    }

    [Fact]
    public void Time_weighted_ema_smooths_a_sparsely_logged_run_like_a_densely_logged_one()
    {
        // the same curve logged every step and every 10 steps: at the shared steps the time-weighted smoothing of the
        // sparse log stays close to that of the dense one; a per-point EMA of the sparse log lags far less than the dense
        var every = Enumerable.Range(0, 1000).Select(i => (long)i).ToList();
        double F(long s) => 4 * Math.Exp(-s / 300.0) + 1;
        var sparseSteps = every.Where(s => s % 10 == 0).ToList();
        double Gap(Smoothing how)
        {
            var dense = new Smoothing(how.Kind, 0.9).Apply(every, every.Select(F).ToList(), 1000);
            var sparse = how.Apply(sparseSteps, sparseSteps.Select(F).ToList(), 1000);
            return Enumerable.Range(10, sparseSteps.Count - 10).Max(i => Math.Abs(dense[(int)sparseSteps[i]] - sparse[i]));
        }
        double timeWeighted = Gap(new Smoothing(SmoothingKind.TimeWeightedEma, 0.9)), perPoint = Gap(new Smoothing(SmoothingKind.Ema, 0.9));
        Assert.True(timeWeighted < 0.05 && perPoint > 5 * timeWeighted, $"time-weighted gap {timeWeighted}, per-point EMA gap {perPoint}");
    }

    [Fact]
    public void Running_average_is_the_mean_of_the_last_window_points_and_non_finite_values_pass_through()
    {
        var s = new Smoothing(SmoothingKind.RunningAverage, Window: 2).Apply([1, 2, 3, 4], [2, 4, double.NaN, 8], 4);
        Assert.Equal(2, s[0]); Assert.Equal(3, s[1]); Assert.True(double.IsNaN(s[2])); Assert.Equal(6, s[3]);
    }

    [Fact]
    public void A_smoother_continued_from_a_copy_gives_what_one_pass_over_the_whole_series_gives()
    {
        var rng = new Random(3);
        var steps = Enumerable.Range(1, 500).Select(i => (long)(i * 3)).ToList();
        var values = steps.Select(_ => rng.NextDouble()).ToList();
        foreach (var how in new[] { new Smoothing(SmoothingKind.Ema, 0.95), new Smoothing(SmoothingKind.TimeWeightedEma, 0.8), new Smoothing(SmoothingKind.RunningAverage, Window: 37) })
        {
            var whole = how.Apply(steps, values, 1500);
            var history = how.Start(1500);
            for (int i = 0; i < 300; i++) history.Add(steps[i], values[i]);
            var live = history.Clone();
            for (int i = 300; i < 500; i++) Assert.Equal(whole[i], live.Add(steps[i], values[i]));   // bit for bit
        }
    }

    [Theory]
    [InlineData("none"), InlineData("ema-0.9"), InlineData("twema-0.6"), InlineData("avg-20")]
    public void Smoothing_reads_back_its_own_spelling(string text) => Assert.Equal(text, Smoothing.Parse(text)!.ToString());

    [Theory]
    [InlineData("ema-1.5"), InlineData("avg-0"), InlineData("gauss-3"), InlineData(""), InlineData("twema-x")]
    public void Smoothing_refuses_what_it_cannot_read(string text) => Assert.Null(Smoothing.Parse(text));

    [Fact]
    public void Chart_settings_come_from_storage_then_the_url_and_go_back_to_both()
    {
        var s = new ChartSettings();
        s.ApplyJson("""{"X":"tokens","LogY":true,"Smooth":"ema-0.8","Metric":"grad_norm","Seeds":"runs"}""");
        Assert.Equal(("tokens", true, "ema-0.8", "grad_norm", false), (s.XAxis, s.LogY, s.Smoothing.ToString(), s.Metric, s.FoldSeeds));
        s.ApplyQuery("http://x/compare?ids=1,2&x=step&smooth=avg-5&metric=eval.discrete&seeds=band&logy=nonsense");
        Assert.Equal(("step", true, "avg-5", "eval.discrete", true), (s.XAxis, s.LogY, s.Smoothing.ToString(), s.Metric, s.FoldSeeds));
        s.ApplyQuery("http://x/compare?x=weird&smooth=ema-7&metric=nope");             // ignored, the link still opens
        Assert.Equal(("step", "avg-5", "eval.discrete"), (s.XAxis, s.Smoothing.ToString(), s.Metric));
        var back = new ChartSettings();
        back.ApplyJson(s.ToJson());
        Assert.Equal(s.Query(compare: true), back.Query(compare: true));
        Assert.Null(s.Query(compare: false)["metric"]);
    }

    [Fact]
    public void Downsampling_keeps_extremes_last_rows_and_every_eval_row_within_the_budget()
    {
        var rows = Enumerable.Range(1, 200_000).Select(i => new MetricsQuery.Key(i, 3 + Math.Sin(i * 0.01), i % 5000 == 0)).ToList();
        rows[123_456] = rows[123_456] with { Loss = 99 };          // a spike must survive
        var keep = MetricsQuery.Downsample(rows, 2000);
        Assert.InRange(keep.Count, 500, 2000 + 40);                 // ≤ 3 per bucket plus the 40 eval rows
        Assert.Contains(123_456, keep);
        Assert.Contains(rows.Count - 1, keep);
        Assert.All(rows.Select((r, i) => (r, i)).Where(x => x.r.HasEval), x => Assert.Contains(x.i, keep));
        Assert.Equal(keep.Order(), keep);
        Assert.Equal(100, MetricsQuery.Downsample(rows.Take(100).ToList(), 2000).Count);
    }

    [Fact]
    public void Config_diff_lines_up_fields_and_marks_differences()
    {
        var diff = ConfigDiff.Build(["""{"model":{"d_model":64,"ffn":{"kind":"mot"}},"name":"a"}""", """{"model":{"d_model":64,"ffn":{"kind":"dense"}},"name":"b"}"""]);
        Assert.False(diff.Single(r => r.Path == "model.d_model").Differs);
        Assert.Equal(new[] { "mot", "dense" }, diff.Single(r => r.Path == "model.ffn.kind").Values);
        Assert.True(diff.Single(r => r.Path == "name").Differs);
    }
}
