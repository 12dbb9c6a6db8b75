using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MoTLab.Training.Tests;

/// <summary>libtorch's thread count is process-wide: tests that change it run on their own.</summary>
[CollectionDefinition(nameof(LibtorchThreads), DisableParallelization = true)]
public class LibtorchThreads;

/// <summary>Each layer on MoTLab's CPU kernels (libtorch on one thread) against the same layer on libtorch's operations
/// (two threads), same weights and input: output, auxiliary losses, statistics and every gradient. Covers the options
/// the kernel paths must honour as the libtorch paths do.</summary>
[Collection(nameof(LibtorchThreads))]
public class KernelPathTests
{
    public static TheoryData<string> Layers => new()
    {
        "mot", "mot emit-over-experts", "mot learnable-temperature", "mot discrete-eval", "mot eval-group-8",
        "token-choice", "token-choice top-2 z-loss", "token-choice straight-through", "expert-choice", "expert-choice E16 capacity-2",
    };

    static Module<Tensor, Tensor> Build(string name)
    {
        const int d = 32;
        FfnConfig ffn = name.Split(' ')[0] switch
        {
            "mot" => new() { Kind = FfnKind.MoT, Experts = 8, GroupSize = 4, EmitOverExperts = name.Contains("emit"), LearnableTemperature = name.Contains("learnable") },
            "token-choice" => new() { Kind = FfnKind.TokenChoice, Experts = 8, TopK = name.Contains("top-2") ? 2 : 1, CapacityFactor = 0.75,
                ZLoss = name.Contains("z-loss") ? 1e-3 : 0, StraightThroughGate = name.Contains("straight") },
            _ => new() { Kind = FfnKind.ExpertChoice, Experts = name.Contains("E16") ? 16 : 8, Capacity = name.Contains("capacity-2") ? 2 : 1 },
        };
        var layer = SparseFeedForward.Build(new ModelConfig { DModel = d, DenseMultiplier = 4, Ffn = ffn }, new WeightInit(new ModelConfig()), ScalarType.Float32);
        layer.Stats = StatsLevel.Full;
        if (layer is MixtureOfTokens mot && name.Contains("eval"))
        {
            mot.eval();
            mot.DiscreteEval = name.Contains("discrete");
            if (name.Contains("group-8")) mot.EvalGroupSize = 8;
        }
        return layer;
    }

    /// <summary>Output, aux loss, entropy and gradients (input first, then each parameter) on the given thread count.</summary>
    static (Tensor Output, float Aux, float? Entropy, Tensor[] Gradients) Run(Module<Tensor, Tensor> layer, Tensor x, Tensor outputGradient, int threads)
    {
        int before = get_num_threads();
        set_num_threads(threads);
        try
        {
            var y = layer.forward(x);
            var sparse = layer as SparseFeedForward;
            var aux = (sparse?.BalanceLoss ?? zeros(1)).sum() + (sparse?.ZLoss ?? zeros(1)).sum();
            if (layer.training) ((y * outputGradient).sum() + aux).backward();
            var gradients = new[] { x.grad ?? zeros(1) }.Concat(layer.parameters().Select(p => p.grad ?? zeros(1))).Select(t => t.clone()).ToArray();
            x.grad = null; layer.zero_grad();
            return (y.detach().clone(), aux.item<float>(), sparse?.LastStats?.Entropy?.item<float>(), gradients);
        }
        finally { set_num_threads(before); }
    }

    static void Same(Module<Tensor, Tensor> layer, Tensor x)
    {
        manual_seed(9);
        var outputGradient = randn_like(x);
        var kernels = Run(layer, x, outputGradient, threads: 1);
        var libtorch = Run(layer, x, outputGradient, threads: 2);
        Assert.True(kernels.Output.allclose(libtorch.Output, rtol: 1e-4, atol: 1e-6), $"output differs by {(kernels.Output - libtorch.Output).abs().max().item<float>()}");
        Assert.Equal(libtorch.Aux, kernels.Aux, 5);
        Assert.Equal(libtorch.Entropy ?? -1, kernels.Entropy ?? -1, 5);
        foreach (var (k, l) in kernels.Gradients.Zip(libtorch.Gradients))
            Assert.True(k.allclose(l, rtol: 1e-4, atol: 1e-6), $"a gradient differs by {(k - l).abs().max().item<float>()}");
    }

    [Theory]
    [MemberData(nameof(Layers))]
    public void A_sparse_layer_computes_the_same_on_the_kernels_as_on_libtorch(string name)
    {
        if (!CpuKernelTests.KernelsRun()) return;
        manual_seed(8);
        Same(Build(name), randn(16, 12, 32).requires_grad_());
    }

    [Fact]
    public void Attention_computes_the_same_on_the_kernel_as_on_libtorch()
    {
        if (!CpuKernelTests.KernelsRun()) return;
        manual_seed(8);
        Same(new CausalSelfAttention(32, 4, 0, new WeightInit(new ModelConfig()), ScalarType.Float32), randn(3, 21, 32).requires_grad_());
    }
}
