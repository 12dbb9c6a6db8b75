using System.Diagnostics;
using System.Text.Json;
using MoTLab.Shared.Config;
using MoTLab.Training.Cli;
using MoTLab.Training.Train;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

/// <summary>Data parallelism as a user runs it (`train --gpus N`), on the CPU: the processes meet over loopback TCP,
/// which stands in for NCCL there. Each process on one libtorch thread, so both runs compute in the same order.</summary>
public class DataParallelTests
{
    static List<JsonElement> Metrics(string run) =>
        File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    static Dictionary<string, Tensor> Weights(string run, int step) =>
        SafeTensors.Load(Path.Combine(run, "checkpoints", $"step-{step:D8}", "model.safetensors")).Tensors;

    /// <param name="tolerance">relative, for the logged losses and gradient norms</param>
    /// <param name="weights">relative, for each weight's difference against its norm</param>
    static void AssertSameTraining(string expected, string actual, int step, double tolerance, double weights)
    {
        var (a, b) = (Metrics(expected), Metrics(actual));
        Assert.Equal(a.Select(m => m.GetProperty("step").GetInt64()), b.Select(m => m.GetProperty("step").GetInt64()));
        void Close(double x, double y, string what) => Assert.True(Math.Abs(x - y) <= tolerance * Math.Abs(x), $"{what}: {x} against {y}");
        foreach (var (x, y) in a.Zip(b))
        {
            long s = x.GetProperty("step").GetInt64();
            Close(x.GetProperty("train_loss").GetDouble(), y.GetProperty("train_loss").GetDouble(), $"train loss at step {s}");
            Close(x.GetProperty("grad_norm").GetDouble(), y.GetProperty("grad_norm").GetDouble(), $"gradient norm at step {s}");
            if (x.TryGetProperty("eval_loss", out var e)) Close(e.GetDouble(), y.GetProperty("eval_loss").GetDouble(), $"eval loss at step {s}");
        }
        var (wa, wb) = (Weights(expected, step), Weights(actual, step));
        Assert.Equal(wa.Keys.Order(), wb.Keys.Order());
        // each weight as a whole (relative norm of the difference): AdamW turns a gradient that is ~0 in one run and
        // rounds the other way in the other into a full step either way, so single elements can move by ~lr apart
        foreach (var (name, w) in wa)
        {
            double diff = ((w - wb[name]).norm() / w.norm().clamp_min(1e-12)).item<float>();
            Assert.True(diff <= weights, $"{name} differs by {diff:G3} of its norm");
        }
    }

    [Theory]
    [InlineData("tiny-dense")]
    [InlineData("tiny-mot")]
    public void Two_processes_train_as_one_does_with_the_same_global_batch(string preset)
    {
        using var dir = new TestUtil.TempDir();
        string one = Path.Combine(dir.Path, "one"), two = Path.Combine(dir.Path, "two");
        var (c1, _, e1) = CliTests.Cli("train", "--preset", preset, "--steps", "20", "--device", "cpu", "--threads", "1", "--out", one);
        Assert.True(c1 == 0, e1);
        var (c2, out2, e2) = CliTests.Cli("train", "--preset", preset, "--steps", "20", "--device", "cpu", "--threads", "1", "--gpus", "2", "--out", two);
        Assert.True(c2 == 0, e2);
        Assert.Contains("data parallel over 2 processes (8 rows each)", out2);
        Assert.Contains("rank 1 of 2: process", out2);
        // fp32: a mean over 16 rows against the mean of two means over 8, in each matmul's sums: rounding, compounded
        // over 20 AdamW steps. Measured: losses within 1.1e-5 (relative); weights within 3e-4 of their norm for
        // tiny-dense and 1.1e-3 for tiny-mot (see the weights' comment above)

        AssertSameTraining(one, two, 20, 3e-5, 5e-3);
        Assert.False(Directory.Exists(Path.Combine(two, ".ranks")));
    }

    [Fact]
    public void A_data_parallel_run_resumes_with_the_same_processes()
    {
        using var dir = new TestUtil.TempDir();
        string straight = Path.Combine(dir.Path, "straight"), resumed = Path.Combine(dir.Path, "resumed");
        string[] args = ["train", "--preset", "tiny-dense", "--steps", "20", "--device", "cpu", "--threads", "1", "--gpus", "2"];
        var config = Path.Combine(dir.Path, "config.json");
        var cfg = ConfigLoader.Load("tiny-dense", null);
        cfg = cfg with { Train = cfg.Train with { CheckpointEvery = 10 } };
        File.WriteAllText(config, JsonSerializer.Serialize(cfg, MoTLab.Shared.Json.Indented));
        args = [.. args.Select(a => a == "--preset" ? "--config" : a == "tiny-dense" ? config : a)];
        Assert.Equal(0, CliTests.Cli([.. args, "--out", straight]).Code);
        Assert.Equal(0, CliTests.Cli([.. args, "--out", resumed]).Code);
        Directory.Delete(Path.Combine(resumed, "checkpoints", "step-00000020"), true);   // as if it had stopped after step 10
        var (code, _, err) = CliTests.Cli("train", "--resume", resumed, "--device", "cpu", "--threads", "1", "--gpus", "2");
        Assert.True(code == 0, err);
        AssertSameTraining(straight, resumed, 20, 0, 0);
    }

