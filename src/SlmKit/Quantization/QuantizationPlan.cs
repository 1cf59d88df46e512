using SlmKit.Kernels.Quantization;
using SlmKit.Tensors;

namespace SlmKit.Quantization;

/// <summary>What <c>slm quantize</c> produces: a base type and, for the _M mixes, which tensors get more bits.</summary>
public enum QuantizationTarget
{
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q2_K,
    Q4_K_M,
    Q5_K_M,
    Q6_K,

    /// <summary>Every matrix in half precision (llama-quantize's F16: a plain conversion, no special cases).</summary>
    F16,

    /// <summary>Every matrix in bfloat16.</summary>
    BF16,

    /// <summary>Every matrix in single precision (widens a quantized or half-precision file).</summary>
    F32,
}

/// <summary>
/// Which type each tensor gets, following llama.cpp's llama_tensor_get_type (no imatrix, default options), so files
/// match llama-quantize's tensor by tensor:
/// <list type="bullet">
/// <item>The float targets (F16, BF16, F32) give every matrix that type.</item>
/// <item>1-D tensors (norms, biases), tensors whose name does not end in "weight", Mamba's convolution weights and T5's
/// relative position biases stay unquantized (F32).</item>
/// <item>The output head (output.weight, or token_embd.weight when the embeddings are tied) becomes Q6_K unless the target is
/// Q8_0 (then Q8_0), or Q8_0 when its rows are not a whole number of the target's blocks.</item>
/// <item>attn_v.weight: Q2_K → Q4_K when there are ≥ 4 query heads per KV head, else Q3_K; Q4_K_M/Q5_K_M → Q6_K in the
/// layers where <see cref="UseMoreBits"/> holds.</item>
/// <item>ffn_down: Q2_K → Q3_K; Q4_K_M/Q5_K_M → Q6_K where <see cref="UseMoreBits"/> holds. attn_output.weight: Q2_K → Q3_K.</item>
/// <item>A K type whose rows are not a multiple of 256 falls back: Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, Q2_K/Q3_K → Q4_0
/// (llama.cpp picks IQ4_NL, which SlmKit does not compute yet), and F16 if even that does not fit.</item>
/// </list>
/// </summary>
public sealed class QuantizationPlan
{
    private readonly QuantizationTarget _target;
    private readonly int _attentionValueCount;
    private readonly int _feedForwardDownCount;
    private readonly int _groupedQueryFactor;
    private readonly bool _hasOutput;
    private int _attentionValueIndex;
    private int _feedForwardDownIndex;

    /// <param name="target">The requested mix.</param>
    /// <param name="tensorNames">All tensor names of the model, in file order.</param>
    /// <param name="groupedQueryFactor">Query heads per KV head (1 when unknown).</param>
    public QuantizationPlan(QuantizationTarget target, IReadOnlyList<string> tensorNames, int groupedQueryFactor)
    {
        _target = target;
        _groupedQueryFactor = groupedQueryFactor;
        foreach (string name in tensorNames)
        {
            if (name.Contains("attn_v.weight", StringComparison.Ordinal))
                _attentionValueCount++;
            if (name.Contains("ffn_down", StringComparison.Ordinal))
                _feedForwardDownCount++;
            if (name == "output.weight")
                _hasOutput = true;
        }
    }

