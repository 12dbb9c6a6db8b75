using System.Diagnostics;
using System.Text.Json;

namespace MoTLab.Training.Tests;

/// <summary>The real executable, as a user runs it: exit codes, files, messages.</summary>
public class CliTests
{
    internal static (int Code, string Out, string Err) Cli(params string[] args) => CliIn(null, args);

    /// <summary>The CLI with its token stores in <paramref name="cache"/> (MOTLAB_CACHE) when given.</summary>
    static (int Code, string Out, string Err) CliIn(string? cache, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (cache is not null) psi.Environment["MOTLAB_CACHE"] = cache;
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "MoTLab.Training.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(true); throw new TimeoutException(string.Join(' ', args)); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void Kernels_says_the_cpu_runs_libtorch_and_refuses_to_check_without_a_gpu()
    {
        var (code, output, _) = Cli("kernels", "--device", "cpu");
        Assert.Equal(0, code);
        Assert.Equal("cpu: libtorch (fused kernels are CUDA only)", output.Trim());
        var (checkCode, _, err) = Cli("kernels", "--device", "cpu", "--check");
        Assert.Equal(2, checkCode);
        Assert.Contains("kernel checks need a CUDA device, not cpu", err);
    }

    [Fact]
    public void Presets_lists_the_required_presets_as_json()
    {
        var (code, output, _) = Cli("presets");
        Assert.Equal(0, code);
        var names = JsonDocument.Parse(output).RootElement.EnumerateArray().Select(e => e.GetProperty("name").GetString()).ToList();
        foreach (var n in new[] { "tiny-dense", "tiny-mot", "tiny-moe", "tiny-ec", "mini-mot", "medium-dense", "medium-mot", "medium-mot-32e8" })
            Assert.Contains(n, names);
    }

    [Fact]
    public void Corpus_prepare_writes_the_store_once_and_names_a_bad_line()
    {
        using var dir = new TestUtil.TempDir();
        var shards = Directory.CreateDirectory(Path.Combine(dir.Path, "shards")).FullName;
        File.WriteAllLines(Path.Combine(shards, "a.jsonl"), Enumerable.Range(0, 300).Select(i => JsonSerializer.Serialize(new { text = $"document {i} says {i * i}." })));
        var cache = Path.Combine(dir.Path, "cache");
        var (code, output, err) = CliIn(cache, "corpus", "prepare", shards, "--tokenizer", "byte");
        Assert.True(code == 0, err);
        Assert.Matches(@"tokens/.*\.byte\.documents-0\.05: 300 documents \(\d+ held out\), [\d,]+ train and [\d,]+ held-out byte tokens", output);
        Assert.Contains($"preparing corpus '{shards}' with byte", err);
        var again = CliIn(cache, "corpus", "prepare", shards, "--tokenizer", "byte");
        Assert.Equal(0, again.Code);
        Assert.DoesNotContain("preparing corpus", again.Err);                          // prepared already: used as it is

        File.AppendAllText(Path.Combine(shards, "a.jsonl"), "{\"body\": 1}\n");
        var bad = CliIn(cache, "corpus", "prepare", shards, "--tokenizer", "byte");
        Assert.Equal(2, bad.Code);
        Assert.Contains($"error: corpus file '{Path.Combine(shards, "a.jsonl")}' line 301: no text field 'text'", bad.Err);
        Assert.Contains("data.split: must be documents or tail", CliIn(cache, "corpus", "prepare", shards, "--split", "random").Err);
    }

    [Fact]
    public void Sweep_trains_every_run_then_ranks_them_and_refuses_a_bad_sweep_before_the_first()
    {
        using var dir = new TestUtil.TempDir();
        var spec = Path.Combine(dir.Path, "sweep.json");
        File.WriteAllText(spec, """{ "name": "lr", "preset": "tiny-dense", "axes": [{ "path": "train.learning_rate", "values": [0.001, 0.003] }, { "path": "train.steps", "values": [10] }] }""");
        var output = Path.Combine(dir.Path, "out");
        var (code, stdout, err) = CliIn(Path.Combine(dir.Path, "cache"), "sweep", "--config", spec, "--out", output, "--device", "cpu");
        Assert.True(code == 0, err + stdout);
        var summary = File.ReadAllLines(Path.Combine(output, "summary.csv"));
        Assert.Equal("run,folder,train.learning_rate,train.steps,final_eval_loss,best_eval_loss", summary[0]);
        Assert.Equal(2, summary.Length - 1);
        Assert.All(summary.Skip(1), line => Assert.Matches(@"^\d,.*run-00\d,0\.00[13],10,\d\.\d+,\d\.\d+$", line));
        Assert.Contains("learning_rate=0.003 steps=10", stdout);
        Assert.True(File.Exists(Path.Combine(output, "run-001", "metrics.jsonl")));

        File.WriteAllText(spec, """{ "preset": "tiny-dense", "axes": [{ "path": "train.learning_rate", "values": [0.001, -1] }] }""");
        var bad = CliIn(Path.Combine(dir.Path, "cache"), "sweep", "--config", spec, "--out", Path.Combine(dir.Path, "bad"), "--device", "cpu");
        Assert.Equal(2, bad.Code);
        Assert.Contains("runs[1].train.learning_rate: learning_rate=-1:", bad.Err);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "bad")), "a refused sweep started training");
    }

    [Fact]
    public void Reproduce_with_a_learning_rate_sweep_trains_each_model_at_its_best_rate()
    {
        using var dir = new TestUtil.TempDir();
        var output = Path.Combine(dir.Path, "set");
        var (code, stdout, err) = CliIn(Path.Combine(dir.Path, "cache"), "reproduce", "--group", "reproduce-cpu", "--steps", "5", "--sweep-lr", "2",
            "--only", "cpu-dense", "cpu-mot", "--out", output, "--device", "cpu");
        Assert.True(code == 0, err + stdout);
        var sweep = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "lr-sweep.json"))).RootElement;
        foreach (var preset in new[] { "cpu-dense", "cpu-mot" })
        {
            var rates = sweep.GetProperty(preset).GetProperty("rates").EnumerateArray().ToList();
            Assert.Equal(2, rates.Count);
            double best = rates.MinBy(r => r.GetProperty("final_eval_loss").GetDouble()).GetProperty("learning_rate").GetDouble();
            Assert.Equal(best, sweep.GetProperty(preset).GetProperty("best").GetDouble());
            var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, preset, "config.json"))).RootElement;
            Assert.Equal(best, config.GetProperty("train").GetProperty("learning_rate").GetDouble());
            Assert.True(File.Exists(Path.Combine(output, "lr-sweep", preset, "run-1", "metrics.jsonl")));
        }
        Assert.Contains("cpu-mot: best learning rate", stdout);
    }

    [Fact]
    public void Train_writes_the_run_folder_then_sample_and_resume_use_it()
    {
        using var dir = new TestUtil.TempDir();
        var run = Path.Combine(dir.Path, "run");
        var (code, output, err) = Cli("train", "--preset", "tiny-mot", "--steps", "20", "--out", run, "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Matches(@"step +20/20 loss \d+\.\d+ .*tok/s mfu .* eta", output);
        foreach (var f in new[] { "config.json", "metrics.jsonl", "routing.jsonl" }) Assert.True(File.Exists(Path.Combine(run, f)), f);
        var first = JsonDocument.Parse(File.ReadLines(Path.Combine(run, "metrics.jsonl")).First()).RootElement;
        foreach (var field in new[] { "step", "tokens", "elapsed_s", "train_loss", "lr", "grad_norm", "tokens_per_s", "mfu", "aux_loss", "router_entropy" })
            Assert.True(first.TryGetProperty(field, out _), field);
        Assert.True(Directory.Exists(Path.Combine(run, "checkpoints", "step-00000020")));

        var sample = Cli("sample", "--checkpoint", run, "--prompt", "12+3", "--tokens", "8");
        Assert.Equal(0, sample.Code);
        Assert.StartsWith("12+3", sample.Out);
        Assert.Contains("discrete routing", sample.Err);

        var resumed = Cli("train", "--resume", run, "--steps", "30", "--device", "cpu");
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.Contains("resumed from", resumed.Out);
        var steps = File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()).ToList();
        Assert.Equal(new long[] { 10, 20, 30 }, steps);
    }

    [Fact]
    public void Reproduce_trains_the_set_and_says_when_each_reached_the_baseline()
    {
        using var dir = new TestUtil.TempDir();
        var (code, output, err) = Cli("reproduce", "--group", "reproduce-cpu", "--steps", "3", "--out", dir.Path, "--device", "cpu");
        Assert.True(code == 0, err + output);
        var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, "summary.json"))).RootElement;
        Assert.Equal(["cpu-dense", "cpu-mot", "cpu-mot-16e8", "cpu-moe", "cpu-ec"], summary.EnumerateArray().Select(l => l.GetProperty("preset").GetString()));
        Assert.All(summary.EnumerateArray(), l => Assert.True(l.GetProperty("final_eval_loss").GetDouble() > 0));
        Assert.Contains("cpu-dense: final eval loss", output);
        Assert.Matches(@"cpu-mot: final eval loss \d\.\d{4}; best \d\.\d{4} at step \d; (reached cpu-dense's final eval loss .* of the steps|did not reach cpu-dense's final eval loss); (reached|did not reach) cpu-dense's best eval loss", output);
        Assert.All(summary.EnumerateArray(), l => Assert.True(l.GetProperty("best_eval_loss").GetDouble() > 0));

        var again = Cli("reproduce", "--group", "reproduce-cpu", "--steps", "3", "--out", dir.Path, "--device", "cpu");   // finished runs are kept
        Assert.Equal(0, again.Code);
        Assert.DoesNotContain("== cpu-dense", again.Out);
    }

    [Fact]
    public void Transition_continues_a_MoT_run_as_token_choice_that_samples_at_batch_1()
    {
        using var dir = new TestUtil.TempDir();
        var mot = Path.Combine(dir.Path, "mot");
        Assert.Equal(0, Cli("train", "--preset", "tiny-mot", "--steps", "20", "--out", mot, "--device", "cpu").Code);
        var tc = Path.Combine(dir.Path, "tc");
        var (code, output, err) = Cli("transition", "--checkpoint", mot, "--steps", "10", "--out", tc, "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Contains("weights from", output);
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(tc, "config.json"))).RootElement;
        Assert.Equal("token_choice", config.GetProperty("model").GetProperty("ffn").GetProperty("kind").GetString());
        Assert.True(config.GetProperty("model").GetProperty("ffn").GetProperty("straight_through_gate").GetBoolean());
        var sample = Cli("sample", "--checkpoint", tc, "--prompt", "12+3", "--tokens", "8");
        Assert.True(sample.Code == 0, sample.Err);
        Assert.DoesNotContain("discrete routing", sample.Err);                 // a real MoE now, no MoT approximation

        var dense = Path.Combine(dir.Path, "dense");
        Assert.Equal(0, Cli("train", "--preset", "tiny-dense", "--steps", "10", "--out", dense, "--device", "cpu").Code);
        var refused = Cli("transition", "--checkpoint", dense, "--steps", "10", "--device", "cpu");
        Assert.Equal(2, refused.Code);
        Assert.Contains("transition starts from MoT", refused.Err);
    }

    [Fact]
    public void Finetune_trains_MoV_on_a_frozen_dense_run()
    {
        using var dir = new TestUtil.TempDir();
        var dense = Path.Combine(dir.Path, "dense");
        Assert.Equal(0, Cli("train", "--preset", "tiny-dense", "--steps", "10", "--out", dense, "--device", "cpu").Code);
        var mov = Path.Combine(dir.Path, "mov");
        var (code, output, err) = Cli("finetune", "--checkpoint", dense, "--kind", "mov", "--experts", "4", "--steps", "25", "--out", mov, "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Contains("trainable", output);
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(mov, "config.json"))).RootElement;
        Assert.Equal("mov", config.GetProperty("model").GetProperty("ffn").GetProperty("kind").GetString());
        Assert.Contains("\"kind\":\"mov\"", File.ReadAllText(Path.Combine(mov, "routing.jsonl")));

        var refused = Cli("finetune", "--checkpoint", mov, "--kind", "lora", "--steps", "10", "--device", "cpu");
        Assert.Equal(2, refused.Code);
        Assert.Contains("--kind: 'lora' is neither mov nor molora", refused.Err);
    }

    [Fact]
    public void Plot_draws_run_folders_into_a_png()
    {
        using var dir = new TestUtil.TempDir();
        var run = Path.Combine(dir.Path, "dense");
        Assert.Equal(0, Cli("train", "--preset", "tiny-dense", "--steps", "20", "--out", run, "--device", "cpu").Code);
        var png = Path.Combine(dir.Path, "figures", "loss.png");
        var (code, _, err) = Cli("plot", run, "--metric", "train_loss", "--out", png);
        Assert.True(code == 0, err);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(png)[..4]);

        var refused = Cli("plot", dir.Path, "--out", png);                     // a folder without metrics.jsonl
        Assert.Equal(2, refused.Code);
        Assert.Contains("no metrics.jsonl", refused.Err);
        var zoomed = Path.Combine(dir.Path, "start.png");
        Assert.Equal(0, Cli("plot", run, "--metric", "train_loss", "--until", "10", "--out", zoomed).Code);
        Assert.NotEqual(File.ReadAllBytes(png), File.ReadAllBytes(zoomed));
        Assert.Contains("--until: 0 is not a step", Cli("plot", run, "--until", "0", "--out", zoomed).Err);
    }

    [Theory]
    [InlineData("tiny-mot")]
    [InlineData("tiny-moe")]
    [InlineData("tiny-ec")]
    public void On_one_thread_the_CPU_kernels_train_as_libtorch_does(string preset)
    {
        using var dir = new TestUtil.TempDir();
        double Train(int threads, string attention)
        {
            var (code, output, err) = Cli("train", "--preset", preset, "--steps", "20", "--threads", $"{threads}",
                "--out", Path.Combine(dir.Path, $"t{threads}"), "--device", "cpu");
            Assert.True(code == 0, err);
            Assert.Contains($"attention {attention}", output);
            var last = JsonDocument.Parse(File.ReadLines(Path.Combine(dir.Path, $"t{threads}", "metrics.jsonl")).Last()).RootElement;
            return last.GetProperty("train_loss").GetDouble();
        }
        bool kernel = System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported;
        double one = Train(1, kernel ? "CPU kernel" : "SDPA"), two = Train(2, "SDPA");
        Assert.Equal(two, one, 2e-3);                                     // same seed and data; float rounding only
    }

    [Fact]
    public void Bench_prints_one_json_line()
    {
        var (code, output, err) = Cli("bench", "--preset", "tiny-dense", "--device", "cpu", "--steps", "2", "--warmup", "1");
        Assert.True(code == 0, err);
        var json = JsonDocument.Parse(output.Trim()).RootElement;
        Assert.True(json.GetProperty("tokens_per_s").GetDouble() > 0);
        Assert.True(json.GetProperty("params").GetInt64() > 100_000);
        double matmul = json.GetProperty("matmul_gflops").GetDouble();
        Assert.True(matmul > 0);
        Assert.Equal(json.GetProperty("achieved_gflops").GetDouble() / matmul, json.GetProperty("matmul_share").GetDouble(), 9);
    }

    [Fact]
    public void Bad_input_exits_2_with_a_message_naming_the_problem()
    {
        using var dir = new TestUtil.TempDir();
        var malformed = Path.Combine(dir.Path, "bad.json");
        File.WriteAllText(malformed, "{ \"model\": { \"d_model\": 64, ");
        var invalid = Path.Combine(dir.Path, "invalid.json");
        File.WriteAllText(invalid, """{ "model": { "d_model": 64, "heads": 5 }, "train": { "steps": 5 } }""");
        var binary = Path.Combine(dir.Path, "blob.bin");
        File.WriteAllBytes(binary, [0, 1, 2, 3, 0]);

        var full = Directory.CreateDirectory(Path.Combine(dir.Path, "full")).FullName;
        File.CreateSymbolicLink(Path.Combine(full, "metrics.jsonl"), "/dev/full");   // every write: ENOSPC, as on a full disk

        var cases = new (string[] Args, string Message)[]
        {
            (["train", "--preset", "tiny-dense", "--steps", "20", "--out", full], "disk full: No space left on device"),
            (["train", "--preset", "nope"], "unknown preset 'nope'"),
            (["train", "--config", malformed], "is not a valid run config"),
            (["train", "--config", invalid, "--out", Path.Combine(dir.Path, "r1")], "model.heads: must divide d_model (64)"),
            (["train", "--preset", "tiny-dense", "--corpus", binary, "--out", Path.Combine(dir.Path, "r2")], "looks binary"),
            (["sample", "--checkpoint", dir.Path], "neither a checkpoint folder nor a run folder"),
        };
        foreach (var (args, message) in cases)
        {
            var (code, _, err) = Cli(args);
            Assert.True(code == 2, $"{string.Join(' ', args)} → exit {code}: {err}");
            Assert.Contains(message, err);
            Assert.DoesNotContain("   at ", err);   // a message, not a stack trace
        }
    }
}
