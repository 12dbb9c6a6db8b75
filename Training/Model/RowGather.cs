using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace MoTLab.Training.Model;

/// <summary>Rows of a matrix gathered by index, whose backward gathers too. <c>index_select</c>'s own backward scatters
/// the output's gradient back with atomic adds, which in bf16 on a GPU are compare-and-swap loops: 1.1 ms per
/// token-choice layer of medium-moe on an NVIDIA H200, against about 0.1 ms for a gather of the same rows. Here the
/// caller names, for every source row, the output rows whose gradient it receives (its owners), and the backward
/// gathers them:
///   forward   out[a] = src[index[a]]                                     (R, d) from (S, d)
///   backward  dsrc[s] = Σ_j dout[owners[j, s]]   (owners −1: none)        (S, d)
/// Contract: every output row a with index[a] = s whose incoming gradient is not exactly zero is among owners[·, s].
/// Token-choice routing meets it by construction: a slot's token owns it, and the rows that point somewhere only to
/// have a valid index (an empty slot, a dropped assignment) get exactly zero gradient (their combine weight is 0).</summary>
public sealed class RowGather : SingleTensorFunction<RowGather>
{
    public override string Name => "RowGather";

    /// <param name="src">(S, d)</param>
    /// <param name="index">(R) int64, each in [0, S)</param>
    /// <param name="owners">(k, S) int64, each −1 or in [0, R)</param>
    /// <returns>(R, d)</returns>
    public static Tensor Apply(Tensor src, Tensor index, Tensor owners)
    {
        if (!(src.dim() == 2 && index.dim() == 1 && owners.dim() == 2 && owners.shape[1] == src.shape[0]))
            throw new ArgumentException($"RowGather: needs src (S, d), index (R) and owners (k, S); got src {string.Join('×', src.shape)}, " +
                $"index {string.Join('×', index.shape)}, owners {string.Join('×', owners.shape)}");
        return apply(src, index, owners);
    }

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (src, index, owners) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
        using (no_grad())
            ctx.save_for_backward([owners.clamp_min(0), owners.lt(0).unsqueeze(2)]);   // (k, S), (k, S, 1)
        return src.index_select(0, index);
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var scope = NewDisposeScope();
        var saved = ctx.get_saved_variables();
        var (rows, none) = (saved[0], saved[1]);
        Tensor? dsrc = null;
        for (long j = 0; j < rows.shape[0]; j++)
        {
            var part = gradOutput.index_select(0, rows[j]).masked_fill_(none[j], 0);   // (S, d)
            dsrc = dsrc is null ? part : dsrc.add_(part);
        }
        foreach (var s in saved) s.Dispose();
        return GradientHandoff.Return([gradOutput], dsrc, null, null);
    }
}
