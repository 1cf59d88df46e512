using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Looks up the tensors a family needs, checks each shape against the config before any is used, and counts
/// parameters. Small vectors (norms, biases) are widened to F32 arrays once; matrices stay in the mapping.
/// </summary>
internal sealed class WeightBinder : IDisposable
{
    private readonly List<nint> _owned = [];
    private readonly IWeightSource _source;
    private readonly HashSet<string> _counted = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _byType = new(StringComparer.Ordinal);

    public WeightBinder(IWeightSource source) => _source = source;

    public long ParameterCount { get; private set; }

    public IReadOnlyDictionary<string, long> ParametersByType => _byType;

    public WeightTensor Require(string name) => Require(name, countAsParameters: true);

    private WeightTensor Require(string name, bool countAsParameters)
    {
        var tensor = _source.Find(name)
            ?? throw new ModelFileException(_source.SourcePath, $"tensor '{name}' is missing");
        if (countAsParameters && _counted.Add(name))
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

    /// <summary>
    /// A [rows, cols] matrix stored transposed ([cols, rows], GPT-2's Conv1D): copied once into native memory in
    /// [rows, cols] order, keeping its element type. The copy lives until this binder is disposed.
    /// </summary>
    public unsafe WeightTensor TransposedMatrix(string name, int rows, int cols)
    {
        var tensor = Require(name);
        if (tensor.Dimensions.Length != 2 || tensor.Dimensions[0] != cols || tensor.Dimensions[1] != rows)
            throw new ModelFileException(_source.SourcePath, $"tensor '{name}' has shape {tensor.ShapeText}, but the config implies [{cols}, {rows}] (stored transposed)");
        int size = tensor.Type switch
        {
            GgmlType.F32 => 4,
            GgmlType.F16 or GgmlType.BF16 => 2,
            _ => throw new ModelFileException(_source.SourcePath, $"tensor '{name}' is {tensor.Type}; a transposed weight must be F32, F16 or BF16"),
        };
        long bytes = (long)rows * cols * size;
        byte* data = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)bytes);
        _owned.Add((nint)data);
        byte* source = tensor.Data;
        for (long r = 0; r < rows; r++)
        {
            for (long c = 0; c < cols; c++)
            {
                byte* from = source + (c * rows + r) * size;
                byte* to = data + (r * cols + c) * size;
                if (size == 4)
                    *(uint*)to = *(uint*)from;
                else
                    *(ushort*)to = *(ushort*)from;
            }
        }
        return new WeightTensor(name, tensor.Type, [rows, cols], data, bytes);
    }

    /// <summary>Frees the copies made by <see cref="TransposedMatrix"/>.</summary>
    public unsafe void Dispose()
    {
        foreach (nint p in _owned)
            System.Runtime.InteropServices.NativeMemory.Free((void*)p);
        _owned.Clear();
    }

    /// <summary>
    /// A small [rows, cols] table of values, widened to F32 (Mamba's A and convolution weights); also accepted as
    /// [rows, 1, cols], the shape a depthwise Conv1d weight has in a PyTorch checkpoint.
    /// </summary>
    public float[] Table(string name, int rows, int cols)
    {
        var tensor = Require(name);
        long[] dims = tensor.Dimensions;
        bool shaped = (dims.Length == 2 && dims[0] == rows && dims[1] == cols) || (dims.Length == 3 && dims[0] == rows && dims[1] == 1 && dims[2] == cols);
        if (!shaped)
            throw new ModelFileException(_source.SourcePath, $"tensor '{name}' has shape {tensor.ShapeText}, but the config implies [{rows}, {cols}]");
        if (!GgmlTypeInfo.IsSupportedForCompute(tensor.Type))
            throw new ModelFileException(_source.SourcePath, $"tensor '{name}' is {tensor.Type}; expected F32, F16 or BF16");
        var values = new float[rows * cols];
        unsafe
        {
            MatMul.WidenRow(tensor.Data, tensor.Type, rows * cols, 0, values);
        }
        return values;
    }

    /// <summary>A vector of <paramref name="length"/> values, widened to F32; configuration stored as a tensor is not counted as parameters.</summary>
    public float[] Vector(string name, int length, bool countAsParameters = true)
    {
        var tensor = Require(name, countAsParameters);
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
