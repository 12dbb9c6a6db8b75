using MoTLab.Shared.Runs;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using MoTLab.Training.Train;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

/// <summary>Checkpoint weights as safetensors: the byte layout the format specifies, exact round trips, and
/// `export` turning an older model.bin checkpoint into one plus a reference forward.</summary>
public class SafeTensorsTests
{
    [Fact]
    public void The_file_has_the_specified_layout_and_round_trips_exactly()
    {
        using var dir = new TestUtil.TempDir();
        var path = Path.Combine(dir.Path, "t.safetensors");
        var tensors = new Dictionary<string, Tensor>
        {
            ["b.f32"] = TestUtil.Randn(1, 3, 5), ["a.bf16"] = TestUtil.Randn(2, 4).to_type(ScalarType.BFloat16),
            ["c.i64"] = arange(7L), ["d.scalar"] = tensor(2.5f),
        };
        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });

        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, n % 8);                                                  // header padded to 8 bytes
        var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)n).TrimEnd(' ')).RootElement;
        Assert.Equal("pt", header.GetProperty("__metadata__").GetProperty("format").GetString());
        Assert.Equal("BF16", header.GetProperty("a.bf16").GetProperty("dtype").GetString());
        Assert.Equal([3, 5], header.GetProperty("b.f32").GetProperty("shape").EnumerateArray().Select(s => s.GetInt32()));
        Assert.Empty(header.GetProperty("d.scalar").GetProperty("shape").EnumerateArray());
        var end = header.EnumerateObject().Where(p => p.Name != "__metadata__").Max(p => p.Value.GetProperty("data_offsets")[1].GetInt64());
        Assert.Equal(bytes.Length - 8 - n, end);                                 // the data follows, back to back

        var (loaded, metadata) = SafeTensors.Load(path);
        Assert.Equal("pt", metadata["format"]);
        foreach (var (name, t) in tensors)
        {
            Assert.Equal(t.dtype, loaded[name].dtype);
            Assert.True(t.equal(loaded[name]).all().item<bool>(), name);
        }
    }

    [Fact]
    public async Task Export_converts_an_older_checkpoint_and_writes_a_reference_forward()
    {
        using var dir = new TestUtil.TempDir();
        var cfg = new RunConfig { Name = "export", Model = TestUtil.TinyModel(TestUtil.Mot(experts: 4, group: 2)) };
        using var model = new Gpt(cfg.Model);
        var ckpt = Directory.CreateDirectory(Path.Combine(dir.Path, "step-00000001")).FullName;
        model.save(Path.Combine(ckpt, "model.bin"));                             // as checkpoints were written before
        File.WriteAllText(Path.Combine(ckpt, "config.json"), JsonSerializer.Serialize(cfg, Shared.Json.Options));
        File.WriteAllText(Path.Combine(ckpt, "state.json"), JsonSerializer.Serialize(new TrainerState(1, 0, 0, null, null), Shared.Json.Options));

        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "MoTLab.Training.dll"), "export", "--checkpoint", ckpt, "--reference", "4" }) psi.ArgumentList.Add(a);
        using (var p = Process.Start(psi)!)
        {
            var err = p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.True(p.ExitCode == 0, await err);
        }

        var (weights, metadata) = SafeTensors.Load(Path.Combine(ckpt, Checkpoint.WeightsFile));
        Assert.Equal(cfg.Model.DModel, JsonDocument.Parse(metadata["motlab_config"]).RootElement.GetProperty("model").GetProperty("d_model").GetInt32());
        foreach (var (name, t) in model.state_dict()) Assert.True(t.equal(weights[name]).all().item<bool>(), name);
        Assert.Contains("blocks.1.ffn.controller", weights.Keys);               // MoTLab's own names, as motlab_torch.py expects

        var (reference, _) = SafeTensors.Load(Path.Combine(ckpt, "reference.safetensors"));
        Assert.Equal([4L, cfg.Model.SeqLen], reference["input_ids"].shape);
        Assert.Equal([4L, cfg.Model.VocabSize], reference["logits_last"].shape);
        using var _ = no_grad();
        model.eval();
        using var logits = model.forward(reference["input_ids"]);
        Assert.True(logits[.., -1].allclose(reference["logits_last"], rtol: 0, atol: 1e-6));
        Assert.InRange(reference["token_loss"].mean().item<float>(), 2.5, 4.5); // ≈ ln 32 for an untrained model
    }
}
