using System.Runtime.InteropServices;
using System.Text;
using SlmKit.Tensors;

namespace SlmKit.Formats;

/// <summary>
/// Builds a GGUF file (version 2 or 3, little-endian) the way llama.cpp's own writer lays it out: header, metadata,
/// tensor table, zero padding to the alignment, then each tensor's bytes padded to the alignment.
/// Metadata and tensors are written in the order they were added.
/// </summary>
public sealed class GgufWriter
{
    /// <summary>llama.cpp refuses tensor names of GGML_MAX_NAME (64) bytes or more.</summary>
    public const int MaxTensorNameBytes = 63;

    private readonly List<KeyValuePair<string, object>> _metadata = [];
    private readonly Dictionary<string, int> _metadataIndex = new(StringComparer.Ordinal);
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);

    /// <summary>A writer for GGUF <paramref name="version"/> (2 or 3) with the given data alignment (a power of two).</summary>
    public GgufWriter(uint version = 3, int alignment = GgufFile.DefaultAlignment)
    {
        if (version is not (2 or 3))
            throw new ArgumentOutOfRangeException(nameof(version), version, "only GGUF versions 2 and 3 can be written");
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "the alignment must be a positive power of two");
        Version = version;
        Alignment = alignment;
    }

    /// <summary>The version written in the header.</summary>
    public uint Version { get; }

    /// <summary>Alignment of the data section and of every tensor.</summary>
    public int Alignment { get; }

    /// <summary>
    /// The metadata set so far, in the order it will be written, with values as stored (arrays as <see cref="GgufArray"/>;
    /// the reader gives back the same CLR types). Passing each pair to another writer's <see cref="Set"/> reproduces it.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, object>> Metadata => _metadata;

    /// <summary>
    /// Sets metadata <paramref name="key"/>, keeping its first position when set again. The CLR type decides the GGUF
    /// type: byte→uint8, sbyte→int8, ushort→uint16, short→int16, uint→uint32, int→int32, float→float32, bool, string,
    /// ulong→uint64, long→int64, double→float64; a one-dimensional array of any of those, or a <see cref="GgufArray"/>
    /// (which may nest), becomes an array.
    /// </summary>
    public void Set(string key, object value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        object stored = Normalize(value, nameof(value));
        if (key == GgufFile.AlignmentKey && !(stored is uint a && a == (uint)Alignment))
            throw new ArgumentException($"'{GgufFile.AlignmentKey}' is written from the constructor's alignment ({Alignment}); set it only to that value as a uint", nameof(value));
        if (_metadataIndex.TryGetValue(key, out int index))
            _metadata[index] = new(key, stored);
        else
        {
            _metadataIndex[key] = _metadata.Count;
            _metadata.Add(new(key, stored));
        }
    }

    /// <summary>
    /// Adds a tensor whose bytes are already in <paramref name="type"/>'s layout. <paramref name="dimensionsRowMajor"/>
    /// is outermost first (PyTorch order); the file stores it reversed, as ggml expects.
    /// </summary>
    public void AddTensor(string name, GgmlType type, long[] dimensionsRowMajor, ReadOnlySpan<byte> data)
    {
        long expected = CheckTensor(name, type, dimensionsRowMajor);
        if (data.Length != expected)
            throw new ArgumentException($"tensor '{name}' is {type} [{string.Join(", ", dimensionsRowMajor)}], which takes {expected} bytes, but {data.Length} were given", nameof(data));
        _tensors.Add(new PendingTensor(name, type, (long[])dimensionsRowMajor.Clone(), data.ToArray()));
        _tensorNames.Add(name);
    }

    /// <summary>
    /// Adds a float tensor stored as <paramref name="storeAs"/>: F32 as is, or F16/BF16 rounded to nearest, ties to even.
    /// </summary>
    public void AddTensor(string name, long[] dimensionsRowMajor, ReadOnlySpan<float> data, GgmlType storeAs = GgmlType.F32)
    {
        if (storeAs is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
            throw new ArgumentException($"float data can be stored as F32, F16 or BF16, not {storeAs}", nameof(storeAs));
        long expected = CheckTensor(name, storeAs, dimensionsRowMajor);
        int elementSize = storeAs == GgmlType.F32 ? 4 : 2;
        if ((long)data.Length * elementSize != expected)
            throw new ArgumentException($"tensor '{name}' has shape [{string.Join(", ", dimensionsRowMajor)}] but {data.Length} values were given", nameof(data));
        byte[] bytes = new byte[expected];
        FloatConversion.Convert(data, storeAs, bytes);
        _tensors.Add(new PendingTensor(name, storeAs, (long[])dimensionsRowMajor.Clone(), bytes));
        _tensorNames.Add(name);
    }

    /// <summary>Writes the file to <paramref name="path"/> + ".tmp" and then renames it, so readers never see half a file.</summary>
    public void Write(string path) => AtomicFile.Write(path, Write);

    /// <summary>Writes the whole file to <paramref name="stream"/> (which need not be seekable).</summary>
    public void Write(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var metadata = new List<KeyValuePair<string, object>>(_metadata);
        if (Alignment != GgufFile.DefaultAlignment && !_metadataIndex.ContainsKey(GgufFile.AlignmentKey))
            metadata.Insert(0, new(GgufFile.AlignmentKey, (uint)Alignment));

        // The header, metadata and tensor table are small next to the weights; build them in memory so the padding
        // before the data section is known without seeking.
        var head = new MemoryStream();
        using (var w = new BinaryWriter(head, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(GgufFile.Magic);
            w.Write(Version);
            w.Write((ulong)_tensors.Count);
            w.Write((ulong)metadata.Count);
            foreach (var (key, value) in metadata)
            {
                WriteString(w, key);
                w.Write((uint)GgufValues.TypeOf(value)!.Value);
                WriteValue(w, value);
            }
            long offset = 0;
            foreach (PendingTensor t in _tensors)
            {
                WriteString(w, t.Name);
                w.Write((uint)t.Dimensions.Length);
                for (int d = t.Dimensions.Length - 1; d >= 0; d--)
                    w.Write((ulong)t.Dimensions[d]);
                w.Write((uint)t.Type);
                w.Write((ulong)offset);
                offset += GgufFile.AlignUp(t.Data.Length, Alignment);
            }
        }
        head.SetLength(GgufFile.AlignUp(head.Length, Alignment));
        head.Position = 0;
        head.CopyTo(stream);
        byte[] padding = new byte[Alignment];
        foreach (PendingTensor t in _tensors)
        {
            stream.Write(t.Data);
            int pad = (int)(GgufFile.AlignUp(t.Data.Length, Alignment) - t.Data.Length);
            stream.Write(padding, 0, pad);
        }
        stream.Flush();
    }

    private long CheckTensor(string name, GgmlType type, long[] dimensions)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(dimensions);
        if (Encoding.UTF8.GetByteCount(name) > MaxTensorNameBytes)
            throw new ArgumentException($"tensor name '{name}' is longer than {MaxTensorNameBytes} UTF-8 bytes, which llama.cpp refuses", nameof(name));
        if (_tensorNames.Contains(name))
            throw new ArgumentException($"tensor '{name}' was already added", nameof(name));
        if (dimensions.Length is 0 or > 4)
            throw new ArgumentException($"tensor '{name}' must have 1 to 4 dimensions, not {dimensions.Length}", nameof(dimensions));
        if (!GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out _))
            throw new ArgumentException($"tensor '{name}' has unknown type {(uint)type}", nameof(type));
        long count = 1;
        foreach (long d in dimensions)
        {
            if (d < 0)
                throw new ArgumentException($"tensor '{name}' has a negative dimension", nameof(dimensions));
            count = d == 0 || count <= long.MaxValue / d ? count * d : throw new ArgumentException($"tensor '{name}' is too large", nameof(dimensions));
        }
        if (dimensions[^1] % blockSize != 0)
            throw new ArgumentException($"tensor '{name}' row length {dimensions[^1]} is not a whole number of {blockSize}-element {type} blocks", nameof(dimensions));
        long bytes = GgmlTypeInfo.TryGetByteSize(type, count, dimensions[^1]) ?? throw new ArgumentException($"tensor '{name}' is too large", nameof(dimensions));
        if (bytes > Array.MaxLength)
            throw new ArgumentException($"tensor '{name}' is larger than a managed array can hold", nameof(dimensions));
        return bytes;
    }

    private static object Normalize(object value, string parameter)
    {
        switch (value)
        {
            case GgufArray nested:
                if (nested.Values is string[] nestedStrings && Array.IndexOf(nestedStrings, null) >= 0)
                    throw new ArgumentException("GGUF string arrays cannot hold null", parameter);
                return nested;
            case string[] strings:
                if (Array.IndexOf(strings, null) >= 0)
                    throw new ArgumentException("GGUF string arrays cannot hold null", parameter);
                return new GgufArray(GgufValueType.String, (string[])strings.Clone());
            case Array array:
                // Exact type comparison: the runtime lets an sbyte[] pass an `is byte[]` test (and uint[] as int[] …).
                Type arrayType = array.GetType();
                GgufValueType? type = null;
                for (var candidate = GgufValueType.UInt8; candidate <= GgufValueType.Float64; candidate++)
                {
                    if (candidate != GgufValueType.String && GgufValues.ClrArrayType(candidate) == arrayType)
                        type = candidate;
                }
                // Copied so a caller changing its array afterwards cannot change what is written.
                return type is { } t
                    ? new GgufArray(t, (Array)array.Clone())
                    : throw new ArgumentException($"a {array.GetType().Name} has no GGUF type (one-dimensional arrays of GGUF scalar types only)", parameter);
            default:
                return GgufValues.TypeOf(value) is not null
                    ? value
                    : throw new ArgumentException($"a {value.GetType().Name} has no GGUF type", parameter);
        }
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, object value)
    {
        switch (value)
        {
            case byte v: w.Write(v); break;
            case sbyte v: w.Write(v); break;
            case ushort v: w.Write(v); break;
            case short v: w.Write(v); break;
            case uint v: w.Write(v); break;
            case int v: w.Write(v); break;
            case float v: w.Write(v); break;
            case bool v: w.Write((byte)(v ? 1 : 0)); break;
            case string v: WriteString(w, v); break;
            case ulong v: w.Write(v); break;
            case long v: w.Write(v); break;
            case double v: w.Write(v); break;
            case GgufArray a: WriteArrayBody(w, a); break;
            default: throw new InvalidOperationException($"unexpected metadata value type {value.GetType()}");
        }
    }

    /// <summary>Element type, count, then the elements without tags (nested arrays carry their own type and count).</summary>
    private static void WriteArrayBody(BinaryWriter w, GgufArray array)
    {
        w.Write((uint)array.ElementType);
        w.Write((ulong)array.Count);
        switch (array.ElementType)
        {
            case GgufValueType.String:
                foreach (string s in (string[])array.Values)
                    WriteString(w, s);
                break;
            case GgufValueType.Array:
                foreach (GgufArray a in (GgufArray[])array.Values)
                    WriteArrayBody(w, a);
                break;
            case GgufValueType.Bool:
                foreach (bool b in (bool[])array.Values)
                    w.Write((byte)(b ? 1 : 0));
                break;
            default:
                // Every other element type is a fixed-size little-endian number: the array's memory is the encoding.
                w.Write(ArrayBytes(array.Values));
                break;
        }
    }

    /// <summary>The memory of an array of primitive numbers (GgufArray has checked it is one).</summary>
    private static ReadOnlySpan<byte> ArrayBytes(Array values) =>
        MemoryMarshal.CreateReadOnlySpan(ref MemoryMarshal.GetArrayDataReference(values), Buffer.ByteLength(values));

    private sealed record PendingTensor(string Name, GgmlType Type, long[] Dimensions, byte[] Data);
}
