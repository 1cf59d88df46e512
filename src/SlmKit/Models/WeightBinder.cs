using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Looks up the tensors a family needs, checks each shape against the config before any is used, and counts
/// parameters. Small vectors (norms, biases) are widened to F32 arrays once; matrices stay in the mapping.
/// </summary>
internal sealed class WeightBinder
{
    private readonly IWeightSource _source;
    private readonly HashSet<string> _counted = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _byType = new(StringComparer.Ordinal);

    public WeightBinder(IWeightSource source) => _source = source;

    public long ParameterCount { get; private set; }

    public IReadOnlyDictionary<string, long> ParametersByType => _byType;

    public WeightTensor Require(string name)
    {
        var tensor = _source.Find(name)
            ?? throw new ModelFileException(_source.SourcePath, $"tensor '{name}' is missing");
        if (_counted.Add(name))
        {
            ParameterCount += tensor.ElementCount;
            _byType[tensor.Type.ToString()] = _byType.GetValueOrDefault(tensor.Type.ToString()) + tensor.ElementCount;
        }
        return tensor;
    }

    /// <summary>A [rows, cols] matrix the kernels can multiply with.</summary>
    public WeightTensor Matrix(string name, int rows, int cols)
    {
        var tensor = Require(name);
        if (tensor.Dimensions.Length != 2 || tensor.Dimensions[0] != rows || tensor.Dimensions[1] != cols)
            throw new ModelFileException(_source.SourcePath, $"tensor '{name}' has shape {tensor.ShapeText}, but the config implies [{rows}, {cols}]");
        if (!GgmlTypeInfo.IsSupportedForCompute(tensor.Type))
            throw new ModelFileException(_source.SourcePath, $"tensor '{name}' is {tensor.Type}; this build cannot compute with that type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and Q2_K…Q6_K it can)");
        return tensor;
    }

    /// <summary>A vector of <paramref name="length"/> values, widened to F32.</summary>
    public float[] Vector(string name, int length)
    {
        var tensor = Require(name);
        if (tensor.ElementCount != length || tensor.Dimensions.Length > 2 || (tensor.Dimensions.Length == 2 && tensor.Dimensions[0] != 1))
            throw new ModelFileException(_source.SourcePath, $"tensor '{name}' has shape {tensor.ShapeText}, but the config implies [{length}]");
        if (!GgmlTypeInfo.IsSupportedForCompute(tensor.Type))
            throw new ModelFileException(_source.SourcePath, $"tensor '{name}' is {tensor.Type}; expected F32, F16 or BF16");
        var values = new float[length];
        unsafe
        {
            MatMul.WidenRow(tensor.Data, tensor.Type, length, 0, values);
        }
        return values;
    }
}

/// <summary>Token embedding lookup: one row of the table, widened to F32.</summary>
internal static class Embeddings
{
    public static unsafe void Lookup(WeightTensor table, int token, Span<float> destination) =>
        MatMul.WidenRow(table.Data, table.Type, (int)table.RowLength, token, destination);
}

/// <summary>Activation buffers for one forward batch, grown on demand and reused, so decoding allocates nothing per token.</summary>
internal sealed class TransformerScratch
{
    /// <summary>Tokens per forward batch during prefill; longer prompts run in several batches.</summary>
    public const int MaxBatch = 64;

    private int _tokens = -1;

    public float[] X = [], Normed = [], Q = [], K = [], V = [], AttentionOut = [], Projected = [], Gate = [], Up = [], Cos = [], Sin = [];

    public CausalAttention Attention { get; } = new();

    public void Ensure(int tokens, int dim, int qDim, int kvDim, int ffn, int ropePairs)
    {
        if (tokens <= _tokens)
            return;
        int capacity = Math.Max(tokens, Math.Min(MaxBatch, Math.Max(_tokens * 2, 1)));
        X = new float[capacity * dim];
        Normed = new float[capacity * dim];
        Q = new float[capacity * qDim];
        K = new float[capacity * kvDim];
        V = new float[capacity * kvDim];
        AttentionOut = new float[capacity * qDim];
        Projected = new float[capacity * dim];
        Gate = new float[capacity * ffn];
        Up = new float[capacity * ffn];
        Cos = new float[capacity * ropePairs];
        Sin = new float[capacity * ropePairs];
        _tokens = capacity;
    }
}
