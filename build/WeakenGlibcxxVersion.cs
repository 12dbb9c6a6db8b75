// Lets TorchSharp 0.107's libLibTorchSharp.so load on hosts whose libstdc++ predates GCC 13
// (Debian 12: GLIBCXX_3.4.30). The library asks for GLIBCXX_3.4.32 only through the symbol
// _ZSt21ios_base_library_initv, a link-time marker with no relocation, so marking that one
// version requirement weak (VER_FLG_WEAK in its Elf64_Vernaux entry) is enough for the loader.
// Compiled twice: as an MSBuild inline task (Directory.Build.targets) and into Training.Tests.
using System;
using System.IO;
using System.Text;

namespace MoTLab.Build
{
    public static class ElfVersionPatch
    {
        const uint ShtGnuVerneed = 0x6ffffffe;
        const ushort VerFlgWeak = 0x2;

        /// <summary>Sets VER_FLG_WEAK on every version requirement named <paramref name="version"/>.
        /// Returns how many entries changed (0 when already weak or absent). Throws on non-ELF64-LE input.</summary>
        public static int Weaken(byte[] elf, string version)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("only 64-bit little-endian ELF is supported");
            long shoff = (long)BitConverter.ToUInt64(elf, 0x28);
            int shentsize = BitConverter.ToUInt16(elf, 0x3A), shnum = BitConverter.ToUInt16(elf, 0x3C);
            int changed = 0;
            for (int i = 0; i < shnum; i++)
            {
                long sh = shoff + (long)i * shentsize;
                if (BitConverter.ToUInt32(elf, (int)sh + 4) != ShtGnuVerneed) continue;
                long offset = (long)BitConverter.ToUInt64(elf, (int)sh + 24);
                int link = (int)BitConverter.ToUInt32(elf, (int)sh + 40);   // index of the string table
                int count = (int)BitConverter.ToUInt32(elf, (int)sh + 44);  // number of Elf64_Verneed
                long strtab = (long)BitConverter.ToUInt64(elf, (int)(shoff + (long)link * shentsize) + 24);
                long need = offset;
                for (int n = 0; n < count; n++)
                {
                    int auxCount = BitConverter.ToUInt16(elf, (int)need + 2);
                    long aux = need + BitConverter.ToUInt32(elf, (int)need + 8);
                    for (int a = 0; a < auxCount; a++)
                    {
                        long name = strtab + BitConverter.ToUInt32(elf, (int)aux + 8);
                        if (ReadCString(elf, name) == version)
                        {
                            ushort flags = BitConverter.ToUInt16(elf, (int)aux + 4);
                            if ((flags & VerFlgWeak) == 0)
                            {
                                BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(elf, (int)aux + 4);
                                changed++;
                            }
                        }
                        aux += BitConverter.ToUInt32(elf, (int)aux + 12);
                    }
                    need += BitConverter.ToUInt32(elf, (int)need + 12);
                }
            }
            return changed;
        }

        /// <summary>True when a libstdc++ on this host defines <paramref name="version"/> (or none is found:
        /// then there is nothing to decide and the library is left alone).</summary>
        public static bool HostProvides(string version)
        {
            string[] candidates =
            {
                "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
                "/usr/lib64/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
            };
            foreach (var path in candidates)
                if (File.Exists(path))
                    return Contains(File.ReadAllBytes(path), Encoding.ASCII.GetBytes(version + "\0"));
            return true;
        }

        static string ReadCString(byte[] data, long at)
        {
            long end = at;
            while (end < data.Length && data[end] != 0) end++;
            return Encoding.ASCII.GetString(data, (int)at, (int)(end - at));
        }

        static bool Contains(byte[] haystack, byte[] needle)
        {
            for (int i = 0; i <= haystack.Length - needle.Length; i++)
            {
                int j = 0;
                while (j < needle.Length && haystack[i + j] == needle[j]) j++;
                if (j == needle.Length) return true;
            }
            return false;
        }
    }

#if !MOTLAB_NO_MSBUILD_TASK
    /// <summary>MSBuild task: weakens the requirement in each given file when the host lacks the version.</summary>
    public sealed class WeakenGlibcxxVersion : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required] public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();
        public string Version { get; set; } = "GLIBCXX_3.4.32";

        public override bool Execute()
        {
            if (ElfVersionPatch.HostProvides(Version)) return true;
            foreach (var item in Files)
            {
                var path = item.ItemSpec;
                if (!File.Exists(path)) continue;
                var bytes = File.ReadAllBytes(path);
                if (ElfVersionPatch.Weaken(bytes, Version) == 0) continue;
                File.WriteAllBytes(path, bytes);
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High,
                    $"MoTLab: marked {Version} weak in {path} (host libstdc++ predates GCC 13)");
            }
            return true;
        }
    }
#endif
}
