using TorchSharp;
using static TorchSharp.torch;

namespace MoTLab.Training.Train;

/// <summary>libtorch's multi-tensor kernels, which TorchSharp does not bind, reached through a small
/// TorchScript compilation unit: the fused AdamW update (one kernel per group instead of several per
/// parameter) and the foreach gradient norm and scaling used for clipping. No host sync in either.</summary>
public static class FusedOps
{
    private const string Script = """
        def adamw(params: List[Tensor], grads: List[Tensor], exp_avg: List[Tensor], exp_avg_sq: List[Tensor],
                  steps: List[Tensor], lr: float, beta1: float, beta2: float, weight_decay: float, eps: float):
            torch._foreach_add_(steps, 1.0)
            torch._fused_adamw_(params, grads, exp_avg, exp_avg_sq, [], steps, lr=lr, beta1=beta1, beta2=beta2,
                                weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False)

        def clip_grad_norm(grads: List[Tensor], max_norm: float) -> Tensor:
            total = torch.stack(torch._foreach_norm(grads, 2.0)).norm()
            if max_norm > 0.0:
                torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
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
        Unit.Value.invoke("adamw", [parameters, grads, expAvg, expAvgSq, steps, lr, beta1, beta2, weightDecay, eps]);
    }

    /// <summary>Global L2 norm of the gradients (a 0-d tensor), scaling them down to max_norm when above it (0 = no clipping).</summary>
    public static Tensor ClipGradNorm(Tensor[] grads, double maxNorm) =>
        Unit.Value.invoke<Tensor>("clip_grad_norm", [grads, maxNorm]);
}
