using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Shared.Data;

namespace MoTLab.Training.Data;

/// <summary>Prepares a <see cref="TokenStore"/>: reads a corpus as a stream, tokenizes it in parallel and appends the
/// ids to train.bin / val.bin. The algorithm:
///   1. One thread reads documents in corpus order into chunks of about 16M characters (two chunks in flight at most,
///      so memory stays flat whatever the corpus's size), noting how many bytes of the corpus files it has read.
///   2. Each chunk is tokenized on every core (a document over 64K characters in pieces cut at a line start, where
///      GPT-2's pre-tokenizer splits anyway, so that one long document does not keep the other cores waiting) and, under data.split "documents", every document is hashed (SHA-256 of
///      its UTF-8): it is held out when the hash's top 53 bits, as a fraction, fall below the held-out share.
///   3. The chunk's ids are appended in document order, the files flushed, then state.json written (atomically):
///      a resumed preparation cuts the files back to the lengths the state names and skips the documents it counts.
///   4. At the end (under "tail", after moving the stream's last share into val.bin) the manifest is written and the
///      partial folder renamed to the store's name.</summary>
public static class TokenStoreWriter
{
    public const int ChunkChars = 16 << 20;
    const int PieceChars = 64 << 10;

    /// <summary>The finished store of <paramref name="corpus"/> (prepared now unless it already is), or a pre-tokenized
    /// corpus's own folder. Waits while another process prepares the same store. <paramref name="progress"/> is called
    /// after every chunk. Cancelling stops after the current chunk, its state kept: the next call resumes there.</summary>
    /// <param name="chunkChars">Characters of text a chunk gathers (tests take small chunks to have several).</param>
    public static string Prepare(Corpus corpus, ITextTokenizer tokenizer, string split, double heldOut, string? cache = null,
        Action<PrepareState>? progress = null, Action<string>? log = null, CancellationToken cancel = default, int chunkChars = ChunkChars)
    {
        if (corpus.Pretokenized is { } bins) return bins;
        split = TokenStore.SplitOf(corpus, split);
        var folder = TokenStore.Folder(cache, corpus.Identity, tokenizer.Name, split, heldOut);
        using var held = Lock(folder, log, cancel);
        if (held is null) return folder;                                   // finished, maybe by another process meanwhile
        var partial = folder + TokenStore.Partial;
        var resumed = TokenStore.Preparing(folder) is { } s && s.Tokenizer == tokenizer.Name ? s with { Error = null } : null;
        log?.Invoke(resumed is null
            ? $"preparing corpus '{corpus.Name}' with {tokenizer.Name} into {folder}"
            : $"resuming the preparation of corpus '{corpus.Name}' with {tokenizer.Name} after {resumed.Documents:N0} documents");
        try
        {
            var state = Write(corpus, tokenizer, split, heldOut, partial, resumed, progress, cancel, chunkChars);
            var manifest = new TokenStoreManifest(state)
            {
                Identity = corpus.Identity, Format = corpus.Format, VocabSize = tokenizer.VocabSize,
                TokenType = TokenStoreManifest.TokenTypeOf(TokenStore.Width(tokenizer.VocabSize)), Split = split, HeldOut = heldOut,
                Sources = corpus.Files.Select(f => new FileInfo(f)).Select(f => new SourceFile(f.FullName, f.Length, f.LastWriteTimeUtc)).ToList(),
                PreparedUtc = DateTime.UtcNow,
            };
            WriteJson(Path.Combine(partial, TokenStore.ManifestFile), manifest);
            File.Delete(Path.Combine(partial, TokenStore.StateFile));
            Directory.Move(partial, folder);                                  // the lock, still held, moves with it: no one can take a fresh one meanwhile
            log?.Invoke($"prepared corpus '{corpus.Name}': {manifest.Documents:N0} document{(manifest.Documents == 1 ? "" : "s")}, {manifest.TrainTokens:N0} train / {manifest.ValTokens:N0} held-out tokens in {manifest.Seconds:N1} s");
            return folder;
        }
        catch (CorpusException e)
        {
            var last = TokenStore.Preparing(folder) ?? new PrepareState { Corpus = corpus.Name, Tokenizer = tokenizer.Name, Pid = Environment.ProcessId };
            WriteJson(Path.Combine(partial, TokenStore.StateFile), last with { Error = e.Message, UpdatedUtc = DateTime.UtcNow });
            throw;
        }
    }

