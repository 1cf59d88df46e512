using SlmKit.Tensors;

namespace SlmKit.Formats;

/// <summary>One tensor's entry in a GGUF file's tensor table, already checked against the file.</summary>
public sealed class GgufTensorInfo
{
    internal GgufTensorInfo(string name, GgmlType type, long[] dimensions, long elementCount, long offset, long byteLength)
    {
        Name = name;
        Type = type;
        Dimensions = dimensions;
        ElementCount = elementCount;
        Offset = offset;
        ByteLength = byteLength;
    }

    /// <summary>The tensor's name, e.g. "blk.0.attn_q.weight".</summary>
    public string Name { get; }

    /// <summary>Element type of the stored bytes.</summary>
    public GgmlType Type { get; }

    /// <summary>Row-major dimensions, outermost first: the reverse of the file's innermost-first ne[].</summary>
    public IReadOnlyList<long> Dimensions { get; }

    /// <summary>Product of the dimensions.</summary>
    public long ElementCount { get; }

    /// <summary>Absolute offset of the tensor's first byte in the file (not relative to the data section).</summary>
    public long Offset { get; }

    /// <summary>Number of bytes the tensor occupies.</summary>
    public long ByteLength { get; }

    /// <summary>E.g. "blk.0.attn_q.weight F32 [64, 64]".</summary>
    public override string ToString() => $"{Name} {Type} [{string.Join(", ", Dimensions)}]";
}
