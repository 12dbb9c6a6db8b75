using TorchSharp;
using static TorchSharp.torch;

namespace MoTLab.Training.Train;

/// <summary>libtorch's multi-tensor kernels, which TorchSharp does not bind, reached through a small
/// TorchScript compilation unit: the fused AdamW update (one kernel per group instead of several per
/// parameter) and the foreach gradient norm and scaling used for clipping. No host sync in either.
/// Numbers travel as one small CPU tensor that this code keeps alive across the call: TorchSharp turns a
/// plain double argument into a native Scalar that the garbage collector may free mid-call, which once
/// crashed a long run with a corrupted Scalar.</summary>
public static class FusedOps
{
    private const string Script = """
        def adamw(params: List[Tensor], grads: List[Tensor], exp_avg: List[Tensor], exp_avg_sq: List[Tensor],
                  steps: List[Tensor], hyper: Tensor):
            # hyper = [lr, beta1, beta2, weight_decay, eps] on the CPU
            torch._foreach_add_(steps, 1.0)
            torch._fused_adamw_(params, grads, exp_avg, exp_avg_sq, [], steps, lr=float(hyper[0]), beta1=float(hyper[1]),
                                beta2=float(hyper[2]), weight_decay=float(hyper[3]), eps=float(hyper[4]), amsgrad=False, maximize=False)

        def clip_grad_norm(grads: List[Tensor], max_norm: Tensor) -> Tensor:
            limit = float(max_norm)
            total = torch.stack(torch._foreach_norm(grads, 2.0)).norm()
            if limit > 0.0:
                torch._foreach_mul_(grads, torch.clamp(limit / (total + 1e-6), max=1.0))
            return total
        """;

    private static readonly Lazy<jit.CompilationUnit> Unit = new(() =>
    {
        try { return jit.compile(Script + "\n"); } // the parser wants a final newline
        catch (Exception e) { throw new InvalidOperationException($"this libtorch lacks the fused AdamW / foreach kernels MoTLab needs (libtorch ≥ 2.4), or could not compile them: {e.Message}", e); }
    });

    /// <summary>One AdamW step over a group: decoupled weight decay, bias correction, steps incremented in place.</summary>
    public static void AdamW(Tensor[] parameters, Tensor[] grads, Tensor[] expAvg, Tensor[] expAvgSq, Tensor[] steps,
                             double lr, double beta1, double beta2, double weightDecay, double eps)
    {
        if (parameters.Length == 0) return;
        using var hyper = tensor(new[] { lr, beta1, beta2, weightDecay, eps });
        Unit.Value.invoke("adamw", [parameters, grads, expAvg, expAvgSq, steps, hyper]);
        GC.KeepAlive(hyper);
    }

    /// <summary>Global L2 norm of the gradients (a 0-d tensor), scaling them down to max_norm when above it (0 = no clipping).</summary>
    public static Tensor ClipGradNorm(Tensor[] grads, double maxNorm)
    {
        using var limit = tensor(maxNorm);
        var total = Unit.Value.invoke<Tensor>("clip_grad_norm", [grads, limit]);
        GC.KeepAlive(limit);
        return total;
    }
}
