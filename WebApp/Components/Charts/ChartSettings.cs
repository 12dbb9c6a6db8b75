using MoTLab.Shared.Telemetry;

namespace MoTLab.WebApp.Components.Charts;

/// <summary>What the curve controls choose: the x-axis (step, tokens, wall time, FLOPs), log y and EMA smoothing.</summary>
public sealed class ChartSettings
{
    public string XAxis { get; set; } = "step";
    public bool LogY { get; set; }
    public double Ema { get; set; } = 0.6;

    /// <summary>A logged step's position on the chosen axis; FLOPs need the run's training FLOPs per token.</summary>
    public object X(StepMetrics m, double flopsPerToken) => XAxis switch
    {
        "tokens" => m.Tokens,
        "time" => m.ElapsedS,
        "flops" => m.Tokens * flopsPerToken,
        _ => m.Step,
    };

    public string XTitle => XAxis switch { "tokens" => "tokens", "time" => "wall time (s)", "flops" => "training FLOPs", _ => "step" };
}
