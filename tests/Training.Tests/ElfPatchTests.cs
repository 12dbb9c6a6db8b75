using MoTLab.Build;

namespace MoTLab.Training.Tests;

public class ElfPatchTests
{
    static string PackagedLibrary()
    {
        var nuget = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Path.Combine(nuget, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    [Fact]
    public void Weakening_changes_only_the_flag_of_the_glibcxx_3_4_32_requirement()
    {
        var original = File.ReadAllBytes(PackagedLibrary());
        var patched = (byte[])original.Clone();
        Assert.Equal(1, ElfVersionPatch.Weaken(patched, "GLIBCXX_3.4.32"));
        var diff = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        Assert.Single(diff);                                       // one byte: the low byte of vna_flags
        Assert.Equal(original[diff[0]] | 0x2, patched[diff[0]]);
        Assert.Equal(0, ElfVersionPatch.Weaken(patched, "GLIBCXX_3.4.32")); // idempotent
        Assert.Equal(0, ElfVersionPatch.Weaken((byte[])original.Clone(), "GLIBCXX_9.9.9"));
    }

    [Fact]
    public void The_build_output_copy_loads_on_this_host()
    {
        // Every test here uses TorchSharp; this one states why it can: where the host lacks the version,
        // the copy beside the test assembly is patched and the NuGet cache's original is not.
        var copy = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        var bytes = File.ReadAllBytes(copy);
        Assert.Equal(0, ElfVersionPatch.Weaken(bytes, ElfVersionPatch.HostProvides("GLIBCXX_3.4.32") ? "GLIBCXX_9.9.9" : "GLIBCXX_3.4.32"));
        using var t = TorchSharp.torch.ones(2, 2);
        Assert.Equal(4f, t.sum().item<float>());
        if (!ElfVersionPatch.HostProvides("GLIBCXX_3.4.32"))
            Assert.Equal(1, ElfVersionPatch.Weaken(File.ReadAllBytes(PackagedLibrary()), "GLIBCXX_3.4.32"));
    }

    [Fact]
    public void Non_elf_input_is_refused()
    {
        Assert.Throws<InvalidDataException>(() => ElfVersionPatch.Weaken(new byte[100], "GLIBCXX_3.4.32"));
    }
}
