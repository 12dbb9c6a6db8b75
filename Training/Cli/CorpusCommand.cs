using System.CommandLine;
using MoTLab.Shared.Config;
using MoTLab.Shared.Data;
using MoTLab.Training.Data;

namespace MoTLab.Training.Cli;

/// <summary>`corpus prepare`: tokenizes a corpus into its token store ahead of training, with progress; Ctrl-C stops
/// after the current chunk and the same command resumes there.</summary>
public static class CorpusCommand
{
    public static Command Create()
    {
        var corpus = new Argument<string>("corpus") { Description = "A built-in corpus (synthetic, dotnet-docs, linux-docs, debian-docs) or a file/folder of text, JSON Lines or Parquet" };
        var defaults = new DataConfig();
        var tokenizer = new Option<string>("--tokenizer") { Description = "byte or gpt2", DefaultValueFactory = _ => Vocabularies.Gpt2 };
        var textField = new Option<string>("--text-field") { Description = "JSON Lines field / Parquet column of the text", DefaultValueFactory = _ => defaults.TextField };
        var valFraction = new Option<double>("--val-fraction") { Description = "The share held out for the eval loss", DefaultValueFactory = _ => defaults.ValFraction };
        var split = new Option<string>("--split") { Description = "documents (whole documents held out, by hash) or tail", DefaultValueFactory = _ => defaults.Split };
        var roots = new Option<string[]>("--data-root") { Description = "Refuse corpus files outside these folders (repeatable)", AllowMultipleArgumentsPerToken = true };
        var prepare = new Command("prepare", "Tokenize a corpus into its token store (resumable; run by training when needed)") { corpus, tokenizer, textField, valFraction, split, roots };
        prepare.SetAction(parse => CliErrors.Run(() =>
        {
            var data = defaults with { Corpus = parse.GetValue(corpus)!, Tokenizer = parse.GetValue(tokenizer)!, TextField = parse.GetValue(textField)!,
                                        ValFraction = parse.GetValue(valFraction), Split = parse.GetValue(split)! };
            var errors = ConfigValidator.Validate(new RunConfig { Data = data }).Where(e => e.Field.StartsWith("data.", StringComparison.Ordinal)).ToList();
            if (errors.Count > 0) throw new Train.ConfigException(errors);
            var dataRoots = parse.GetValue(roots) is { Length: > 0 } r ? r : null;
            Prepare(data, dataRoots);
        }));
        return new Command("corpus", "Corpora: prepare a token store") { prepare };
    }

    static void Prepare(DataConfig data, IReadOnlyList<string>? roots)
    {
        var source = Corpus.Open(data.Corpus, roots, data.TextField);
        var tok = Tokenizers.Create(data.Tokenizer);
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler stop = (_, e) => { e.Cancel = true; cancel.Cancel(); Console.Error.WriteLine("\nstopping after this chunk; the same command resumes"); };
        Console.CancelKeyPress += stop;
        bool tty = !Console.IsErrorRedirected;
        var shown = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            var folder = TokenStoreWriter.Prepare(source, tok, data.Split, data.ValFraction, log: line => Console.Error.WriteLine(line), cancel: cancel.Token, progress: p =>
            {
                if (shown.Elapsed < TimeSpan.FromSeconds(tty ? 1 : 5)) return;
                shown.Restart();
                if (tty) Console.Error.Write($"\r{p.Describe()}\u001b[K"); else Console.Error.WriteLine(p.Describe());
            });
            if (tty) Console.Error.WriteLine();
            var m = TokenStore.Manifest(folder);
            Console.WriteLine(m is null ? folder
                : $"{folder}: {m.Documents:N0} documents ({m.ValDocuments:N0} held out), {m.TrainTokens:N0} train and {m.ValTokens:N0} held-out {m.Tokenizer} tokens");
        }
        catch (OperationCanceledException) { Environment.Exit(130); }                  // stopped by Ctrl-C: resumable
        finally { Console.CancelKeyPress -= stop; }
    }
}
