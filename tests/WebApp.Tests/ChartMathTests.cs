using MoTLab.WebApp.Components;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Runs;

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
    public void Ema_smoothing_follows_the_usual_recursion()
    {
        var s = ReachMetric.Smooth([P(1, 1), P(2, 3), P(3, 3)], 0.5);
        Assert.Equal(new[] { 1.0, 2.0, 2.5 }, s.Select(p => p.Loss));
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
