using Microsoft.Extensions.Options;

namespace MoTLab.WebApp.Runs;

/// <summary>Stores uploaded corpora under the data folder's uploads/, with generated names only (the
/// client's file name is kept as a readable suffix, stripped to safe characters), up to MaxUploadMB.</summary>
public sealed class UploadStore(IOptions<MoTLabOptions> options)
{
    public long MaxBytes => options.Value.MaxUploadMB * 1024L * 1024L;

    public async Task<string> SaveAsync(Stream content, string clientName, CancellationToken ct)
    {
        Directory.CreateDirectory(options.Value.UploadsPath);
        var safe = new string(Path.GetFileNameWithoutExtension(clientName).Where(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_').Take(40).ToArray());
        var path = Path.Combine(options.Value.UploadsPath, $"{Guid.NewGuid():N}{(safe.Length > 0 ? "-" + safe : "")}.txt");
        var tmp = path + ".part";
        try
        {
            await using (var file = File.Create(tmp))
            {
                var buffer = new byte[81920]; long total = 0; int n;
                while ((n = await content.ReadAsync(buffer, ct)) > 0)
                {
                    total += n;
                    if (total > MaxBytes) throw new InvalidDataException($"the upload is larger than {options.Value.MaxUploadMB} MB (MoTLab:MaxUploadMB)");
                    await file.WriteAsync(buffer.AsMemory(0, n), ct);
                }
            }
            Training.Data.Corpus.ReadUtf8(tmp);   // binary, empty or non-UTF-8 uploads are refused here, with the reason
            File.Move(tmp, path);
            return path;
        }
        finally { if (File.Exists(tmp)) File.Delete(tmp); }
    }
}
