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
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }

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
                for (int i = 0; i < values.Length; i++)
                    values[i] /= 1f + MathF.Exp(-values[i]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    /// <summary>Soft-capping (Gemma 2): x ← cap · tanh(x / cap), in place.</summary>
    public static void SoftCap(Span<float> values, float cap)
    {
        for (int i = 0; i < values.Length; i++)
            values[i] = cap * MathF.Tanh(values[i] / cap);
    }

    /// <summary>erf in double precision (W. J. Cody's rational approximations; |error| &lt; 1e-15).</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        double result;
        if (ax < 0.5)
        {
            double t = x * x;
            double top = (((0.185777706184603153 * t + 3.16112374387056560) * t + 113.864154151050156) * t + 377.485237685302021) * t + 3209.37758913846947;
            double bottom = (((t + 23.6012909523441209) * t + 244.024637934444173) * t + 1282.61652607737228) * t + 2844.23683343917062;
            return x * top / bottom;
        }
        if (ax < 4)
        {
            double top = (((((((5.64188496988670089e-1 * ax + 8.88314979438837594) * ax + 66.1191906371416295) * ax + 298.635138197400131) * ax + 881.952221241769090) * ax + 1712.04761263407058) * ax + 2051.07837782607147) * ax + 1230.33935479799725) * ax + 2.15311535474403846e-8;
            double bottom = (((((((ax + 15.7449261107098347) * ax + 117.693950891312499) * ax + 537.181101862009858) * ax + 1621.38957456669019) * ax + 3290.79923573345963) * ax + 4362.61909014324716) * ax + 3439.36767414372164) * ax + 1230.33935480374942;
            result = 1 - Math.Exp(-ax * ax) * top / bottom;
        }
        else
        {
            double z = 1 / (ax * ax);
            double top = ((((1.63153871373020978e-2 * z + 3.05326634961232344e-1) * z + 3.60344899949804439e-1) * z + 1.25781726111229246e-1) * z + 1.60837851487422766e-2) * z + 6.58749161529837803e-4;
            double bottom = ((((z + 2.56852019228982242) * z + 1.87295284992346725) * z + 5.27905102951428412e-1) * z + 6.05183413124413191e-2) * z + 2.33520497626869185e-3;
            double r = (1 / ax) * (0.564189583547756287 - z * top / bottom);
            result = 1 - Math.Exp(-ax * ax) * r;
        }
        return x < 0 ? -result : result;
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
