using System.Text.Json;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Forms;
using Microsoft.JSInterop;
using MudBlazor;
using MoTLab.Shared.Config;
using MoTLab.Shared.Data;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Components.Charts;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Components.Pages;

public partial class NewRun
{
    /// <summary>Whether the chosen kind reads the setting (its descriptor's <see cref="FfnKindInfo.Settings"/>): its field shows.</summary>
    bool Uses(string path) => form.Kind.Info().Settings.Contains(path);

    [SupplyParameterFromQuery(Name = "clone")] public int? CloneId { get; set; }
    RunForm form = RunForm.From(Presets.Find("tiny-mot")!.Config);
    Dictionary<string, string[]> errors = [];
    IReadOnlyList<CorpusCatalog.CorpusInfo> corpora = [];
    string estimate = "";
    bool launching;
    string group = Presets.Groups[0].Name;
    int? groupSteps;
    bool groupSweepLr;
    Dictionary<string, string[]> groupErrors = [];

    async Task LaunchGroupAsync()
    {
        launching = true;
        var (set, e) = await Groups.LaunchAsync(group, groupSteps, form.Device, sweepLearningRates: groupSweepLr ? LearningRateSweeps.Rates : null);
        launching = false;
        groupErrors = e;
        if (set is not null) Nav.NavigateTo(set.Url);
    }

    protected override async Task OnInitializedAsync()
    {
        corpora = Corpora.List();
        if (CloneId is { } id && await RunService.GetAsync(id) is { } source)
        {
            form = RunForm.From(JsonSerializer.Deserialize<RunConfig>(source.ConfigJson, MoTLab.Shared.Json.Options)!);
            form.Name = source.Name + " (copy)"; form.Tags = source.Tags; form.Device = source.Requested.Again.ToString();
        }
        Resolve();
    }

    async Task LoadPreset(string? name)
    {
        if (name is null || Presets.Find(name) is not { } p) return;
        var device = form.Device;
        form = RunForm.From(p.Config);
        form.Device = device;
        await Check();
    }

    string? Msg(string field) => errors.TryGetValue(field, out var m) ? string.Join("; ", m) : null;

    /// <summary>A field's rule for MudBlazor: the server-side check's message for its config path (MudBlazor then marks
    /// the field red, with the message beneath and aria-invalid set). MudBlazor's own validation owns a field's error
    /// state, so errors are handed to it this way rather than through the Error parameter, which it overwrites.</summary>
    Func<T?, string?> Rule<T>(string field) { ruled.Add(field); return _ => Msg(field); }
    readonly HashSet<string> ruled = [];
    MudForm? fields;

    CreateRunRequest? Request()
    {
        var (cfg, formError) = form.ToConfig();
        if (cfg is null) { errors = new() { [formError!.Value.Field] = [formError.Value.Message] }; return null; }
        return new CreateRunRequest
        {
            Name = form.Name, Config = cfg, Device = form.Device, Notes = form.Notes, ParentId = CloneId,
            Tags = form.Tags.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        };
    }

    /// <summary>Checks the form as the server will and marks every field the check names (a change to one field can make
    /// another one wrong: the batch size against the group size).</summary>
    async Task Check()
    {
        Resolve();
        if (fields is not null) await fields.ValidateAsync();
        sweep?.Check();
    }

    bool showSweep;
    SweepPanel? sweep;

    /// <summary>What a sweep starts from: this form's config, device and name.</summary>
    (RunConfig? Config, string Device, string Name) SweepBase() => (form.ToConfig().Config, form.Device, form.Name);

    void Resolve()
    {
        var request = Request();
        if (request is null) { estimate = ""; return; }
        var (cfg, _, e) = Requests.Resolve(request);
        errors = e;
        estimate = cfg is null ? "fix the fields marked in red" :
            $"{ModelSize.Parameters(cfg.Model):N0} parameters · {3 * ModelSize.ForwardFlopsPerToken(cfg.Model, cfg.Train.BatchSize) / 1e6:N2} MFLOP per token per step · " +
            $"{(double)cfg.Train.Steps * cfg.Train.BatchSize * cfg.Model.SeqLen:N0} tokens in all";
        (corpusLine, epochs) = cfg is null ? (null, null) : Epochs(cfg);
    }

    string? corpusLine;
    double? epochs;
    (DataConfig Data, (long? Tokens, bool Estimated) Count)? counted;      // the corpus's tokens, counted once per corpus and tokenizer

    /// <summary>The corpus's training tokens with the chosen tokenizer and how many times the run reads them (steps ×
    /// batch × sequence ÷ tokens); above one the form warns.</summary>
    (string Line, double? Epochs) Epochs(RunConfig cfg)
    {
        if (counted?.Data != cfg.Data) counted = (cfg.Data, Corpora.TrainTokens(cfg.Data));
        var (tokens, estimated) = counted.Value.Count;
        if (tokens is not { } n || n == 0) return ($"{cfg.Data.Corpus} with {cfg.Data.Tokenizer}: not prepared yet, its tokens are counted when it is (Corpora page)", null);
        double reads = (double)cfg.Train.Steps * cfg.Train.BatchSize * cfg.Model.SeqLen / n;
        return ($"{cfg.Data.Corpus} with {cfg.Data.Tokenizer}: {(estimated ? "about " : "")}{n:N0} training tokens; this run reads them {reads:0.##} time{(reads == 1 ? "" : "s")} (epochs)", reads);
    }

    async Task UploadedAsync(string path)
    {
        form.Corpus = path;
        corpora = Corpora.List();
        await Check();
    }

    async Task LaunchAsync()
    {
        var request = Request();
        if (request is null) return;
        launching = true;
        var (run, e) = await RunService.CreateAsync(request);
        launching = false;
        if (run is null) { errors = e; if (fields is not null) await fields.ValidateAsync(); return; }
        Nav.NavigateTo($"/runs/{run.Id}");
    }
}
