using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

public class AdamWTests
{
    [Fact]
    public void Matches_the_reference_AdamW_with_decay_on_matrices_only()
    {
        manual_seed(0);
        var w0 = randn(4, 3); var b0 = randn(3);
        Parameter W(Tensor t) => new(t.clone());
        var (wa, ba, wb, bb) = (W(w0), W(b0), W(w0), W(b0));
        using var ours = new Train.AdamW([wa, ba], lr: 0.01, beta1: 0.9, beta2: 0.95, weightDecay: 0.1);
        using var reference = optim.AdamW(
            [new TorchSharp.Modules.AdamW.ParamGroup([wb], lr: 0.01, beta1: 0.9, beta2: 0.95, weight_decay: 0.1),
             new TorchSharp.Modules.AdamW.ParamGroup([bb], lr: 0.01, beta1: 0.9, beta2: 0.95, weight_decay: 0)]);
        for (int step = 0; step < 20; step++)
        {
            using var x = randn(5, 4);
            foreach (var (w, b) in new[] { (wa, ba), (wb, bb) })
            {
                w.grad = null; b.grad = null;
                (x.matmul(w) + b).sin().sum().backward();
            }
            ours.Step(); reference.step();
        }
        Assert.True(wa.allclose(wb, rtol: 1e-5, atol: 1e-6), $"weights differ by {(wa - wb).abs().max().item<float>()}");
        Assert.True(ba.allclose(bb, rtol: 1e-5, atol: 1e-6), $"biases differ by {(ba - bb).abs().max().item<float>()}");
    }
}
