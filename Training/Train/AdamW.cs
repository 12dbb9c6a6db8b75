using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoTLab.Training.Train;

/// <summary>AdamW (decoupled weight decay, bias-corrected) on libtorch's fused kernel: weight decay on the
/// ≥2-D weights only, none on biases, LayerNorm and temperatures. State: both moments and a step count.</summary>
public sealed class AdamW : IDisposable
{
    private sealed record Group(Parameter[] Params, Tensor[] ExpAvg, Tensor[] ExpAvgSq, Tensor[] Steps, double WeightDecay);

    private readonly Group[] groups;
    private readonly double beta1, beta2, eps;

    public double LearningRate { get; set; }
    public long StepCount { get; private set; }

    public AdamW(IEnumerable<Parameter> parameters, double lr, double beta1, double beta2, double weightDecay, double eps = 1e-8)
    {
        var all = parameters.ToArray();
        LearningRate = lr; this.beta1 = beta1; this.beta2 = beta2; this.eps = eps;
        groups = [MakeGroup(all.Where(p => p.dim() >= 2), weightDecay), MakeGroup(all.Where(p => p.dim() < 2), 0)];
    }

    static Group MakeGroup(IEnumerable<Parameter> ps, double weightDecay)
    {
        var p = ps.ToArray();
        Tensor[] Like() => p.Select(x => zeros_like(x).DetachFromDisposeScope()).ToArray();
        return new Group(p, Like(), Like(), p.Select(x => zeros(1, float32, x.device).DetachFromDisposeScope()).ToArray(), weightDecay);
    }

    /// <summary>Parameters in state order (decayed first), for checks and flat views.</summary>
    public IEnumerable<Parameter> Parameters => groups.SelectMany(g => g.Params);

    public void Step()
    {
        StepCount++;
        using var _ = no_grad();
        foreach (var g in groups)
        {
            var live = Enumerable.Range(0, g.Params.Length).Where(i => g.Params[i].grad is not null).ToArray();
            FusedOps.AdamW(live.Select(i => (Tensor)g.Params[i]).ToArray(), live.Select(i => g.Params[i].grad!).ToArray(),
                live.Select(i => g.ExpAvg[i]).ToArray(), live.Select(i => g.ExpAvgSq[i]).ToArray(), live.Select(i => g.Steps[i]).ToArray(),
                LearningRate, beta1, beta2, g.WeightDecay, eps);
        }
    }

    /// <summary>Step count and both moments, in state order.</summary>
    public void Save(string path)
    {
        using var writer = new BinaryWriter(File.Create(path));
        writer.Write(StepCount);
        var moments = groups.SelectMany(g => g.ExpAvg.Zip(g.ExpAvgSq)).ToList();
        writer.Write(moments.Count);
        foreach (var (m, v) in moments)
        {
            using (var cm = m.cpu()) cm.Save(writer);
            using (var cv = v.cpu()) cv.Save(writer);
        }
    }

    public void Load(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path));
        long step = reader.ReadInt64();
        var moments = groups.SelectMany(g => g.ExpAvg.Zip(g.ExpAvgSq)).ToList();
        int count = reader.ReadInt32();
        if (count != moments.Count) throw new InvalidOperationException($"optimizer state has {count} parameters, the model {moments.Count}");
        using var _ = no_grad();
        foreach (var (m, v) in moments)
        {
            using var lm = TensorExtensionMethods.Load(reader);
            using var lv = TensorExtensionMethods.Load(reader);
            if (!lm.shape.SequenceEqual(m.shape))
                throw new InvalidOperationException($"optimizer state of shape [{string.Join(",", lm.shape)}] does not fit a parameter of shape [{string.Join(",", m.shape)}]");
            m.copy_(lm); v.copy_(lv);
        }
        foreach (var s in groups.SelectMany(g => g.Steps)) s.fill_(step);
        StepCount = step;
    }

    public void Dispose()
    {
        foreach (var t in groups.SelectMany(g => g.ExpAvg.Concat(g.ExpAvgSq).Concat(g.Steps))) t.Dispose();
    }
}
