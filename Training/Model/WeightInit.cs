using MoTLab.Shared.Config;
using static TorchSharp.torch;

namespace MoTLab.Training.Model;

/// <summary>How every weight starts (model.init):
/// <list type="bullet">
/// <item><c>gpt2</c> — N(0, 0.02) for every weight, and N(0, 0.02/√(2L)) for the projections that write into the
/// residual stream (attention out, FFN out), as GPT-2 and nanoGPT do.</item>
/// <item><c>paper</c> — the MoT authors' scheme: a normal with σ = √(scale / fan_in), truncated at ±2·scale, for every
/// weight (attention, FFN, controller, router, experts, head); embeddings take one-hot inputs, so fan_in = 1 (a token
/// embedding tied to the head is drawn as the head, fan_in d). At the default scale 1, σ = 1/√fan_in.</item>
/// </list>
/// fan_in is the number of inputs each output sums over: d for a (·, d) → (·, out) product, the expert width for an
/// expert's second matrix.</summary>
public sealed class WeightInit(ModelConfig cfg)
{
    /// <param name="weight">the weight, filled in place</param>
    /// <param name="fanIn">inputs each output sums over</param>
    /// <param name="residualOut">it writes into the residual stream (gpt2 scales these by 1/√(2L))</param>
    public void Fill(Tensor weight, long fanIn, bool residualOut = false)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        if (cfg.Init == ModelConfig.PaperInit)
        {
            double scale = cfg.InitScale, std = Math.Sqrt(scale / fanIn), bound = 2 * scale;
            // truncation by redrawing what falls outside: a few passes at most, since the bound is ≥ 2σ
            nn.init.normal_(weight, 0, std);
            for (var outside = weight.abs().gt(bound); outside.any().item<bool>(); outside = weight.abs().gt(bound))
                using (var redraw = randn_like(weight).mul_(std)) weight.copy_(where(outside, redraw, weight));
        }
        else nn.init.normal_(weight, 0, residualOut ? 0.02 / Math.Sqrt(2.0 * cfg.Layers) : 0.02);
    }

    /// <summary>A token or position embedding: one-hot input, fan_in 1. A token embedding tied to the output head is the
    /// head's weight too, whose fan_in is d: drawn at σ = 1 it would make the first logits ~√d too large (a medium
    /// model started at loss 14 where ln V is 10.8), so a tied one is drawn as the head.</summary>
    public void Embedding(Tensor weight, bool tiedToHead = false) => Fill(weight, fanIn: tiedToHead ? weight.shape[1] : 1);
}
