using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace MoTLab.Shared.Data;

/// <summary>Opens corpus files: regular files only (a FIFO, device or socket would block or never end), and, when a
/// dashboard gave its data roots, only files whose real path lies inside them. The check is made on the file as
/// opened, not only on its name, so a file swapped for a link or a FIFO after the run was accepted is refused too:
/// on Linux the file is opened without blocking, then its type is read from the open descriptor (statx) and its real
/// path from /proc/self/fd.</summary>
static partial class CorpusFiles
{
    /// <summary>Refuses, by name, what <see cref="OpenRead"/> would refuse: called for every file when a corpus is
    /// opened, so a bad file fails the run before any token cache is read.</summary>
    /// <param name="realRoots">the data roots as real paths (<see cref="DataRoots.ResolveAll"/>), or null: any file</param>
    public static void Check(string path, IReadOnlyList<string>? realRoots)
    {
        var real = DataRoots.Resolve(path);
        if (realRoots is not null && !DataRoots.Contains(realRoots, real)) throw Outside(path, real, realRoots);
        if (Directory.Exists(real)) return;
        if (!IsRegular(real)) throw NotRegular(path);
    }

    /// <summary>Opens the file for reading, checking the file as opened (on Linux) or by name (elsewhere).</summary>
    public static FileStream OpenRead(string path, IReadOnlyList<string>? realRoots)
    {
        if (!OperatingSystem.IsLinux()) { Check(path, realRoots); return CorpusReadMeter.Opened(File.OpenRead(path)); }
        int fd = Open(path, ReadOnly | NonBlocking | CloseOnExec);
        if (fd < 0) throw new IOException($"{Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            if (Mode(fd, "", EmptyPath) is not { } mode || (mode & TypeMask) != Regular) throw NotRegular(path);
            var real = new FileInfo($"/proc/self/fd/{fd}").LinkTarget ?? path;
            if (realRoots is not null && !DataRoots.Contains(realRoots, real)) throw Outside(path, real, realRoots);
            return CorpusReadMeter.Opened(new FileStream(handle, FileAccess.Read));
        }
        catch { handle.Dispose(); throw; }
    }

    /// <summary><see cref="OpenRead"/>, with a file that cannot be opened told as a <see cref="CorpusException"/> naming it.</summary>
    public static FileStream OpenCorpusFile(string path, IReadOnlyList<string>? realRoots)
    {
        try { return OpenRead(path, realRoots); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CorpusException($"corpus file '{path}' cannot be read: {e.Message}"); }
    }

    /// <summary><paramref name="file"/> decompressed as its name says: gzip for ".gz", Zstandard for ".zst" (any
    /// case), else as it is. Disposing the result disposes <paramref name="file"/>.</summary>
    public static Stream Decompressed(Stream file, string path) =>
        path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionMode.Decompress)
        : path.EndsWith(".zst", StringComparison.OrdinalIgnoreCase) ? new ZstdSharp.DecompressionStream(file)
        : file;

    static CorpusException NotRegular(string path) =>
        new($"corpus file '{path}' is not a regular file (a FIFO, device or socket); MoTLab reads only regular files");

    static CorpusException Outside(string path, string real, IReadOnlyList<string> realRoots) =>
        new($"corpus file '{path}' resolves to '{real}', outside the data roots ({string.Join(", ", realRoots)})");

    static bool IsRegular(string realPath) =>
        !OperatingSystem.IsLinux() ? File.Exists(realPath) : Mode(AtCwd, realPath, 0) is { } mode && (mode & TypeMask) == Regular;

    // open(2) and statx(2); struct statx has one layout on every Linux architecture (stx_mode: u16 at offset 28)
    const int ReadOnly = 0, NonBlocking = 0x800, CloseOnExec = 0x80000, AtCwd = -100, EmptyPath = 0x1000;
    const uint StatxType = 0x1;
    const int TypeMask = 0xF000, Regular = 0x8000;

    static int? Mode(int dirFd, string path, int flags)
    {
        var buffer = new byte[256];
        return Statx(dirFd, path, flags, StatxType, buffer) == 0 ? BitConverter.ToUInt16(buffer, 28) : null;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirFd, string path, int flags, uint mask, [Out] byte[] buffer);
}

/// <summary>How far the reading of a corpus has got, in bytes of its files on disk (compressed bytes for a compressed
/// shard), for a preparation's progress and ETA: every corpus file is opened through <see cref="CorpusFiles.OpenRead"/>,
/// which reports to the meter started on the reading thread. A file counts with its position while open and its whole
/// length once the next one opens.</summary>
public sealed class CorpusReadMeter : IDisposable
{
    [ThreadStatic] static CorpusReadMeter? current;
    long done;
    FileStream? file;
    long fileLength;

    /// <summary>Meters the corpus files this thread opens from now until the meter is disposed.</summary>
    public static CorpusReadMeter Start() => current = new CorpusReadMeter();

    internal static FileStream Opened(FileStream stream)
    {
        if (current is { } m) { m.done += m.InFile(); m.file = stream; m.fileLength = stream.Length; }
        return stream;
    }

    long InFile()
    {
        if (file is null) return 0;
        try { return file.Position; }
        catch (ObjectDisposedException) { return fileLength; }
    }

    /// <summary>Bytes of corpus files read so far.</summary>
    public long Bytes => done + InFile();

    public void Dispose() { if (current == this) current = null; }
}
