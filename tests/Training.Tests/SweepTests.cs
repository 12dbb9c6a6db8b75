using System.Text.Json;
using MoTLab.Shared.Config;

namespace MoTLab.Training.Tests;

/// <summary>A sweep's expansion: grids, ranges, random draws, and every bad input as a field error.</summary>
public class SweepTests
{
    static readonly RunConfig Base = Presets.Find("tiny-mot")!.Config;
    static JsonElement J(object v) => JsonSerializer.SerializeToElement(v);
    static SweepAxis Values(string path, params object[] values) => new() { Path = path, Values = values.Select(J).ToList() };

    [Fact]
    public void A_grid_is_every_combination_in_order_with_each_value_in_its_config()
    {
        var spec = new SweepSpec { Name = "lr", Axes = [Values("train.learning_rate", 1e-3, 3e-3), Values("model.ffn.experts", 4, 8, 16)] };
        Assert.Equal(6, Sweeps.Count(spec));
        var (points, errors) = Sweeps.Expand(spec, Base, 100);
        Assert.Empty(errors);
        Assert.Equal([(1e-3, 4), (1e-3, 8), (1e-3, 16), (3e-3, 4), (3e-3, 8), (3e-3, 16)], points.Select(p => (p.Config.Train.LearningRate, p.Config.Model.Ffn.Experts)));
        Assert.Equal("learning_rate=0.001 experts=4", points[0].Label);
        Assert.Equal("lr learning_rate=0.001 experts=4", points[0].Config.Name);
        Assert.All(points, p => Assert.Equal(Base.Model.DModel, p.Config.Model.DModel));                  // the rest as the base
    }

    [Fact]
    public void A_log_range_is_evenly_spaced_in_the_logarithm_and_whole_number_fields_are_rounded()
    {
        var (points, errors) = Sweeps.Expand(new SweepSpec { Axes = [new() { Path = "train.learning_rate", Min = 1e-4, Max = 1e-2, Count = 5, Log = true }] }, Base, 100);
        Assert.Empty(errors);
        Assert.Equal([1e-4, 3.162e-4, 1e-3, 3.162e-3, 1e-2], points.Select(p => p.Config.Train.LearningRate));
        var (groups, _) = Sweeps.Expand(new SweepSpec { Axes = [new() { Path = "model.ffn.group_size", Min = 2, Max = 5, Count = 4 }] }, Base, 100);
        Assert.Equal([2, 3, 4, 5], groups.Select(p => p.Config.Model.Ffn.GroupSize));
        var whole = new SweepSpec { Axes = [new() { Path = "model.ffn.group_size", Min = 2, Max = 4, Count = 1000 }] };   // 1,000 points round to 3
        Assert.Equal(3, Sweeps.Count(whole));
        Assert.Equal(3, Sweeps.Expand(whole, Base, 100).Points.Count);
    }

    [Fact]
    public void A_random_search_draws_the_same_runs_from_the_same_seed_within_its_ranges()
    {
        var spec = new SweepSpec
        {
            Method = Sweeps.Random, Runs = 20, Seed = 7,
            Axes = [new() { Path = "train.learning_rate", Min = 1e-4, Max = 1e-2, Log = true }, Values("model.ffn.kind", "mot", "token_choice"), new() { Path = "train.seed", Min = 1, Max = 1000 }],
        };
        var (a, errors) = Sweeps.Expand(spec, Base, 100);
        Assert.Empty(errors);
        var (b, _) = Sweeps.Expand(spec, Base, 100);
        Assert.Equal(20, a.Count);
        Assert.Equal(a.Select(p => p.Label), b.Select(p => p.Label));
        Assert.All(a, p => Assert.InRange(p.Config.Train.LearningRate, 1e-4, 1e-2));
        Assert.Contains(a, p => p.Config.Model.Ffn.Kind == FfnKind.TokenChoice);
        Assert.Contains(a, p => p.Config.Model.Ffn.Kind == FfnKind.MoT);
        Assert.NotEqual(a.Select(p => p.Label), Sweeps.Expand(spec with { Seed = 8 }, Base, 100).Points.Select(p => p.Label));
    }

