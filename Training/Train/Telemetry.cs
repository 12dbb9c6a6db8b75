using MoTLab.Shared.Runs;
using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Telemetry;

namespace MoTLab.Training.Train;

/// <summary>Where a run's telemetry goes: files (headless `train`), the console, a dashboard hub (worker).</summary>
public interface ITelemetrySink
{
    void OnStep(StepMetrics metrics) { }
    void OnRouting(IReadOnlyList<RoutingSnapshot> snapshots) { }
    void OnLog(string line) { }
    void OnCheckpoint(long step, string path, double? trainLoss, double? evalLoss) { }
}

/// <summary>metrics.jsonl and routing.jsonl in the run folder, one JSON object per line, flushed per write.</summary>
public sealed class JsonlSink : ITelemetrySink, IDisposable
{
    private readonly StreamWriter metrics;
    private readonly StreamWriter routing;

    public JsonlSink(string runDir, long resumedFromStep = -1)
    {
        var metricsPath = Path.Combine(runDir, RunFolder.MetricsFile);
        var routingPath = Path.Combine(runDir, RunFolder.RoutingFile);
        if (resumedFromStep >= 0)
        {   // drop what was logged after the checkpoint we resume from, so no step appears twice
            TruncateAfter(metricsPath, resumedFromStep);
            TruncateAfter(routingPath, resumedFromStep);
        }
        metrics = new StreamWriter(metricsPath, append: true) { AutoFlush = true };
        routing = new StreamWriter(routingPath, append: true) { AutoFlush = true };
    }

    public void OnStep(StepMetrics m) => metrics.WriteLine(JsonSerializer.Serialize(m, Json.Options));
    public void OnRouting(IReadOnlyList<RoutingSnapshot> snapshots)
    {
        foreach (var s in snapshots) routing.WriteLine(JsonSerializer.Serialize(s, Json.Options));
    }

    static void TruncateAfter(string path, long step)
    {
        if (!File.Exists(path)) return;
        var keep = File.ReadLines(path).Where(line =>
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.GetProperty("step").GetInt64() <= step;
        }).ToList();
        File.WriteAllLines(path, keep);
    }

    public void Dispose() { metrics.Dispose(); routing.Dispose(); }
}

/// <summary>One progress line per logged step: step, loss, tokens/s, ETA.</summary>
public sealed class ConsoleSink(long totalSteps, TextWriter? output = null) : ITelemetrySink
{
    private readonly TextWriter output = output ?? Console.Out;

    public void OnStep(StepMetrics m)
    {
        double stepsPerS = m.TokensPerS > 0 && m.Step > 0 ? m.Step / Math.Max(m.ElapsedS, 1e-9) : 0;
        var eta = stepsPerS > 0 ? TimeSpan.FromSeconds((totalSteps - m.Step) / stepsPerS) : TimeSpan.Zero;
        var eval = m.EvalLoss is { } e ? $" eval {e:F4}" : "";
        output.WriteLine($"step {m.Step,7}/{totalSteps} loss {m.TrainLoss:F4}{eval} lr {m.Lr:E2} grad {m.GradNorm:F3} {m.TokensPerS,10:N0} tok/s mfu {m.Mfu:P1} eta {eta:hh\\:mm\\:ss}");
    }

    public void OnLog(string line) => output.WriteLine(line);
}
