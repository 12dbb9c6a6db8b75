using MoTLab.Shared.Config;
using MoTLab.Training.Model;
using static TorchSharp.torch;

namespace MoTLab.Training.Tests;

public class LinearCrossEntropyTests
{
    /// <summary>The plain composition: logits, fp32 log-softmax, mean NLL.</summary>
    static Tensor Reference(Tensor x, Tensor w, Tensor t) =>
        nn.functional.nll_loss(nn.functional.linear(x, w).log_softmax(1, ScalarType.Float32), t);

    [Theory]
    [InlineData(37, 100, 1L << 30)]   // one chunk; vocab padded 100 → 128
    [InlineData(37, 100, 700)]        // 5 rows per chunk, the last one short
    [InlineData(16, 64, 64)]          // one row per chunk, no padding
    public void Loss_and_gradients_equal_the_plain_head_and_cross_entropy(int rows, int vocab, long chunkElements)
    {
        manual_seed(3);
        var x = randn(rows, 8).requires_grad_();
        var w = randn(vocab, 8).requires_grad_();
        var t = randint(vocab, rows, dtype: ScalarType.Int64);

        var fused = LinearCrossEntropy.Loss(x, w, t, ScalarType.Float32, chunkElements);
        (fused * 3).backward();                       // an incoming gradient other than 1
        var (gx, gw) = (x.grad!.clone(), w.grad!.clone());
        x.grad!.zero_(); w.grad!.zero_();
        var plain = Reference(x, w, t);
        (plain * 3).backward();

        Assert.Equal(plain.item<float>(), fused.item<float>(), 5);
        Assert.True(gx.allclose(x.grad!, rtol: 1e-4, atol: 1e-6), "dx differs");
        Assert.True(gw.allclose(w.grad!, rtol: 1e-4, atol: 1e-6), "dW differs");
    }

    [Fact]
    public void Without_gradients_only_the_loss_is_computed()
    {
        var x = randn(10, 8).requires_grad_();
        var w = randn(50, 8);
        var t = randint(50, 10, dtype: ScalarType.Int64);
        using (no_grad())
        {
            var loss = LinearCrossEntropy.Loss(x, w, t, ScalarType.Float32);
            Assert.False(loss.requires_grad);
            Assert.Equal(Reference(x, w, t).item<float>(), loss.item<float>(), 5);
        }
        var frozenHead = LinearCrossEntropy.Loss(x, w, t, ScalarType.Float32);   // w frozen: only dx
        frozenHead.backward();
        Assert.NotNull(x.grad);
        Assert.Null(w.grad);
    }

    [Fact]
    public void In_bf16_it_stays_within_bf16_rounding_of_the_fp32_loss()
    {
        manual_seed(4);
        var x = randn(64, 16);
        var w = randn(300, 16) * 0.3;
        var t = randint(300, 64, dtype: ScalarType.Int64);
        double exact = Reference(x, w, t).item<float>();
        double bf16 = LinearCrossEntropy.Loss(x, w, t, ScalarType.BFloat16).item<float>();
        Assert.True(Math.Abs(exact - bf16) < 0.02 * exact, $"fp32 {exact} vs bf16 {bf16}");
    }

    [Theory]
    [InlineData("tiny-dense")]
    [InlineData("tiny-mot")]
    public void The_model_loss_equals_cross_entropy_of_its_logits_with_the_same_gradients(string preset)
    {
        manual_seed(5);
        var cfg = Presets.Find(preset)!.Config.Model;
        using var model = new Gpt(cfg);
        var idx = randint(cfg.VocabSize, [8, 16], dtype: ScalarType.Int64);
        var targets = idx.roll(-1, 1);

        var (_, fused, _) = model.Loss(idx, targets);
        fused.backward();
        var grads = model.parameters().Select(p => p.grad!.clone()).ToList();
        model.zero_grad();
        var logits = model.forward(idx);
        var plain = nn.functional.nll_loss(logits.reshape(-1, cfg.VocabSize).log_softmax(1), targets.reshape(-1));
        plain.backward();

        Assert.Equal(plain.item<float>(), fused.item<float>(), 5);
        foreach (var (p, g) in model.parameters().Zip(grads))
            Assert.True(g.allclose(p.grad!, rtol: 1e-4, atol: 1e-6), "a parameter's gradient differs");
    }
}
