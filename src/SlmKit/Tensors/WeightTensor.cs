using System.Runtime.InteropServices;

namespace SlmKit.Tensors;

/// <summary>
/// A named, immutable tensor whose bytes live in a memory-mapped file or in native memory owned by its source.
/// <see cref="Dimensions"/> are row-major, outermost first (PyTorch order): a linear layer's weight is
/// [out_features, in_features]. GGUF lists dimensions innermost first; its reader reverses them.
/// </summary>
public sealed unsafe class WeightTensor
{
    public WeightTensor(string name, GgmlType type, long[] dimensions, byte* data, long byteLength)
    {
        Name = name;
        Type = type;
        Dimensions = dimensions;
        Data = data;
        ByteLength = byteLength;
        long count = 1;
        foreach (long d in dimensions)
            count *= d;
        ElementCount = count;
    }

    public string Name { get; }
    public GgmlType Type { get; }

    /// <summary>Row-major dimensions, outermost first.</summary>
    public long[] Dimensions { get; }

    public long ElementCount { get; }

    /// <summary>Length of the innermost dimension (a row).</summary>
    public long RowLength => Dimensions.Length == 0 ? 1 : Dimensions[^1];

    /// <summary>Number of rows: the product of all but the innermost dimension.</summary>
    public long RowCount => Dimensions.Length == 0 ? 1 : ElementCount / RowLength;

    /// <summary>Start of the tensor's bytes; valid while its source is alive.</summary>
    public byte* Data { get; }

    public long ByteLength { get; }

    /// <summary>The raw bytes (tensors over 2 GiB are not expected in small models and are refused here).</summary>
    public ReadOnlySpan<byte> Bytes => new(Data, checked((int)ByteLength));

    /// <summary>The elements as float32; only for <see cref="GgmlType.F32"/>.</summary>
    public ReadOnlySpan<float> AsFloat32()
    {
        if (Type != GgmlType.F32)
            throw new InvalidOperationException($"tensor '{Name}' is {Type}, not F32");
        return MemoryMarshal.Cast<byte, float>(Bytes);
    }

    /// <summary>Human-readable shape, e.g. "[576, 1536]".</summary>
    public string ShapeText => "[" + string.Join(", ", Dimensions) + "]";
}

/// <summary>
/// Where a model finds its weights: a GGUF file, a folder of safetensors shards, a llama2.c checkpoint.
/// Disposing the source invalidates every <see cref="WeightTensor"/> it handed out.
/// </summary>
public interface IWeightSource : IDisposable
{
    /// <summary>Path of the file or folder, for error messages.</summary>
    string SourcePath { get; }

    /// <summary>Every tensor name, in file order.</summary>
    IReadOnlyList<string> TensorNames { get; }

    /// <summary>The tensor called <paramref name="name"/>, or null.</summary>
    WeightTensor? Find(string name);
}
