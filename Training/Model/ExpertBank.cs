using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Model;

/// <summary>E independent ReLU MLPs without biases, run as two batched matmuls: relu(x·W1_e)·W2_e.</summary>
public sealed class ExpertBank : Module<Tensor, Tensor>
{
    private readonly Parameter w1; // (E, d, s)
    private readonly Parameter w2; // (E, s, d)
    private readonly ScalarType compute;

    public int Experts { get; }
    public int Hidden { get; }

    public ExpertBank(int experts, int dModel, int hidden, WeightInit weights, ScalarType compute) : base(nameof(ExpertBank))
    {
        Experts = experts; Hidden = hidden; this.compute = compute;
        w1 = Parameter(empty(experts, dModel, hidden));
        w2 = Parameter(empty(experts, hidden, dModel));
        weights.Fill(w1, fanIn: dModel); weights.Fill(w2, fanIn: hidden, residualOut: true);
        RegisterComponents();
    }

    /// <param name="x">(E, N, d): N inputs per expert</param>
    /// <returns>(E, N, d) in the compute dtype</returns>
    public override Tensor forward(Tensor x)
    {
        using var h = functional.relu(x.To(compute).bmm(w1.To(compute))); // (E, N, s)
        return h.bmm(w2.To(compute));                                      // (E, N, d)
    }

    /// <summary>Weights of one expert as (W1 (d, s), W2 (s, d)), for tests and conversions.</summary>
    public (Tensor W1, Tensor W2) Expert(int e) => (w1[e], w2[e]);
}
