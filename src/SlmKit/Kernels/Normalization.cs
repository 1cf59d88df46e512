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

/// <summary>The elementwise activations of the MLP variants.</summary>
public enum ActivationKind
{
    /// <summary>x·σ(x) (SiLU / swish).</summary>
    Silu,

    /// <summary>GELU, tanh approximation.</summary>
    GeluTanh,

    /// <summary>GELU, exact (erf).</summary>
    GeluErf,

    /// <summary>max(x, 0).</summary>
    Relu,

    /// <summary>max(x, 0)² (Nemotron).</summary>
    SquaredRelu,
}

/// <summary>Activation functions and the gated MLP combination.</summary>
public static class Activations
{
    /// <summary>SwiGLU: gate ← SiLU(gate) · up, in place.</summary>
    /// <remarks>
    /// Vectorised (TensorPrimitives' sigmoid) in chunks that stay in L1: a scalar exp per element was 2–3 % of a
    /// decode step and a serial part of every prefill step.
    /// </remarks>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        if (up.Length < gate.Length)
            throw new ArgumentException("up is shorter than gate", nameof(up));
        Span<float> sigmoid = stackalloc float[Chunk];
        for (int i = 0; i < gate.Length; i += Chunk)
        {
            int count = Math.Min(Chunk, gate.Length - i);
            var g = gate.Slice(i, count);
            var s = sigmoid[..count];
            TensorPrimitives.Sigmoid(g, s);
            TensorPrimitives.Multiply(g, s, g);
            TensorPrimitives.Multiply(g, up.Slice(i, count), g);
        }
    }

    /// <summary>Elements per pass of the chunked activations (4 KiB of floats: one stack buffer in L1).</summary>
    private const int Chunk = 1024;

    /// <summary>GeGLU with the tanh GELU (Gemma): gate ← GELUtanh(gate) · up, in place.</summary>
    public static void GeGluTanh(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++)
            gate[i] = GeluTanh(gate[i]) * up[i];
    }

    /// <summary>GELU with the tanh approximation ("gelu_new", "gelu_pytorch_tanh"): ½x(1 + tanh(√(2/π)(x + 0.044715x³))).</summary>
    public static float GeluTanh(float x) =>
        0.5f * x * (1f + MathF.Tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));

    /// <summary>Exact GELU ("gelu"): ½x(1 + erf(x/√2)).</summary>
    public static float GeluErf(float x) => (float)(0.5 * x * (1 + Erf(x * 0.7071067811865476)));

    /// <summary>Applies <paramref name="kind"/> elementwise in place (the ungated activations).</summary>
    public static void Apply(ActivationKind kind, Span<float> values)
    {
        switch (kind)
        {
            case ActivationKind.GeluTanh:
                for (int i = 0; i < values.Length; i++)
                    values[i] = GeluTanh(values[i]);
                break;
            case ActivationKind.GeluErf:
                for (int i = 0; i < values.Length; i++)
                    values[i] = GeluErf(values[i]);
                break;
            case ActivationKind.Relu:
                TensorPrimitives.Max(values, 0f, values);
                break;
            case ActivationKind.SquaredRelu:
                for (int i = 0; i < values.Length; i++)
                {
                    float r = MathF.Max(values[i], 0f);
                    values[i] = r * r;
                }
                break;
            case ActivationKind.Silu:
                Span<float> sigmoid = stackalloc float[Chunk];
                for (int i = 0; i < values.Length; i += Chunk)
                {
                    var v = values.Slice(i, Math.Min(Chunk, values.Length - i));
                    TensorPrimitives.Sigmoid(v, sigmoid[..v.Length]);
                    TensorPrimitives.Multiply(v, sigmoid[..v.Length], v);
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    /// <summary>Soft-capping (Gemma 2): x ← cap · tanh(x / cap), in place.</summary>
    public static void SoftCap(Span<float> values, float cap)
    {
        TensorPrimitives.Divide(values, cap, values);
        TensorPrimitives.Tanh(values, values);
        TensorPrimitives.Multiply(values, cap, values);
    }

    /// <summary>
    /// erf in double precision from the series erf(x) = 2/√π · e^(−x²) · Σₙ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)), whose terms are
    /// all positive (no cancellation); beyond |x| = 6, erf is ±1 to double precision.
    /// </summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax >= 6)
            return Math.Sign(x);
        double term = ax, sum = ax, x2 = ax * ax;
        for (int n = 1; term > sum * 1e-17; n++)
        {
            term *= 2 * x2 / (2 * n + 1);
            sum += term;
        }
        double result = 2 / Math.Sqrt(Math.PI) * Math.Exp(-x2) * sum;
        return x < 0 ? -result : result;
    }

    /// <summary>Numerically stable softmax in place.</summary>
    public static void Softmax(Span<float> values)
    {
        float max = TensorPrimitives.Max(values);
        TensorPrimitives.Subtract(values, max, values);
        TensorPrimitives.Exp(values, values);
        TensorPrimitives.Multiply(values, 1f / TensorPrimitives.Sum(values), values);
    }
}
