using MoTLab.Shared.Data;
using Microsoft.Extensions.Options;

namespace MoTLab.WebApp.Runs;

/// <summary>Stores uploaded corpora under the data folder's uploads/, with generated names only (the
/// client's file name is kept as a readable suffix, stripped to safe characters), up to MaxUploadMB.</summary>
public sealed class UploadStore(IOptions<MoTLabOptions> options)
{
    public long MaxBytes => options.Value.MaxUploadMB * 1024L * 1024L;

    public async Task<string> SaveAsync(Stream content, string clientName, CancellationToken ct)
    {
        var safe = new string(Path.GetFileNameWithoutExtension(clientName).Where(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_').Take(40).ToArray());
        var path = Path.Combine(options.Value.UploadsPath, $"{Guid.NewGuid():N}{(safe.Length > 0 ? "-" + safe : "")}.txt");
        var tmp = path + ".part";
        try
        {
            FileStream file;
            try { Directory.CreateDirectory(options.Value.UploadsPath); file = File.Create(tmp); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new UploadStorageException(options.Value.UploadsPath, e); }
            await using (file)
            {
                var buffer = new byte[81920]; long total = 0; int n;
                while ((n = await content.ReadAsync(buffer, ct)) > 0)
                {
                    total += n;
                    if (total > MaxBytes) throw new UploadTooLargeException($"the upload is larger than {options.Value.MaxUploadMB} MB (MoTLab:MaxUploadMB)");
                    try { await file.WriteAsync(buffer.AsMemory(0, n), ct); }
                    catch (IOException e) { throw new UploadStorageException(options.Value.UploadsPath, e); }
                }
            }
            Corpus.ReadUtf8(tmp);   // binary, empty or non-UTF-8 uploads are refused here, with the reason
            File.Move(tmp, path);
            return path;
        }
        finally { if (File.Exists(tmp)) File.Delete(tmp); }
    }
}

/// <summary>The upload passed MoTLab:MaxUploadMB; nothing of it is kept.</summary>
public sealed class UploadTooLargeException(string message) : IOException(message);

/// <summary>The uploads folder cannot be written (read-only, full): the server's problem, not the file's.</summary>
public sealed class UploadStorageException(string folder, Exception inner)
    : IOException($"the upload could not be stored in {folder}: {inner.Message}", inner);
