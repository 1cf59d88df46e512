using System.Numerics.Tensors;

namespace SlmKit.Kernels;

/// <summary>Normalisation layers over one vector at a time.</summary>
public static class Normalization
{
    /// <summary>RMSNorm: y = x / sqrt(mean(x²) + eps) · weight (weight may be empty for no scale).</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        float sumSquares = TensorPrimitives.SumOfSquares(x);
        float scale = 1f / MathF.Sqrt(sumSquares / x.Length + eps);
        if (weight.IsEmpty)
        {
            TensorPrimitives.Multiply(x, scale, y);
            return;
        }
        TensorPrimitives.Multiply(x, scale, y);
        TensorPrimitives.Multiply(y[..x.Length], weight, y);
    }

    /// <summary>LayerNorm: y = (x − mean) / sqrt(var + eps) · weight + bias (weight and bias may be empty).</summary>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps, Span<float> y)
    {
        float mean = TensorPrimitives.Sum(x) / x.Length;
        TensorPrimitives.Subtract(x, mean, y);
        float variance = TensorPrimitives.SumOfSquares(y[..x.Length]) / x.Length;
        float scale = 1f / MathF.Sqrt(variance + eps);
        TensorPrimitives.Multiply(y[..x.Length], scale, y);
        if (!weight.IsEmpty)
            TensorPrimitives.Multiply(y[..x.Length], weight, y);
        if (!bias.IsEmpty)
            TensorPrimitives.Add(y[..x.Length], bias, y);
    }
}

/// <summary>Activation functions and the gated MLP combination.</summary>
public static class Activations
{
    /// <summary>SwiGLU: gate ← SiLU(gate) · up, in place.</summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }

    /// <summary>Numerically stable softmax in place.</summary>
    public static void Softmax(Span<float> values)
    {
        float max = TensorPrimitives.Max(values);
        float sum = 0;
        for (int i = 0; i < values.Length; i++)
        {
            float e = MathF.Exp(values[i] - max);
            values[i] = e;
            sum += e;
        }
        TensorPrimitives.Multiply(values, 1f / sum, values);
    }
}
