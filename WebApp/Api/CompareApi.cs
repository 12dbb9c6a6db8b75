using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Api;

/// <summary>The Compare page's data as CSV: one metric of several runs at full resolution, with the page's smoothing
/// (computed over each run's whole series, as the page does); a CSV field is quoted when a run's name needs it.</summary>
public static class CompareApi
{
    const int MaxRuns = 50;

    public static RouteGroupBuilder MapCompare(this RouteGroupBuilder api)
    {
        api.MapGet("/compare", Compare).ProducesProblem(StatusCodes.Status404NotFound);   // a run that does not exist
        return api;
    }

    static async Task<Results<PushStreamHttpResult, ValidationProblem, ProblemHttpResult>> Compare(string? ids, string? metric, string? smooth, string? format,
        RunService runs, MetricsQuery metrics, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        var idList = (ids ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (idList.Count == 0 || idList.Count > MaxRuns) errors["ids"] = [$"give 1 to {MaxRuns} run ids, comma-separated, e.g. ids=3,4"];
        else if (idList.FirstOrDefault(i => !int.TryParse(i, CultureInfo.InvariantCulture, out _)) is { } bad) errors["ids"] = [$"'{bad}' is not a run id"];
        var info = MetricCatalog.Find(metric ?? "train_loss");
        if (info is null) errors["metric"] = [$"'{metric}' is not a metric: {string.Join(", ", MetricCatalog.All.Select(m => m.Key))} or eval.NAME"];
        var smoothing = Smoothing.Parse(smooth ?? "none");
        if (smoothing is null) errors["smooth"] = [$"'{smooth}' is not a smoothing: none, ema-W, twema-W (W in 0..{Smoothing.MaxWeight}) or avg-N (N in 1..{Smoothing.MaxWindow})"];
        if (format is not (null or "csv")) errors["format"] = ["must be csv"];
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        var found = new List<RunRow>();
        foreach (var id in idList.Select(i => int.Parse(i, CultureInfo.InvariantCulture)).Distinct())
            if (await runs.GetAsync(id, ct) is { } run) found.Add(run);
            else return TypedResults.Problem($"run {id} does not exist", statusCode: StatusCodes.Status404NotFound);
        return TypedResults.Stream(async body =>
        {
            await using var writer = new StreamWriter(body, new UTF8Encoding(false));
            await writer.WriteAsync($"run_id,run_name,step,tokens,elapsed_s,{info!.Key},{info.Key}_smoothed\n");
            foreach (var run in found)
            {
                var smoother = info.EveryStep && smoothing!.Kind != SmoothingKind.None ? smoothing.Start(run.TotalSteps) : null;
                await foreach (var m in metrics.StreamAsync(run.Id, int.MaxValue, ct: ct))
                {
                    var value = info.Of(m);
                    var smoothed = smoother?.Add(m.Step, value ?? double.NaN);
                    if (value is null) continue;
                    await writer.WriteAsync(string.Join(',', [run.Id.ToString(CultureInfo.InvariantCulture), CsvField(run.Name), m.Step.ToString(CultureInfo.InvariantCulture),
                        m.Tokens.ToString(CultureInfo.InvariantCulture), MetricColumns.CsvNumber(m.ElapsedS), MetricColumns.CsvNumber(value), MetricColumns.CsvNumber(smoothed)]) + "\n");
                }
            }
        }, "text/csv; charset=utf-8", fileDownloadName: "compare.csv");
    }

    /// <summary>RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.</summary>
    static string CsvField(string text) => text.IndexOfAny([',', '"', '\n', '\r']) < 0 ? text : $"\"{text.Replace("\"", "\"\"")}\"";
}
