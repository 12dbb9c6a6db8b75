using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoTLab.Training.Train;

/// <summary>AdamW (decoupled weight decay, bias-corrected), written with as few passes over memory as the
/// unfused ops allow (7 kernels per parameter; TorchSharp's own takes 9). The bias corrections fold into
/// two scalars: p −= (lr·√bc2/bc1) · m / (√v + ε·√bc2). Weight decay applies to the ≥2-D weights only.</summary>
public sealed class AdamW : IDisposable
{
    private readonly (Parameter P, bool Decay)[] parameters;
    private readonly Tensor[] m;   // first moments, like each parameter
    private readonly Tensor[] v;   // second moments, like each parameter
    private readonly Tensor[] lerpWeight; // (1 − β1) on each parameter's device, for m.lerp_(g, 1 − β1)
    private readonly double beta1, beta2, eps, weightDecay;

    public double LearningRate { get; set; }
    public long StepCount { get; private set; }

    public AdamW(IEnumerable<Parameter> parameters, double lr, double beta1, double beta2, double weightDecay, double eps = 1e-8)
    {
        this.parameters = parameters.Select(p => (p, p.dim() >= 2)).ToArray();
        LearningRate = lr; this.beta1 = beta1; this.beta2 = beta2; this.eps = eps; this.weightDecay = weightDecay;
        m = this.parameters.Select(x => zeros_like(x.P).DetachFromDisposeScope()).ToArray();
        v = this.parameters.Select(x => zeros_like(x.P).DetachFromDisposeScope()).ToArray();
        lerpWeight = this.parameters.Select(x => tensor(1 - beta1, x.P.dtype, x.P.device).DetachFromDisposeScope()).ToArray();
    }

    public void Step()
    {
        StepCount++;
        double bc1 = 1 - Math.Pow(beta1, StepCount), sqrtBc2 = Math.Sqrt(1 - Math.Pow(beta2, StepCount));
        double lr = LearningRate, stepSize = -lr * sqrtBc2 / bc1, epsHat = eps * sqrtBc2;
        using var _ = no_grad();
        for (int i = 0; i < parameters.Length; i++)
        {
            var (p, decay) = parameters[i];
            if (p.grad is not { } g) continue;
            if (decay && weightDecay > 0) p.mul_(1 - lr * weightDecay);
            m[i].lerp_(g, lerpWeight[i]);                          // m = β1·m + (1−β1)·g
            v[i].mul_(beta2).addcmul_(g, g, 1 - beta2);            // v = β2·v + (1−β2)·g²
            using var denom = v[i].sqrt().add_(epsHat);            // √v + ε·√bc2
            p.addcdiv_(m[i], denom, stepSize);
        }
    }

    /// <summary>Step count and both moments, in parameter order.</summary>
    public void Save(string path)
    {
        using var writer = new BinaryWriter(File.Create(path));
        writer.Write(StepCount);
        writer.Write(parameters.Length);
        for (int i = 0; i < parameters.Length; i++)
        {
            using (var cm = m[i].cpu()) cm.Save(writer);
            using (var cv = v[i].cpu()) cv.Save(writer);
        }
    }

    public void Load(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path));
        long step = reader.ReadInt64();
        int count = reader.ReadInt32();
        if (count != parameters.Length) throw new InvalidOperationException($"optimizer state has {count} parameters, the model {parameters.Length}");
        using var _ = no_grad();
        for (int i = 0; i < count; i++)
        {
            using var lm = TorchSharp.TensorExtensionMethods.Load(reader);
            using var lv = TorchSharp.TensorExtensionMethods.Load(reader);
            if (!lm.shape.SequenceEqual(m[i].shape)) throw new InvalidOperationException($"optimizer state of parameter {i} has shape [{string.Join(",", lm.shape)}], the model [{string.Join(",", m[i].shape)}]");
            m[i].copy_(lm); v[i].copy_(lv);
        }
        StepCount = step;
    }

    public void Dispose()
    {
        foreach (var t in m.Concat(v).Concat(lerpWeight)) t.Dispose();
    }
}
