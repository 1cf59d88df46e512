using System.Buffers.Binary;
using System.Text.Json;
using SlmKit.Tensors;

namespace SlmKit.Formats;

/// <summary>
/// One safetensors file, memory-mapped: an 8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and byte range, then the data. Every range is checked against the data section before use.
/// </summary>
public sealed unsafe class SafeTensorsFile : IWeightSource
{
    /// <summary>The safetensors specification caps the header at 100 MB.</summary>
    private const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private readonly MappedFile _file;
    private readonly Dictionary<string, Entry> _entries;
    private readonly string[] _names;
    private bool _disposed;

    private SafeTensorsFile(MappedFile file, Dictionary<string, Entry> entries, string[] names, Dictionary<string, string> metadata, long dataOffset)
    {
        _file = file;
        _entries = entries;
        _names = names;
        Metadata = metadata;
        DataOffset = dataOffset;
    }

    /// <inheritdoc/>
    public string SourcePath => _file.Path;

    /// <summary>Tensor names in header order.</summary>
    public IReadOnlyList<string> TensorNames => _names;

    /// <summary>The header's <c>__metadata__</c> (string to string); empty when absent.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Absolute file offset where the data section starts (8 + header length).</summary>
    public long DataOffset { get; }

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    /// <exception cref="ModelFileException">The file is missing, damaged, or holds a dtype this library cannot represent.</exception>
    public static SafeTensorsFile Open(string path)
    {
        MappedFile file = MappedFile.Open(path);
        try
        {
            return Parse(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public WeightTensor? Find(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _entries.TryGetValue(name, out Entry e)
            ? new WeightTensor(name, e.Type, (long[])e.Dimensions.Clone(), _file.Pointer + e.Offset, e.ByteLength)
            : null;
    }

    /// <summary>Unmaps the file; tensors handed out by <see cref="Find"/> become invalid.</summary>
    public void Dispose()
    {
        _disposed = true;
        _file.Dispose();
    }

    /// <summary>The <see cref="GgmlType"/> for a safetensors dtype string, or null when it has none here.</summary>
    internal static GgmlType? TypeOf(string dtype) => dtype switch
    {
        "F32" => GgmlType.F32,
        "F16" => GgmlType.F16,
        "BF16" => GgmlType.BF16,
        "F64" => GgmlType.F64,
        "I8" => GgmlType.I8,
        "I16" => GgmlType.I16,
        "I32" => GgmlType.I32,
        "I64" => GgmlType.I64,
        _ => null,
    };

    /// <summary>The safetensors dtype string for <paramref name="type"/>, or null when safetensors cannot hold it.</summary>
    internal static string? DTypeOf(GgmlType type) => type switch
    {
        GgmlType.F32 => "F32",
        GgmlType.F16 => "F16",
        GgmlType.BF16 => "BF16",
        GgmlType.F64 => "F64",
        GgmlType.I8 => "I8",
        GgmlType.I16 => "I16",
        GgmlType.I32 => "I32",
        GgmlType.I64 => "I64",
        _ => null,
    };

    private static SafeTensorsFile Parse(MappedFile file)
    {
        string path = file.Path;
        if (file.Length < 8)
            throw new ModelFileException(path, $"too short for a safetensors file ({file.Length} bytes; the header length alone takes 8)");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file.Span(0, 8));
        if (headerLength > (ulong)(file.Length - 8))
            throw new ModelFileException(path, $"header length {headerLength} runs past the end of the file ({file.Length} bytes)");
        if (headerLength > MaxHeaderBytes)
            throw new ModelFileException(path, $"header length {headerLength} exceeds the 100 MB the safetensors format allows");
        long dataOffset = 8 + (long)headerLength;
        long dataLength = file.Length - dataOffset;

        // The JSON is parsed from a copy: JsonDocument wants managed memory, and the header is bounded above.
        byte[] header = file.Span(8, (int)headerLength).ToArray();
        using JsonDocument document = JsonFiles.Parse(path, header, "safetensors header");
        JsonElement root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new ModelFileException(path, $"safetensors header is a JSON {JsonFiles.Kind(root)}, expected an object");

        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        var names = new List<string>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        bool sawMetadata = false;
        try
        {
            ReadHeader(path, root, entries, names, metadata, ref sawMetadata, dataOffset, dataLength);
        }
        catch (InvalidOperationException e)
        {
            // JsonDocument checks UTF-8 inside strings only when a string is read.
            throw new ModelFileException(path, "safetensors header has a string that is not valid UTF-8", e);
        }
        return new SafeTensorsFile(file, entries, [.. names], metadata, dataOffset);
    }

    private static void ReadHeader(string path, JsonElement root, Dictionary<string, Entry> entries, List<string> names,
        Dictionary<string, string> metadata, ref bool sawMetadata, long dataOffset, long dataLength)
    {
        foreach (JsonProperty property in root.EnumerateObject())
        {
            string name = property.Name;
            if (name == MetadataKey)
            {
                if (sawMetadata)
                    throw new ModelFileException(path, "'__metadata__' appears twice in the header");
                sawMetadata = true;
                if (property.Value.ValueKind != JsonValueKind.Object)
                    throw new ModelFileException(path, $"'__metadata__' is a JSON {JsonFiles.Kind(property.Value)}, expected an object of strings");
                foreach (JsonProperty m in property.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String)
                        throw new ModelFileException(path, $"'__metadata__' entry '{MessageText.Clean(m.Name)}' is a JSON {JsonFiles.Kind(m.Value)}, expected a string");
                    if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                        throw new ModelFileException(path, $"'__metadata__' entry '{MessageText.Clean(m.Name)}' appears twice");
                }
                continue;
            }

            Entry entry = ParseEntry(path, name, property.Value, dataOffset, dataLength);
            if (!entries.TryAdd(name, entry))
                throw new ModelFileException(path, $"tensor '{MessageText.Clean(name)}' appears twice in the header");
            names.Add(name);
        }
    }

    private static Entry ParseEntry(string path, string rawName, JsonElement value, long dataOffset, long dataLength)
    {
        string name = MessageText.Clean(rawName);
        if (value.ValueKind != JsonValueKind.Object)
            throw new ModelFileException(path, $"tensor '{name}' is a JSON {JsonFiles.Kind(value)}, expected an object");
        if (!value.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new ModelFileException(path, $"tensor '{name}' has no string 'dtype'");
        string dtype = MessageText.Clean(dtypeElement.GetString()!);
        GgmlType type = TypeOf(dtype)
            ?? throw new ModelFileException(path, $"tensor '{name}' has dtype {dtype}, which is not supported (F32, F16, BF16, F64, I8, I16, I32, I64 are)");
        GgmlTypeInfo.TryGetBlockLayout(type, out _, out int elementSize);

        if (!value.TryGetProperty("shape", out JsonElement shape) || shape.ValueKind != JsonValueKind.Array)
            throw new ModelFileException(path, $"tensor '{name}' has no 'shape' array");
        int rank = shape.GetArrayLength();
        if (rank > 8)
            throw new ModelFileException(path, $"tensor '{name}' has {rank} dimensions (more than 8 are refused)");
        var dims = new long[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            JsonElement d = shape[i];
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long n) || n < 0)
                throw new ModelFileException(path, $"tensor '{name}' shape entry {i} is not a non-negative integer");
            dims[i] = n;
            if (n != 0 && count > long.MaxValue / n)
                throw new ModelFileException(path, $"tensor '{name}' element count overflows 64 bits");
            count *= n;
        }
        if (count > long.MaxValue / elementSize)
            throw new ModelFileException(path, $"tensor '{name}' byte size overflows 64 bits");
        long byteLength = count * elementSize;

        if (!value.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || !offsets[0].TryGetInt64Safe(out long begin) || !offsets[1].TryGetInt64Safe(out long end) || begin < 0 || end < begin)
            throw new ModelFileException(path, $"tensor '{name}' has no valid 'data_offsets' [begin, end]");
        if (end > dataLength)
            throw new ModelFileException(path, $"tensor '{name}' data (offsets {begin}..{end}) runs past the end of the data section ({dataLength} bytes)");
        if (end - begin != byteLength)
            throw new ModelFileException(path, $"tensor '{name}' is {dtype} [{string.Join(", ", dims)}], which takes {byteLength} bytes, but its data_offsets span {end - begin}");
        return new Entry(type, dims, dataOffset + begin, byteLength);
    }

    private readonly record struct Entry(GgmlType Type, long[] Dimensions, long Offset, long ByteLength);
}

internal static class JsonElementExtensions
{
    /// <summary>TryGetInt64 that also answers false (instead of throwing) for a non-number.</summary>
    public static bool TryGetInt64Safe(this JsonElement element, out long value)
    {
        value = 0;
        return element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out value);
    }
}
