using static TorchSharp.torch;

namespace MoTLab.Training.Model;

/// <summary>Explicit mixed precision (TorchSharp has no autocast): parameters stay fp32 (the master
/// weights the optimizer updates); matmul inputs are cast to the compute dtype per call, as autocast does.
/// LayerNorm, softmax, routing and the loss run in fp32.</summary>
public static class Precision
{
    public static Tensor To(this Tensor t, ScalarType dtype) => t.dtype == dtype ? t.alias() : t.to_type(dtype);
}
