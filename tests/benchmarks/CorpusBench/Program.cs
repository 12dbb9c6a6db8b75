// The token store's figures in docs/benchmarks.md:
//   prepare CORPUS TOKENIZER   a fresh store of CORPUS (in a temporary cache): MB of text per second, tokens per second,
//                              and the process's resident memory sampled every 100 ms (peak, and at each quarter)
//   batches STORE [cpu|cuda]   the cost of drawing one training batch from the map at medium shapes (256 × 256), on the
//                              host (cpu) or through pinned memory to the GPU (cuda, synchronised at the end)
//   parquet CORPUS OUT         CORPUS's documents written as Parquet files of 10,000 rows a row group (a "text" column,
//                              Snappy, as Hugging Face exports), to time reading them (prepare OUT byte)
using System.Diagnostics;
using MoTLab.Shared.Config;
using MoTLab.Shared.Data;
using MoTLab.Training.Data;
using MoTLab.Training.Runtime;

switch (args)
{
    case ["prepare", var spec, var tokenizerName]:
    {
        var cache = Directory.CreateTempSubdirectory("motlab-corpus-bench").FullName;
        try
        {
            var corpus = Corpus.Open(spec);
            var tokenizer = Tokenizers.Create(tokenizerName);
            var rss = new List<long>();
            using var sampling = new CancellationTokenSource();
            var sampler = Task.Run(async () =>
            {
                using var self = Process.GetCurrentProcess();
                while (!sampling.IsCancellationRequested) { self.Refresh(); lock (rss) rss.Add(self.WorkingSet64); await Task.Delay(100); }
            });
            var clock = Stopwatch.StartNew();
            var folder = TokenStoreWriter.Prepare(corpus, tokenizer, DataSplits.Documents, 0.05, cache);
            double seconds = clock.Elapsed.TotalSeconds;
            sampling.Cancel(); await sampler;
            var m = TokenStore.Manifest(folder)!;
            long tokens = m.TrainTokens + m.ValTokens;
            long[] q; lock (rss) q = [.. rss];
            string At(double f) => $"{q[(int)Math.Min(q.Length - 1, f * q.Length)] / 1e6:N0}";
            Console.WriteLine($"{spec} with {tokenizerName} on {Environment.ProcessorCount} cores: {m.Documents:N0} documents, {m.TextBytes / 1e6:N1} MB of text, {tokens:N0} tokens in {seconds:N1} s");
            Console.WriteLine($"  {m.TextBytes / 1e6 / seconds:N1} MB/s, {tokens / seconds / 1e6:N2} M tokens/s; resident memory peak {q.Max() / 1e6:N0} MB, at 25/50/75/100 %: {At(0.25)} / {At(0.5)} / {At(0.75)} / {At(0.999)} MB");
        }
        finally { Directory.Delete(cache, recursive: true); }
        break;
    }
    case ["batches", var store, .. var rest]:
    {
        TorchRuntime.Initialise();
        var device = TorchRuntime.ResolveDevice(rest is [var d] ? d : "cpu");
        const int Batch = 256, Seq = 256, Steps = 2000;
        using var data = TokenDataset.Open(store, Seq, 1, store, 50_257);
        for (int s = 0; s < 50; s++) { var (x, y) = data.TrainBatch(s, Batch, device); x.Dispose(); y.Dispose(); }   // warm
        if (device.type == TorchSharp.DeviceType.CUDA) TorchSharp.torch.cuda.synchronize();
        var clock = Stopwatch.StartNew();
        for (int s = 0; s < Steps; s++) { var (x, y) = data.TrainBatch(1000 + s, Batch, device); x.Dispose(); y.Dispose(); }
        if (device.type == TorchSharp.DeviceType.CUDA) TorchSharp.torch.cuda.synchronize();
        double us = clock.Elapsed.TotalMicroseconds / Steps;
        Console.WriteLine($"one {Batch} × {Seq} batch (inputs and targets as int64 tensors, on {device}) from {data.TrainTokens:N0} mapped tokens: {us:N0} µs");
        break;
    }
    case ["parquet", var spec, var outFolder]:
    {
        Directory.CreateDirectory(outFolder);
        var field = new Parquet.Schema.DataField<string>("text");
        int file = 0;
        foreach (var docs in Corpus.Open(spec).Documents().Chunk(100_000))
        {
            await using var stream = File.Create(Path.Combine(outFolder, $"part-{file++:D3}.parquet"));
            await using var writer = await Parquet.ParquetWriter.CreateAsync(new Parquet.Schema.ParquetSchema(field), stream);
            foreach (var group in docs.Chunk(10_000))
            {
                using var rows = writer.CreateRowGroup();
                await rows.WriteAsync(field, group);
            }
        }
        Console.WriteLine($"{file} Parquet files in {outFolder}");
        break;
    }
    default:
        Console.Error.WriteLine("usage: CorpusBench prepare CORPUS byte|gpt2 | batches STORE [cpu|cuda] | parquet CORPUS OUT");
        return 2;
}
return 0;
