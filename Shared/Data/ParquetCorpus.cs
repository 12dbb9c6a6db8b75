using Parquet;
using Parquet.Schema;

namespace MoTLab.Shared.Data;

/// <summary>Parquet files (Hugging Face datasets: FineWeb, C4's parquet export): one document per row, its text in a
/// string column (data.text_field, default "text"). Read with Parquet.Net a row group at a time: a file is never held
/// whole, only one row group's text column. Every problem names the file, and the row group and row where there is one.</summary>
public static class ParquetCorpus
{
    /// <summary>Whether <paramref name="path"/> is read as Parquet (by its name).</summary>
    public static bool Is(string path) => path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase);

    /// <summary>The documents of one file, in row order; <paramref name="realRoots"/> as for <see cref="CorpusFiles.OpenRead"/>.
    /// A null text (a missing value) is no document.</summary>
    public static IEnumerable<string> Documents(string path, string column, IReadOnlyList<string>? realRoots = null)
    {
        using var file = CorpusFiles.OpenCorpusFile(path, realRoots);
        var reader = Call(path, null, () => ParquetReader.CreateAsync(file, leaveStreamOpen: true));
        try { foreach (var text in Rows(reader, path, column)) yield return text; }
        finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    static IEnumerable<string> Rows(ParquetReader reader, string path, string column)
    {
        var field = reader.Schema.DataFields.FirstOrDefault(f => f.Name == column && f.Path.ToList().Count == 1);
        if (field is null || !IsText(field))
            throw new CorpusException($"corpus file '{path}': no text column '{column}' (a string column; data.text_field names it). " +
                $"Its columns: {string.Join(", ", reader.Schema.DataFields.Select(f => $"{f.Name} ({(IsText(f) ? "String" : f.ClrType.Name)})"))}");
        long documents = 0;
        for (int group = 0; group < reader.RowGroupCount; group++)
        {
            string?[] texts;
            using (var rows = reader.OpenRowGroupReader(group))
            {
                texts = new string?[rows.RowCount];
                Call(path, group, async () => { await rows.ReadAsync(field, texts.AsMemory()!); return 0; });
            }
            for (int row = 0; row < texts.Length; row++)
            {
                if (texts[row] is not { } text) continue;
                if (text.Contains('\0')) throw new CorpusException($"corpus file '{path}' row group {group} row {row}: the text holds NUL characters; MoTLab trains on text");
                documents++;
                yield return text;
            }
        }
        if (documents == 0) throw new CorpusException($"corpus file '{path}' holds no documents (no row has a '{column}' text)");
    }

    /// <summary>A column of single strings (Parquet.Net gives UTF-8 columns as string or as ReadOnlyMemory&lt;char&gt;).</summary>
    static bool IsText(DataField f) => !f.IsArray && (f.ClrType == typeof(string) || f.ClrType == typeof(ReadOnlyMemory<char>));

    /// <summary>Runs one Parquet.Net call to its end (corpora are read synchronously, on the preparing thread); what a
    /// corrupt or truncated file makes it throw becomes an error naming the file and row group.</summary>
    static T Call<T>(string path, int? group, Func<Task<T>> call)
    {
        try { return call().GetAwaiter().GetResult(); }
        catch (Exception e) when (e is not CorpusException and not OutOfMemoryException)
        {
            var where = group is null ? "" : $" row group {group}";
            throw new CorpusException($"corpus file '{path}'{where}: not a readable Parquet file, or a truncated or corrupt one ({e.Message})");
        }
    }
}