    /// <summary>A rank that dies ends the run with its reason, and the other rank does not wait for ever.</summary>
    [Fact]
    public async Task A_dying_rank_fails_the_run_and_ends_the_others()
    {
        using var dir = new TestUtil.TempDir();
        var (launcher, stepped, pids) = StartLong(Path.Combine(dir.Path, "run"));
        var stderr = launcher.StandardError.ReadToEndAsync();
        try
        {
            Assert.True(stepped.Wait(TimeSpan.FromMinutes(2)), "the run never logged a step");
            int rank1, rank0;
            lock (pids) (rank0, rank1) = (pids[0], pids[1]);
            Process.GetProcessById(rank1).Kill();
            Assert.True(launcher.WaitForExit(TimeSpan.FromMinutes(1)), "the launcher did not end after a rank died");
            Assert.Equal(1, launcher.ExitCode);
            Assert.Contains("error: rank 1 of 2 ended with exit code 137 (signal 9); the other ranks were ended", await stderr);
            Assert.Throws<ArgumentException>(() => Process.GetProcessById(rank0));   // rank 0 is gone too
        }
        finally { if (!launcher.HasExited) launcher.Kill(true); }
    }

    /// <summary>Ctrl-C (SIGINT to the launcher) stops every rank at the same logged step, with rank 0's checkpoint there.</summary>
    [Fact]
    public async Task Ctrl_c_stops_every_rank_at_one_step_with_a_checkpoint()
    {
        using var dir = new TestUtil.TempDir();
        var run = Path.Combine(dir.Path, "run");
        var (launcher, stepped, _) = StartLong(run);
        var stderr = launcher.StandardError.ReadToEndAsync();
        try
        {
            Assert.True(stepped.Wait(TimeSpan.FromMinutes(2)), "the run never logged a step");
            Process.Start("kill", ["-INT", launcher.Id.ToString()])!.WaitForExit();
            Assert.True(launcher.WaitForExit(TimeSpan.FromMinutes(1)), "the launcher did not end after Ctrl-C");
            Assert.True(launcher.ExitCode == 0, await stderr);
            Assert.Contains("stopping every rank at the next logged step", await stderr);
            var state = MoTLab.Shared.Runs.RunFolder.ReadState(MoTLab.Shared.Runs.RunFolder.Checkpoint(run));
            Assert.InRange(state.Step, 10, 99_990);
            Assert.Equal(0, state.Step % 10);                                 // a logged step: where the ranks agreed
            Assert.Equal(state.Step, Metrics(run)[^1].GetProperty("step").GetInt64());
        }
        finally { if (!launcher.HasExited) launcher.Kill(true); }
    }

    /// <summary>Ranks whose launcher is killed end themselves (its pipe to them closes) instead of training on or waiting.</summary>
    [Fact]
    public void Ranks_end_when_their_launcher_is_killed()
    {
        using var dir = new TestUtil.TempDir();
        var (launcher, stepped, pids) = StartLong(Path.Combine(dir.Path, "run"));
        try
        {
            Assert.True(stepped.Wait(TimeSpan.FromMinutes(2)), "the run never logged a step");
            List<Process> ranks;
            lock (pids) ranks = pids.Values.Select(Process.GetProcessById).ToList();
            launcher.Kill();                                                  // SIGKILL: no handler runs
            foreach (var r in ranks) Assert.True(r.WaitForExit(TimeSpan.FromSeconds(30)), $"rank process {r.Id} outlived its launcher");
        }
        finally { if (!launcher.HasExited) launcher.Kill(true); lock (pids) foreach (var id in pids.Values) try { Process.GetProcessById(id).Kill(); } catch (ArgumentException) { } }
    }

    /// <summary>A long CPU run over two ranks, its process ids as the launcher prints them, and a signal at its first step.</summary>
    static (Process Launcher, ManualResetEventSlim Stepped, Dictionary<int, int> Pids) StartLong(string run)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "MoTLab.Training.dll"), "train", "--preset", "tiny-dense", "--steps", "100000",
                     "--device", "cpu", "--threads", "1", "--gpus", "2", "--out", run })
            psi.ArgumentList.Add(a);
        var launcher = Process.Start(psi)!;
        var pids = new Dictionary<int, int>();
        var stepped = new ManualResetEventSlim();
        launcher.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not { } line) return;
            if (line.StartsWith("rank ") && line.Contains(": process "))
                lock (pids) pids[int.Parse(line.Split(' ')[1])] = int.Parse(line.Split(": process ")[1].Split(' ')[0]);
            if (line.StartsWith("step ")) stepped.Set();
        };
        launcher.BeginOutputReadLine();
        return (launcher, stepped, pids);
    }

    [Fact]
    public void Every_process_needs_an_equal_share_of_the_batch()
    {
        var dense = ConfigLoader.Load("tiny-dense", null);
        var odd = dense with { Train = dense.Train with { BatchSize = 15, Gpus = 2 } };
        Assert.Contains(ConfigValidator.Validate(odd.WithTokenizerVocab()), e => e.Field == "train.batch_size" && e.Message.Contains("multiple of train.gpus (2)"));
        var mot = ConfigLoader.Load("tiny-mot", null);
        var split = mot with { Train = mot.Train with { BatchSize = mot.Model.Ffn.GroupSize * 3, Gpus = 2 } };
        Assert.Contains(ConfigValidator.Validate(split.WithTokenizerVocab()), e => e.Field == "train.batch_size" && e.Message.Contains("times train.gpus (2)"));
        Assert.Contains(ConfigValidator.Validate(dense with { Train = dense.Train with { Gpus = 0 } }), e => e.Field == "train.gpus");
    }
}