    [Theory]
    [InlineData("""{ "axes": [] }""", "axes", "at least one axis")]
    [InlineData("""{ "axes": [{ "path": "train.lr", "values": [1] }] }""", "axes[0].path", "'train.lr' is no config field")]
    [InlineData("""{ "axes": [{ "path": "train", "values": [1] }] }""", "axes[0].path", "is no config field")]
    [InlineData("""{ "axes": [{ "path": "train.learning_rate" }] }""", "axes[0]", "give its values, or a range")]
    [InlineData("""{ "axes": [{ "path": "train.learning_rate", "min": 1e-4, "max": 1e-2 }] }""", "axes[0].count", "number of points")]
    [InlineData("""{ "axes": [{ "path": "train.learning_rate", "min": 0, "max": 1e-2, "count": 3, "log": true }] }""", "axes[0].min", "min > 0")]
    [InlineData("""{ "axes": [{ "path": "train.seed", "values": [1] }, { "path": "train.seed", "values": [2] }] }""", "axes[1].path", "swept twice")]
    [InlineData("""{ "method": "random", "axes": [{ "path": "train.seed", "min": 1, "max": 9 }] }""", "runs", "number of runs")]
    [InlineData("""{ "method": "bayes", "axes": [{ "path": "train.seed", "values": [1] }] }""", "method", "grid or random")]
    [InlineData("""{ "axes": [null] }""", "axes[0]", "an axis")]
    [InlineData("""{ "axes": [{ "path": "train.learning_rate", "min": -1.7e308, "max": 1.7e308, "count": 3 }] }""", "axes[0].min", "finite")]
    [InlineData("""{ "axes": [{ "path": "model.ffn.experts", "values": [2.5] }] }""", "runs[0]", "model.ffn.experts = 2.5: not a value the config takes")]
    [InlineData("""{ "axes": [{ "path": "model.ffn.kind", "values": ["dense", "moe"] }] }""", "runs[1]", "model.ffn.kind = moe")]
    public void Bad_input_is_a_field_error_and_nothing_is_expanded(string json, string field, string message)
    {
        var spec = JsonSerializer.Deserialize<SweepSpec>(json, MoTLab.Shared.Json.Options)!;
        var (points, errors) = Sweeps.Expand(spec, Base, 100);
        Assert.Empty(points);
        Assert.Contains(errors, e => e.Field == field && e.Message.Contains(message));
    }

    [Fact]
    public void A_grid_over_the_cap_is_refused_with_its_count()
    {
        var spec = new SweepSpec { Axes = [new() { Path = "train.seed", Min = 1, Max = 100, Count = 100 }, new() { Path = "train.learning_rate", Min = 1e-4, Max = 1e-2, Count = 100, Log = true }] };
        var (points, errors) = Sweeps.Expand(spec, Base, 200);
        Assert.Empty(points);
        Assert.Equal("the sweep would launch 10,000 runs, more than the 200 a sweep may have (MoTLab:MaxSweepRuns)", Assert.Single(errors).Message);
    }

    [Fact]
    public void A_count_too_large_for_a_number_is_still_over_the_cap()
    {
        var paths = Sweeps.Paths().Where(p => Sweeps.FieldType(p) == typeof(double)).Take(7).ToList();
        Assert.Equal(7, paths.Count);
        var spec = new SweepSpec { Axes = paths.Select(p => new SweepAxis { Path = p, Min = 0.001, Max = 0.9, Count = 990 }).ToList() };
        Assert.Equal(long.MaxValue, Sweeps.Count(spec));                                    // 990⁷ does not wrap around
        Assert.Contains("more than the 200 a sweep may have", Assert.Single(Sweeps.Expand(spec, Base, 200).Errors).Message);
    }

    [Fact]
    public void The_best_learning_rate_is_that_of_the_lowest_final_loss_and_none_without_a_finished_run()
    {
        Assert.Equal(3e-3, LearningRateSweeps.Best([(1e-3, 2.5), (3e-3, 2.1), (1e-2, null), (3e-2, double.NaN)]));
        Assert.Null(LearningRateSweeps.Best([(1e-3, null)]));
        Assert.Null(LearningRateSweeps.Best([]));
    }

    [Fact]
    public void Every_listed_path_takes_a_value()
    {
        Assert.Contains("train.learning_rate", Sweeps.Paths());
        Assert.Contains("model.ffn.group_size", Sweeps.Paths());
        Assert.Contains("data.corpus", Sweeps.Paths());
        Assert.DoesNotContain("name", Sweeps.Paths());
        Assert.All(Sweeps.Paths(), p => Assert.NotNull(Sweeps.FieldType(p)));
    }
}
