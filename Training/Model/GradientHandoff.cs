using static TorchSharp.torch;

namespace MoTLab.Training.Model;

/// <summary>What a custom autograd function's backward returns. A backward runs its body in a dispose scope of its own
/// (on a GPU it runs on autograd's threads, outside the training step's scope: every handle it left would hold its
/// memory until a garbage collection) and hands its gradients out through <see cref="Return"/>, which takes them out of
/// that scope. Autograd takes its own reference to each as the backward returns; the handles are disposed when the
/// same thread runs its next custom backward, which it can only do after autograd has taken them. The incoming
/// gradients' handles, which TorchSharp makes for each backward and leaves, are disposed as the backward returns.</summary>
public static class GradientHandoff
{
    [ThreadStatic] static List<Tensor>? previous;

    /// <param name="incoming">the gradients the backward was given (none of them returned)</param>
    /// <returns>the gradients as backward returns them (null for an input without one)</returns>
    public static List<Tensor> Return(IEnumerable<Tensor> incoming, params Tensor?[] gradients)
    {
        foreach (var t in incoming) t.Dispose();
        foreach (var t in previous ?? []) t.Dispose();
        previous = [.. gradients.OfType<Tensor>()];
        foreach (var g in previous) g.DetachFromDisposeScope();
        return [.. gradients.Select(g => g!)];
    }
}