    /// <summary>The llama_ftype number written to general.file_type.</summary>
    public static uint FileType(QuantizationTarget target) => target switch
    {
        QuantizationTarget.Q4_0 => 2,
        QuantizationTarget.Q4_1 => 3,
        QuantizationTarget.Q8_0 => 7,
        QuantizationTarget.Q5_0 => 8,
        QuantizationTarget.Q5_1 => 9,
        QuantizationTarget.Q2_K => 10,
        QuantizationTarget.Q4_K_M => 15,
        QuantizationTarget.Q5_K_M => 17,
        QuantizationTarget.Q6_K => 18,
        QuantizationTarget.F32 => 0,
        QuantizationTarget.F16 => 1,
        QuantizationTarget.BF16 => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(target)),
    };

    /// <summary>The type most tensors get.</summary>
    public static GgmlType BaseType(QuantizationTarget target) => target switch
    {
        QuantizationTarget.Q8_0 => GgmlType.Q8_0,
        QuantizationTarget.Q4_0 => GgmlType.Q4_0,
        QuantizationTarget.Q4_1 => GgmlType.Q4_1,
        QuantizationTarget.Q5_0 => GgmlType.Q5_0,
        QuantizationTarget.Q5_1 => GgmlType.Q5_1,
        QuantizationTarget.Q2_K => GgmlType.Q2_K,
        QuantizationTarget.Q4_K_M => GgmlType.Q4_K,
        QuantizationTarget.Q5_K_M => GgmlType.Q5_K,
        QuantizationTarget.Q6_K => GgmlType.Q6_K,
        QuantizationTarget.F16 => GgmlType.F16,
        QuantizationTarget.BF16 => GgmlType.BF16,
        QuantizationTarget.F32 => GgmlType.F32,
        _ => throw new ArgumentOutOfRangeException(nameof(target)),
    };

    /// <summary>Parses "Q4_K_M", "q8_0", … (case-insensitive).</summary>
    public static QuantizationTarget Parse(string text) =>
        Enum.TryParse(text, ignoreCase: true, out QuantizationTarget target) && Enum.IsDefined(target)
            ? target
            : throw new SlmKitException($"unknown quantization type '{text}' (expected one of {string.Join(", ", Enum.GetNames<QuantizationTarget>())})");

    /// <summary>llama.cpp's choice of layers that get more bits: the first and last eighth, and every third in between.</summary>
    public static bool UseMoreBits(int layer, int layers) =>
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    /// <summary>
    /// The type of tensor <paramref name="name"/> with row-major <paramref name="dimensions"/>, or null when it stays
    /// unquantized. Call once per tensor, in file order (the layer counters advance as llama.cpp's do).
    /// </summary>
    public GgmlType? TypeFor(string name, IReadOnlyList<long> dimensions)
    {
        // Mamba's convolution weights and T5's relative position biases are 2-D but tiny; llama.cpp keeps them in F32.
        if (dimensions.Count < 2 || !name.EndsWith("weight", StringComparison.Ordinal) || name.EndsWith("ssm_conv1d.weight", StringComparison.Ordinal)
            || name.EndsWith("attn_rel_b.weight", StringComparison.Ordinal))
            return null;
        long rowLength = dimensions[^1];
        GgmlType type = BaseType(_target);
        // A float target is a plain conversion: llama.cpp applies its per-tensor rules only to quantized types.
        if (!BlockFormats.IsQuantized(type))
            return type;
        bool mix = _target is QuantizationTarget.Q4_K_M or QuantizationTarget.Q5_K_M;

        if (name == "output.weight" || (!_hasOutput && name == "token_embd.weight"))
        {
            if (rowLength % BlockSize(type) != 0)
                type = GgmlType.Q8_0;
            else if (type != GgmlType.Q8_0)
                type = GgmlType.Q6_K;
        }
        else if (name.Contains("attn_v.weight", StringComparison.Ordinal))
        {
            if (_target == QuantizationTarget.Q2_K)
                type = _groupedQueryFactor >= 4 ? GgmlType.Q4_K : GgmlType.Q3_K;
            else if (mix && UseMoreBits(_attentionValueIndex, _attentionValueCount))
                type = GgmlType.Q6_K;
            _attentionValueIndex++;
        }
        else if (name.Contains("ffn_down", StringComparison.Ordinal))
        {
            if (_target == QuantizationTarget.Q2_K)
                type = GgmlType.Q3_K;
            else if (mix && UseMoreBits(_feedForwardDownIndex, _feedForwardDownCount))
                type = GgmlType.Q6_K;
            _feedForwardDownIndex++;
        }
        else if (name.Contains("attn_output.weight", StringComparison.Ordinal))
        {
            if (_target == QuantizationTarget.Q2_K)
                type = GgmlType.Q3_K;
        }

        if (rowLength % BlockSize(type) != 0)
        {
            type = type switch
            {
                GgmlType.Q4_K => GgmlType.Q5_0,
                GgmlType.Q5_K => GgmlType.Q5_1,
                GgmlType.Q6_K => GgmlType.Q8_0,
                GgmlType.Q2_K or GgmlType.Q3_K => GgmlType.Q4_0,
                _ => type,
            };
            if (rowLength % BlockSize(type) != 0)
                type = GgmlType.F16;
        }
        return type;
    }

    private static int BlockSize(GgmlType type)
    {
        GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out _);
        return blockSize;
    }
}
