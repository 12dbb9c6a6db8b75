using MoTLab.Shared.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Model;

/// <summary>The dense FFN: relu(x·W1)·W2, no biases (same expert shape as the sparse variants).</summary>
public sealed class DenseFeedForward : Module<Tensor, Tensor>
{
    private readonly Parameter w1; // (d, h)
    private readonly Parameter w2; // (h, d)
    private readonly ScalarType compute;

    public DenseFeedForward(int dModel, int hidden, WeightInit weights, ScalarType compute) : base(nameof(DenseFeedForward))
    {
        this.compute = compute;
        w1 = Parameter(empty(dModel, hidden));
        w2 = Parameter(empty(hidden, dModel));
        weights.Fill(w1, fanIn: dModel); weights.Fill(w2, fanIn: hidden, residualOut: true);
        RegisterComponents();
    }

    /// <summary>Builds the dense FFN from existing weights (used by tests: MoT with g=1, E=1 must equal it).</summary>
    public static DenseFeedForward FromWeights(Tensor w1, Tensor w2, ScalarType compute)
    {
        var ffn = new DenseFeedForward((int)w1.shape[0], (int)w1.shape[1], new WeightInit(new ModelConfig()), compute);
        using (no_grad()) { ffn.w1.copy_(w1); ffn.w2.copy_(w2); }
        return ffn;
    }

    /// <param name="x">(B, T, d)</param>
    public override Tensor forward(Tensor x)
    {
        using var h = functional.relu(x.To(compute).matmul(w1.To(compute))); // (B, T, h)
        return h.matmul(w2.To(compute));                                      // (B, T, d)
    }
}
