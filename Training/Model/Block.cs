using MoTLab.Training.Model.Gpu;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Model;

/// <summary>Pre-norm transformer block: x + attn(ln1(x)), then x + ffn(ln2(x)). The residual stream stays fp32; a
/// LayerNorm's output is made in the dtype its consumer computes in: the compute dtype for attention and the dense FFN,
/// which only multiply it, fp32 for a sparse FFN, whose routing reads it in fp32 (<see cref="FusedLayerNorm"/>).</summary>
public sealed class Block : Module<Tensor, Tensor>
{
    private readonly LayerNorm ln1;
    private readonly CausalSelfAttention attn;
    private readonly LayerNorm ln2;
    private readonly Module<Tensor, Tensor> ffn;
    private readonly Dropout ffnDropout;
    private readonly double dropout;
    private readonly ScalarType compute, ffnInput;

    public Module<Tensor, Tensor> Ffn => ffn;

    public Block(int dModel, int heads, double dropout, Module<Tensor, Tensor> ffn, WeightInit weights, ScalarType compute) : base(nameof(Block))
    {
        ln1 = LayerNorm(dModel);
        attn = new CausalSelfAttention(dModel, heads, dropout, weights, compute);
        ln2 = LayerNorm(dModel);
        this.ffn = ffn;
        ffnDropout = Dropout(dropout);
        this.dropout = dropout;
        this.compute = compute;
        ffnInput = ffn is DenseFeedForward ? compute : ScalarType.Float32;
        RegisterComponents();
    }

    /// <param name="x">(B, T, d) fp32</param>
    public override Tensor forward(Tensor x)
    {
        var (stream, branch) = Forward(x, null);
        return stream + branch;
    }

    /// <summary>The block with the residual adds deferred: each add is fused into the LayerNorm that reads its sum
    /// (<see cref="FusedLayerNorm.AddApply"/>), the block's own last add into the next block's first (or the final) norm.</summary>
    /// <param name="x">(B, T, d) fp32 residual stream, before <paramref name="pending"/> is added</param>
    /// <param name="pending">(B, T, d) the previous block's FFN output, still to add, or null</param>
    /// <returns>(stream, branch): the block's output is stream + branch</returns>
    public (Tensor Stream, Tensor Branch) Forward(Tensor x, Tensor? pending)
    {
        var (x1, a) = FusedLayerNorm.AddApply(ln1, x, pending, compute);       // (B, T, d) fp32, compute
        var (x2, f) = FusedLayerNorm.AddApply(ln2, x1, attn.forward(a), ffnInput);
        var h = ffn.forward(f);                                                  // (B, T, d)
        return (x2, dropout > 0 ? ffnDropout.forward(h) : h);                    // no dropout kernels at p = 0
    }
}
