using System.Runtime.Intrinsics;

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

    /// <summary>
    /// Phi-3's long-rope ("su"): per-pair frequency divisors, one set for contexts up to
    /// <paramref name="originalContextLength"/> and one for longer ones, and a magnitude
    /// <paramref name="attentionFactor"/> on cos and sin. Factors left null come from the weights (GGUF rope_factors_short/long).
    /// </summary>
    public static RopeScaling LongRope(int originalContextLength, float attentionFactor, float[]? shortFactors = null, float[]? longFactors = null) =>
        new("longrope", 1, OriginalContextLength: originalContextLength) { AttentionFactor = attentionFactor, ShortFactors = shortFactors, LongFactors = longFactors };

    /// <summary>Long-rope: multiplies cos and sin (transformers' attention_factor, llama.cpp's rope.scaling.attn_factor).</summary>
    public float AttentionFactor { get; init; } = 1;

    /// <summary>Long-rope: frequency divisors per rotary pair for contexts up to OriginalContextLength.</summary>
    public float[]? ShortFactors { get; init; }

    /// <summary>Long-rope: frequency divisors per rotary pair for longer contexts.</summary>
    public float[]? LongFactors { get; init; }
}

/// <summary>
/// Rotary position embedding for heads of <see cref="HeadDim"/> values of which the first <see cref="RotaryDim"/>
/// are rotated. Frequencies θᵢ = base^(−2i/d), divided by optional per-pair factors (Llama 3's rope_freqs).
/// With long-rope scaling there are two sets of factors, chosen by the context size (see <see cref="UsesLongFactors"/>),
/// and cos and sin are multiplied by the scaling's attention factor.
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _inverseFrequencies;
    private readonly float[]? _longInverseFrequencies;
    private readonly float _positionScale;
    private readonly float _magnitude = 1f;
    private readonly int _originalContextLength;

    /// <summary>
    /// <paramref name="frequencyFactors"/> are per-pair divisors (rope_freqs; long-rope's short factors when the scaling
    /// holds none); <paramref name="longFrequencyFactors"/> long-rope's long factors when the scaling holds none.
    /// </summary>
    public RotaryEmbedding(int headDim, int rotaryDim, float theta, RopeLayout layout, RopeScaling? scaling = null,
        ReadOnlySpan<float> frequencyFactors = default, ReadOnlySpan<float> longFrequencyFactors = default)
    {
        if (rotaryDim <= 0 || rotaryDim > headDim || rotaryDim % 2 != 0)
            throw new SlmKitException($"rotary dimension {rotaryDim} must be even and within the head size {headDim}");
        HeadDim = headDim;
        RotaryDim = rotaryDim;
        Layout = layout;
        int pairs = rotaryDim / 2;
        _positionScale = 1f;
        if (scaling?.Type == "longrope")
        {
            ReadOnlySpan<float> shortFactors = scaling.ShortFactors ?? frequencyFactors, longFactors = scaling.LongFactors ?? longFrequencyFactors;
            if (shortFactors.Length != pairs || longFactors.Length != pairs)
                throw new SlmKitException($"long-rope needs {pairs} short and long factors (got {shortFactors.Length} and {longFactors.Length})");
            _inverseFrequencies = Frequencies(theta, rotaryDim, shortFactors);
            _longInverseFrequencies = Frequencies(theta, rotaryDim, longFactors);
            _magnitude = scaling.AttentionFactor;
            _originalContextLength = scaling.OriginalContextLength;
            return;
        }
        _inverseFrequencies = Frequencies(theta, rotaryDim, frequencyFactors);

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
                throw new SlmKitException($"rope scaling type '{scaling.Type}' is not supported (supported: linear, llama3, longrope)");
        }
    }

    private static float[] Frequencies(float theta, int rotaryDim, ReadOnlySpan<float> factors)
    {
        var frequencies = new float[rotaryDim / 2];
        for (int i = 0; i < frequencies.Length; i++)
        {
            double frequency = Math.Pow(theta, -2.0 * i / rotaryDim);
            if (!factors.IsEmpty)
                frequency /= factors[i];
            frequencies[i] = (float)frequency;
        }
        return frequencies;
    }

    public int HeadDim { get; }
    public int RotaryDim { get; }
    public RopeLayout Layout { get; }

    /// <summary>
    /// Long-rope's choice, llama.cpp's rule (llama_model::get_rope_factors): the long factors when the context size (the KV
    /// cache's capacity, llama.cpp's n_ctx per sequence) exceeds the original context length, else the short ones.
    /// transformers instead decides per forward call by the sequence length (last position + 1); both use the short
    /// factors whenever the context fits the original length. False without long-rope scaling.
    /// </summary>
    public bool UsesLongFactors(int contextSize) => _longInverseFrequencies is not null && contextSize > _originalContextLength;

    /// <summary>Fills cos/sin (length RotaryDim/2 each) for one position; computed once per token, shared by all heads and layers.</summary>
    public void ComputeAngles(int position, Span<float> cos, Span<float> sin) => ComputeAngles(position, 0, cos, sin);

    /// <summary>As <see cref="ComputeAngles(int, Span{float}, Span{float})"/>, in a context of <paramref name="contextSize"/> tokens.</summary>
    public void ComputeAngles(int position, int contextSize, Span<float> cos, Span<float> sin)
    {
        float[] frequencies = UsesLongFactors(contextSize) ? _longInverseFrequencies! : _inverseFrequencies;
        float p = position * _positionScale;
        for (int i = 0; i < frequencies.Length; i++)
        {
            float angle = p * frequencies[i];
            cos[i] = MathF.Cos(angle) * _magnitude;
            sin[i] = MathF.Sin(angle) * _magnitude;
        }
    }

    /// <summary>
    /// Rotates every head in <paramref name="heads"/> (headCount × HeadDim values) in place. Four or eight pairs at a
    /// time where the rotated dimensions allow, with the scalar loop's products and sums (no fused multiply-add), so
    /// the results are the same bit for bit.
    /// </summary>
    public void Apply(Span<float> heads, int headCount, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int pairs = RotaryDim / 2;
        if (Vector256.IsHardwareAccelerated && pairs % (Layout == RopeLayout.Normal ? 4 : 8) == 0 && heads.Length >= headCount * HeadDim)
        {
            if (Layout == RopeLayout.Normal)
                ApplyAdjacentPairs(heads, headCount, cos, sin);
            else
                ApplyHalves(heads, headCount, cos, sin);
            return;
        }
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

    /// <summary>
    /// Adjacent pairs, eight values (four pairs) per vector: v·[c₀ c₀ c₁ c₁ …] + swap(v)·[−s₀ s₀ −s₁ s₁ …], where swap
    /// exchanges each pair's two values: (x₀c − x₁s, x₁c + x₀s) as the scalar loop computes it.
    /// </summary>
    private void ApplyAdjacentPairs(Span<float> heads, int headCount, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int pairs = RotaryDim / 2;
        var duplicate = Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3);
        var swap = Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6);
        var signs = Vector256.Create(-1f, 1f, -1f, 1f, -1f, 1f, -1f, 1f);
        for (int i = 0; i < pairs; i += 4)
        {
            var c = Vector256.Shuffle(Vector128.Create(cos.Slice(i, 4)).ToVector256Unsafe(), duplicate);
            var s = Vector256.Shuffle(Vector128.Create(sin.Slice(i, 4)).ToVector256Unsafe(), duplicate) * signs;
            for (int h = 0; h < headCount; h++)
            {
                var at = heads.Slice(h * HeadDim + 2 * i, 8);
                var v = Vector256.Create((ReadOnlySpan<float>)at);
                (v * c + Vector256.Shuffle(v, swap) * s).CopyTo(at);
            }
        }
    }

    /// <summary>Half-split pairs, eight pairs per step: (x₀c − x₁s, x₀s + x₁c) with x₀ from the first half, x₁ from the second.</summary>
    private void ApplyHalves(Span<float> heads, int headCount, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int pairs = RotaryDim / 2;
        for (int i = 0; i < pairs; i += 8)
        {
            var c = Vector256.Create(cos.Slice(i, 8));
            var s = Vector256.Create(sin.Slice(i, 8));
            for (int h = 0; h < headCount; h++)
            {
                var first = heads.Slice(h * HeadDim + i, 8);
                var second = heads.Slice(h * HeadDim + i + pairs, 8);
                var x0 = Vector256.Create((ReadOnlySpan<float>)first);
                var x1 = Vector256.Create((ReadOnlySpan<float>)second);
                (x0 * c - x1 * s).CopyTo(first);
                (x0 * s + x1 * c).CopyTo(second);
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
