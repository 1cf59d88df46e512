namespace SlmKit.Kernels;

/// <summary>Which dimensions RoPE rotates together.</summary>
public enum RopeLayout
{
    /// <summary>Adjacent pairs (2i, 2i+1): GGUF llama weights and llama2.c.</summary>
    Normal,

    /// <summary>Half-split pairs (i, i + d/2): Hugging Face checkpoints ("rotate_half"), GPT-NeoX.</summary>
    NeoX,
}

/// <summary>How the rotary frequencies are stretched for contexts longer than training.</summary>
public sealed record RopeScaling(string Type, float Factor, float LowFrequencyFactor = 1, float HighFrequencyFactor = 4, int OriginalContextLength = 8192)
{
    public static RopeScaling Linear(float factor) => new("linear", factor);

    public static RopeScaling Llama3(float factor, float lowFrequencyFactor, float highFrequencyFactor, int originalContextLength) =>
        new("llama3", factor, lowFrequencyFactor, highFrequencyFactor, originalContextLength);
}

/// <summary>
/// Rotary position embedding for heads of <see cref="HeadDim"/> values of which the first <see cref="RotaryDim"/>
/// are rotated. Frequencies θᵢ = base^(−2i/d), divided by optional per-pair factors (Llama 3's rope_freqs).
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _inverseFrequencies;
    private readonly float _positionScale;

    public RotaryEmbedding(int headDim, int rotaryDim, float theta, RopeLayout layout, RopeScaling? scaling = null, ReadOnlySpan<float> frequencyFactors = default)
    {
        if (rotaryDim <= 0 || rotaryDim > headDim || rotaryDim % 2 != 0)
            throw new SlmKitException($"rotary dimension {rotaryDim} must be even and within the head size {headDim}");
        HeadDim = headDim;
        RotaryDim = rotaryDim;
        Layout = layout;
        int pairs = rotaryDim / 2;
        _inverseFrequencies = new float[pairs];
        _positionScale = 1f;
        for (int i = 0; i < pairs; i++)
        {
            double frequency = Math.Pow(theta, -2.0 * i / rotaryDim);
            if (!frequencyFactors.IsEmpty)
                frequency /= frequencyFactors[i];
            _inverseFrequencies[i] = (float)frequency;
        }

        switch (scaling?.Type)
        {
            case null or "none" or "default":
                break;
            case "linear":
                _positionScale = 1f / scaling.Factor;
                break;
            case "llama3":
                ApplyLlama3Scaling(_inverseFrequencies, scaling);
                break;
            default:
                throw new SlmKitException($"rope scaling type '{scaling.Type}' is not supported (supported: linear, llama3)");
        }
    }

    public int HeadDim { get; }
    public int RotaryDim { get; }
    public RopeLayout Layout { get; }

    /// <summary>Fills cos/sin (length RotaryDim/2 each) for one position; computed once per token, shared by all heads and layers.</summary>
    public void ComputeAngles(int position, Span<float> cos, Span<float> sin)
    {
        float p = position * _positionScale;
        for (int i = 0; i < _inverseFrequencies.Length; i++)
        {
            float angle = p * _inverseFrequencies[i];
            cos[i] = MathF.Cos(angle);
            sin[i] = MathF.Sin(angle);
        }
    }

    /// <summary>Rotates every head in <paramref name="heads"/> (headCount × HeadDim values) in place.</summary>
    public void Apply(Span<float> heads, int headCount, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int pairs = RotaryDim / 2;
        for (int h = 0; h < headCount; h++)
        {
            Span<float> v = heads.Slice(h * HeadDim, HeadDim);
            if (Layout == RopeLayout.Normal)
            {
                for (int i = 0; i < pairs; i++)
                {
                    float x0 = v[2 * i], x1 = v[2 * i + 1];
                    v[2 * i] = x0 * cos[i] - x1 * sin[i];
                    v[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
                }
            }
            else
            {
                for (int i = 0; i < pairs; i++)
                {
                    float x0 = v[i], x1 = v[i + pairs];
                    v[i] = x0 * cos[i] - x1 * sin[i];
                    v[i + pairs] = x0 * sin[i] + x1 * cos[i];
                }
            }
        }
    }

    /// <summary>Llama 3.1's frequency-dependent stretch (transformers' _compute_llama3_parameters).</summary>
    private static void ApplyLlama3Scaling(float[] inverseFrequencies, RopeScaling s)
    {
        double lowWavelength = s.OriginalContextLength / s.LowFrequencyFactor;
        double highWavelength = s.OriginalContextLength / s.HighFrequencyFactor;
        for (int i = 0; i < inverseFrequencies.Length; i++)
        {
            double frequency = inverseFrequencies[i];
            double wavelength = 2 * Math.PI / frequency;
            if (wavelength < highWavelength)
                continue;
            if (wavelength > lowWavelength)
            {
                inverseFrequencies[i] = (float)(frequency / s.Factor);
                continue;
            }
            double smooth = (s.OriginalContextLength / wavelength - s.LowFrequencyFactor) / (s.HighFrequencyFactor - s.LowFrequencyFactor);
            inverseFrequencies[i] = (float)((1 - smooth) * frequency / s.Factor + smooth * frequency);
        }
    }
}
