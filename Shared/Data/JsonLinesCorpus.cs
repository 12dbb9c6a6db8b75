using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace MoTLab.Shared.Data;

/// <summary>JSON Lines shards (C4's, SlimPajama's, most datasets' exports): one JSON object per line, the document in
/// its text field (data.text_field, default "text"); plain, gzip (.gz) or zstd (.zst). Read as a stream, a line at a
/// time: a shard is never held whole. Every problem names the file and the line.</summary>
public static class JsonLinesCorpus
{
    static readonly string[] Endings = [".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json.zst"];

    /// <summary>Whether <paramref name="path"/> is read as JSON Lines (by its name).</summary>
    public static bool Is(string path) => Endings.Any(e => path.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    /// <summary>The documents of one shard, in order; <paramref name="realRoots"/> as for <see cref="CorpusFiles.OpenRead"/>.</summary>
    public static IEnumerable<string> Documents(string path, string field, IReadOnlyList<string>? realRoots = null)
    {
        using var file = CorpusFiles.OpenCorpusFile(path, realRoots);
        using var input = CorpusFiles.Decompressed(file, path);
        var lines = new LineReader(input);
        int documents = 0;
        for (int line = 1; Next(lines, path, line) is { } text; line++)
        {
            if (string.IsNullOrWhiteSpace(text)) continue;
            documents++;
            yield return Field(text, field, path, line, complete: lines.Terminated);
        }
        if (documents == 0) throw new CorpusException($"corpus file '{path}' holds no documents (an empty shard)");
    }

    /// <summary>The next line, or null at the end; a corrupt archive and invalid UTF-8 are errors naming the line.</summary>
    static string? Next(LineReader lines, string path, int line)
    {
        try { return lines.Next(); }
        catch (DecoderFallbackException) { throw new CorpusException($"corpus file '{path}' line {line}: not valid UTF-8"); }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException or ZstdSharp.ZstdException)
        { throw new CorpusException($"corpus file '{path}' line {line}: the file is truncated or corrupt ({e.Message})"); }
    }

    /// <summary>A stream's lines, each decoded on its own (strict UTF-8), so that an error names its line: a reader that
    /// decodes blocks meets a bad byte lines before it reaches it.</summary>
    sealed class LineReader(Stream input)
    {
        static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);
        readonly byte[] buffer = new byte[1 << 16];
        readonly MemoryStream line = new();
        int at, filled;
        /// <summary>Whether the last line read ended with a line break (a cut-off file's last line does not).</summary>
        public bool Terminated { get; private set; }

        public string? Next()
        {
            line.SetLength(0);
            while (true)
            {
                if (at == filled)
                {
                    filled = input.Read(buffer, 0, buffer.Length); at = 0;
                    if (filled == 0) { Terminated = false; return line.Length == 0 ? null : Decode(); }
                }
                int end = Array.IndexOf(buffer, (byte)'\n', at, filled - at);
                if (end < 0) { line.Write(buffer, at, filled - at); at = filled; continue; }
                line.Write(buffer, at, end - at); at = end + 1;
                Terminated = true;
                return Decode();
            }
        }

        string Decode() => Strict.GetString(line.GetBuffer(), 0, (int)line.Length).TrimEnd('\r');
    }

    static string Field(string json, string field, string path, int line, bool complete)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) when (!complete) { throw new CorpusException($"corpus file '{path}' line {line}: the file is truncated or corrupt (it ends inside this line: {e.Message})"); }
        catch (JsonException e) { throw new CorpusException($"corpus file '{path}' line {line}: not a JSON object ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty(field, out var value) || value.ValueKind != JsonValueKind.String)
                throw new CorpusException($"corpus file '{path}' line {line}: no text field '{field}' (a string; data.text_field names it)");
            var text = value.GetString()!;
            if (text.Contains('\0')) throw new CorpusException($"corpus file '{path}' line {line}: the text holds NUL characters; MoTLab trains on text");
            return text;
        }
    }
}