    /// <summary>Holds the partial folder's lock, or returns null once the store is finished. A process that finds the
    /// lock taken waits for it (the other process finishes the store or stops).</summary>
    static FileStream? Lock(string folder, Action<string>? log, CancellationToken cancel)
    {
        bool told = false;
        while (true)
        {
            if (TokenStore.Manifest(folder) is not null) return null;
            var partial = folder + TokenStore.Partial;
            Directory.CreateDirectory(partial);
            try
            {
                var held = new FileStream(Path.Combine(partial, TokenStore.LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                if (TokenStore.Manifest(folder) is null) return held;
                held.Dispose();                                           // finished meanwhile: this partial folder is a new, empty one
                Directory.Delete(partial, recursive: true);
                return null;
            }
            catch (IOException)
            {
                if (!told) { log?.Invoke($"waiting for another process that is preparing {folder}"); told = true; }
                Task.Delay(500, cancel).GetAwaiter().GetResult();
            }
        }
    }

    sealed record Chunk(List<string> Documents, long SourceBytesRead, long TextChars);

    static PrepareState Write(Corpus corpus, ITextTokenizer tokenizer, string split, double heldOut, string partial, PrepareState? resumed,
        Action<PrepareState>? progress, CancellationToken cancel, int chunkChars)
    {
        int width = TokenStore.Width(tokenizer.VocabSize);
        var state = resumed ?? new PrepareState { Corpus = corpus.Name, Tokenizer = tokenizer.Name };
        state = state with { SourceBytes = corpus.SourceBytes, Pid = Environment.ProcessId };
        using var train = Append(Path.Combine(partial, TokenStore.TrainFile), state.TrainTokens * width);
        using var val = Append(Path.Combine(partial, TokenStore.ValFile), state.ValTokens * width);
        bool byDocument = split == DataSplits.Documents;

        using var chunks = new BlockingCollection<Chunk>(boundedCapacity: 2);
        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(cancel);   // also when writing fails (a full disk)
        Exception? readFailure = null;
        long skip = state.Documents;
        var reader = new Thread(() =>
        {
            try
            {
                using var meter = CorpusReadMeter.Start();
                var docs = new List<string>(); long chars = 0, index = 0;
                foreach (var doc in corpus.Documents())
                {
                    if (stopReading.IsCancellationRequested) break;
                    if (index++ < skip) continue;
                    docs.Add(doc); chars += doc.Length;
                    if (chars < chunkChars) continue;
                    chunks.Add(new Chunk(docs, meter.Bytes, chars), stopReading.Token);
                    docs = []; chars = 0;
                }
                if (docs.Count > 0 && !stopReading.IsCancellationRequested) chunks.Add(new Chunk(docs, meter.Bytes, chars), stopReading.Token);
            }
            catch (OperationCanceledException) { }
            catch (Exception e) { readFailure = e; }
            finally { chunks.CompleteAdding(); }
        }) { IsBackground = true, Name = "corpus reader" };
        reader.Start();

        var clock = Stopwatch.StartNew();
        double before = state.Seconds;
        long tokensBefore = state.Tokens, bytesBefore = state.SourceBytesRead;
        var buffer = new MemoryStream();
        try
        {
            foreach (var chunk in chunks.GetConsumingEnumerable())
            {
                var (ids, heldOutDoc) = Tokenize(chunk.Documents, tokenizer, byDocument ? heldOut : 0);
                long trainTokens = 0, valTokens = 0, trainDocs = 0, valDocs = 0, textBytes = 0;
                for (int d = 0; d < ids.Length; d++)
                {
                    var target = heldOutDoc[d] ? val : train;
                    long n = 0;
                    foreach (var piece in ids[d]) { WriteIds(target, piece, width, buffer); n += piece.Length; }
                    if (heldOutDoc[d]) { valTokens += n; valDocs++; } else { trainTokens += n; trainDocs++; }
                    textBytes += Encoding.UTF8.GetByteCount(chunk.Documents[d]);
                }
                train.Flush(flushToDisk: true); val.Flush(flushToDisk: true);
                double attempt = clock.Elapsed.TotalSeconds;
                long newTokens = state.Tokens + trainTokens + valTokens - tokensBefore, newBytes = chunk.SourceBytesRead;
                state = state with
                {
                    Documents = state.Documents + ids.Length, TrainDocuments = state.TrainDocuments + trainDocs, ValDocuments = state.ValDocuments + valDocs,
                    TrainTokens = state.TrainTokens + trainTokens, ValTokens = state.ValTokens + valTokens, TextBytes = state.TextBytes + textBytes,
                    SourceBytesRead = Math.Max(state.SourceBytesRead, newBytes), Seconds = before + attempt, TokensPerS = newTokens / Math.Max(attempt, 1e-9),
                    EtaS = corpus.SourceBytes > 0 && newBytes > bytesBefore && newBytes < corpus.SourceBytes ? attempt * (corpus.SourceBytes - newBytes) / (newBytes - bytesBefore) : null,
                    UpdatedUtc = DateTime.UtcNow,
                };
                WriteJson(Path.Combine(partial, TokenStore.StateFile), state);
                progress?.Invoke(state);
            }
        }
        finally { stopReading.Cancel(); reader.Join(); }
        if (readFailure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(readFailure).Throw();
        cancel.ThrowIfCancellationRequested();
        if (state.Tokens == 0) throw new CorpusException($"corpus '{corpus.Name}' has no text");
        if (!byDocument && state.ValTokens == 0)                          // (a resumed preparation may have moved it already)
        {
            state = MoveTail(train, val, width, heldOut, state);
            WriteJson(Path.Combine(partial, TokenStore.StateFile), state);
        }
        if (byDocument && (state.ValDocuments == 0 || state.TrainDocuments == 0))
            throw new CorpusException($"corpus '{corpus.Name}': holding out whole documents at data.val_fraction {heldOut} left {(state.ValDocuments == 0 ? "no document held out" : "no document to train on")} " +
                $"of its {state.Documents:N0}; use a corpus of more documents, or set data.split to \"tail\" to hold out the end of the token stream");
        return state with { SourceBytesRead = corpus.SourceBytes, EtaS = null };
    }

    /// <summary>Every document's ids (in pieces) and whether it is held out, tokenized on every core.</summary>
    static (int[][][] Ids, bool[] HeldOut) Tokenize(List<string> docs, ITextTokenizer tokenizer, double heldOut)
    {
        var pieces = docs.SelectMany((d, i) => Pieces(d).Select(p => (Doc: i, Text: p))).ToArray();
        var encoded = new int[pieces.Length][];
        Parallel.For(0, pieces.Length, i => encoded[i] = tokenizer.Encode(pieces[i].Text));
        var ids = new int[docs.Count][][];
        foreach (var group in pieces.Select((p, i) => (p.Doc, i)).GroupBy(p => p.Doc)) ids[group.Key] = group.Select(p => encoded[p.i]).ToArray();
        var held = new bool[docs.Count];
        if (heldOut > 0) Parallel.For(0, docs.Count, i => held[i] = IsHeldOut(docs[i], heldOut));
        return (ids, held);
    }

    /// <summary>Whether a document is held out: a pure function of its text, so the same document is held out in any
    /// corpus, at any position, on any machine.</summary>
    public static bool IsHeldOut(string document, double heldOut)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(document), hash);
        return (System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(hash) >> 11) * (1.0 / (1UL << 53)) < heldOut;
    }

    /// <summary>A long document in pieces of about <see cref="PieceChars"/>, each cut after a single line break between
    /// two characters that are not whitespace ("x\nT"): GPT-2's pre-tokenizer splits on both sides of such a break, at
    /// the end of a piece as inside the text, so the ids are those of the whole text. (After "\n\n" it would not be: a
    /// text ending in "\n\n" is one pre-token, the same two breaks before a letter are two.)</summary>
    static IEnumerable<string> Pieces(string doc)
    {
        int from = 0;
        while (doc.Length - from > PieceChars)
        {
            int cut = from + PieceChars;
            while (cut < doc.Length && !(doc[cut - 1] == '\n' && !char.IsWhiteSpace(doc[cut - 2]) && !char.IsWhiteSpace(doc[cut]))) cut++;
            if (cut >= doc.Length) break;
            yield return doc[from..cut];
            from = cut;
        }
        yield return from == 0 ? doc : doc[from..];
    }

    static void WriteIds(FileStream file, int[] ids, int width, MemoryStream buffer)
    {
        buffer.SetLength(0);
        Span<byte> one = stackalloc byte[4];
        foreach (var id in ids)
        {
            if (width == 2) { System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(one, (ushort)id); buffer.Write(one[..2]); }
            else { System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(one, (uint)id); buffer.Write(one); }
        }
        file.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>A split's file opened for appending at <paramref name="length"/> bytes: anything a crash left beyond the
    /// last saved state is cut off.</summary>
    static FileStream Append(string path, long length)
    {
        var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        file.SetLength(Math.Min(file.Length, length));
        if (file.Length != length) throw new CorpusException($"token store file '{path}' is shorter than its saved state says; delete its folder to prepare it afresh");
        file.Seek(0, SeekOrigin.End);
        return file;
    }

    /// <summary>data.split "tail": the stream's last share of tokens (at least one) moved from train.bin into val.bin.</summary>
    static PrepareState MoveTail(FileStream train, FileStream val, int width, double heldOut, PrepareState state)
    {
        long total = state.TrainTokens + state.ValTokens, valTokens = Math.Max(1, (long)(total * heldOut));
        long trainTokens = total - valTokens;
        val.SetLength(0);
        train.Seek(trainTokens * width, SeekOrigin.Begin);
        train.CopyTo(val);
        train.SetLength(trainTokens * width);
        train.Flush(flushToDisk: true); val.Flush(flushToDisk: true);
        return state with { TrainTokens = trainTokens, ValTokens = valTokens, TrainDocuments = state.Documents, ValDocuments = 0 };
    }

    static void WriteJson<T>(string path, T value)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(value, Json.Indented));
        File.Move(tmp, path, overwrite: true);
    }
}
