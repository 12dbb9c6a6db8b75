using MoTLab.Shared.Config;
using MoTLab.Training.Runtime;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

static class TestUtil
{
    static TestUtil() => TorchRuntime.Initialise();

    /// <summary>A token store file's ids (uint16).</summary>
    public static ushort[] Ids(string store, string file) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(File.ReadAllBytes(System.IO.Path.Combine(store, file))).ToArray();

    public static FfnConfig Mot(int experts = 4, int group = 4) => new() { Kind = FfnKind.MoT, Experts = experts, GroupSize = group };

    public static ModelConfig TinyModel(FfnConfig ffn) => new() { VocabSize = 32, DModel = 16, Layers = 2, Heads = 2, SeqLen = 8, Ffn = ffn };

    public static Tensor Randn(long seed, params long[] shape) { manual_seed(seed); return randn(shape); }

    /// <summary>A fresh folder under the system temp folder, deleted at dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("motlab-test").FullName;
        public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
    }
}
