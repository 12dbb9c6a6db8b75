using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Model;

/// <summary>Pre-norm transformer block: x + attn(ln1(x)), then x + ffn(ln2(x)). The residual stream stays fp32.</summary>
public sealed class Block : Module<Tensor, Tensor>
{
    private readonly LayerNorm ln1;
    private readonly CausalSelfAttention attn;
    private readonly LayerNorm ln2;
    private readonly Module<Tensor, Tensor> ffn;
    private readonly Dropout ffnDropout;
    private readonly double dropout;

    public Module<Tensor, Tensor> Ffn => ffn;

    public Block(int dModel, int heads, double dropout, Module<Tensor, Tensor> ffn, WeightInit weights, ScalarType compute) : base(nameof(Block))
    {
        ln1 = LayerNorm(dModel);
        attn = new CausalSelfAttention(dModel, heads, dropout, weights, compute);
        ln2 = LayerNorm(dModel);
        this.ffn = ffn;
        ffnDropout = Dropout(dropout);
        this.dropout = dropout;
        RegisterComponents();
    }

    /// <param name="x">(B, T, d) fp32</param>
    public override Tensor forward(Tensor x)
    {
        x = x + attn.forward(ln1.forward(x));                       // (B, T, d)
        var h = ffn.forward(ln2.forward(x));                        // (B, T, d)
        return x + (dropout > 0 ? ffnDropout.forward(h) : h);       // no dropout kernels at p = 0
    }
}
