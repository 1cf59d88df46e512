using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using SlmKit.Tensors;

namespace SlmKit.Formats;

/// <summary>
/// A GGUF file (versions 2 and 3, little-endian), memory-mapped: metadata is parsed into managed objects, tensors
/// stay in the mapping. Every count, length and offset the file states is checked against the file size before
/// anything is allocated, so a damaged or hostile file fails with a <see cref="ModelFileException"/>.
/// </summary>
public sealed unsafe class GgufFile : IWeightSource
{
    /// <summary>Alignment of the data section and of each tensor when <c>general.alignment</c> is absent.</summary>
    public const int DefaultAlignment = 32;

    /// <summary>The metadata key that overrides <see cref="DefaultAlignment"/>.</summary>
    public const string AlignmentKey = "general.alignment";

    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    internal const uint Magic = 0x46554747;

    /// <summary>Strings longer than this are refused: the longest real ones (chat templates) are tens of KiB.</summary>
    private const long MaxStringBytes = 64L << 20;

    /// <summary>Nested arrays deeper than this are refused, so a forged file cannot exhaust the stack.</summary>
    private const int MaxArrayNesting = 8;

    /// <summary>ggml's GGML_MAX_DIMS.</summary>
    private const int MaxDimensions = 4;

    private readonly MappedFile _file;
    private readonly Dictionary<string, object> _metadata;
    private readonly Dictionary<string, int> _tensorIndex;
    private readonly GgufTensorInfo[] _tensors;
    private readonly string[] _tensorNames;
    private bool _disposed;

    private GgufFile(MappedFile file, uint version, int alignment, Dictionary<string, object> metadata, string[] metadataKeys,
        GgufTensorInfo[] tensors, Dictionary<string, int> tensorIndex, long dataOffset)
    {
        _file = file;
        Version = version;
        Alignment = alignment;
        _metadata = metadata;
        MetadataKeys = metadataKeys;
        _tensors = tensors;
        _tensorIndex = tensorIndex;
        DataOffset = dataOffset;
        _tensorNames = new string[tensors.Length];
        for (int i = 0; i < tensors.Length; i++)
            _tensorNames[i] = tensors[i].Name;
    }

    /// <inheritdoc/>
    public string SourcePath => _file.Path;

    /// <summary>The GGUF version stated in the header: 2 or 3.</summary>
    public uint Version { get; }

    /// <summary>Alignment of the data section and of every tensor offset, in bytes.</summary>
    public int Alignment { get; }

    /// <summary>Absolute file offset where the data section starts.</summary>
    public long DataOffset { get; }

    /// <summary>Size of the file in bytes.</summary>
    public long FileLength => _file.Length;

    /// <summary>
    /// Metadata values: <c>byte</c>, <c>sbyte</c>, <c>ushort</c>, <c>short</c>, <c>uint</c>, <c>int</c>, <c>float</c>,
    /// <c>bool</c>, <c>string</c>, <c>ulong</c>, <c>long</c>, <c>double</c>, or <see cref="GgufArray"/>.
    /// </summary>
    public IReadOnlyDictionary<string, object> Metadata => _metadata;

    /// <summary>Metadata keys in file order.</summary>
    public IReadOnlyList<string> MetadataKeys { get; }

    /// <summary>The tensor table, in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors => _tensors;

    /// <inheritdoc/>
    public IReadOnlyList<string> TensorNames => _tensorNames;

    /// <summary>The model family, from <c>general.architecture</c> (e.g. "llama"), or null.</summary>
    public string? Architecture => GetString("general.architecture");

    /// <summary>
    /// Opens and validates <paramref name="path"/>: memory-mapped, or with <paramref name="memoryMap"/> false read into
    /// memory offered huge pages (<see cref="MappedFile.Load"/>), which decodes faster.
    /// </summary>
    /// <exception cref="ModelFileException">The file is missing, not GGUF, an unsupported version, or damaged.</exception>
    public static GgufFile Open(string path, bool memoryMap = true)
    {
        MappedFile file = memoryMap ? MappedFile.Open(path) : MappedFile.Load(path);
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
        if (!_tensorIndex.TryGetValue(name, out int index))
            return null;
        GgufTensorInfo info = _tensors[index];
        long[] dims = new long[info.Dimensions.Count];
        for (int i = 0; i < dims.Length; i++)
            dims[i] = info.Dimensions[i];
        return new WeightTensor(info.Name, info.Type, dims, _file.Pointer + info.Offset, info.ByteLength);
    }

    /// <summary>The tensor table entry called <paramref name="name"/>, or null.</summary>
    public GgufTensorInfo? FindInfo(string name) => _tensorIndex.TryGetValue(name, out int i) ? _tensors[i] : null;

    /// <summary>The string at <paramref name="key"/>; null when absent.</summary>
    /// <exception cref="ModelFileException">The key holds something other than a string.</exception>
    public string? GetString(string key) => Get(key) switch
    {
        null => null,
        string s => s,
        object other => throw WrongType(key, "a string", other),
    };

    /// <summary>The integer at <paramref name="key"/>, whatever its stored width; null when absent.</summary>
    /// <exception cref="ModelFileException">The key holds a non-integer, or a uint64 above <see cref="long.MaxValue"/>.</exception>
    public long? GetInteger(string key)
    {
        object? value = Get(key);
        if (value is null)
            return null;
        if (TryAsInteger(value, out long result))
            return result;
        if (value is ulong)
            throw new ModelFileException(SourcePath, $"metadata '{key}' = {value} does not fit a signed 64-bit integer");
        throw WrongType(key, "an integer", value);
    }

    /// <summary>The number at <paramref name="key"/> (any integer or float type); null when absent.</summary>
    /// <exception cref="ModelFileException">The key holds a string, bool or array.</exception>
    public double? GetNumber(string key)
    {
        object? value = Get(key);
        return value switch
        {
            null => null,
            float f => f,
            double d => d,
            ulong u => u,
            _ when TryAsInteger(value, out long l) => l,
            _ => throw WrongType(key, "a number", value),
        };
    }

    /// <summary>The bool at <paramref name="key"/>; null when absent.</summary>
    /// <exception cref="ModelFileException">The key holds something other than a bool.</exception>
    public bool? GetBool(string key) => Get(key) switch
    {
        null => null,
        bool b => b,
        object other => throw WrongType(key, "a bool", other),
    };

    /// <summary>A copy of the string array at <paramref name="key"/>; null when absent.</summary>
    /// <exception cref="ModelFileException">The key holds something other than an array of strings.</exception>
    public string[]? GetStringArray(string key) => Get(key) switch
    {
        null => null,
        GgufArray { ElementType: GgufValueType.String } a => (string[])a.Values.Clone(),
        object other => throw WrongType(key, "an array of strings", other),
    };

    /// <summary>The float32 (or float64, narrowed) array at <paramref name="key"/> as a new array; null when absent.</summary>
    /// <exception cref="ModelFileException">The key holds something other than an array of floats.</exception>
    public float[]? GetFloatArray(string key)
    {
        switch (Get(key))
        {
            case null:
                return null;
            case GgufArray { ElementType: GgufValueType.Float32 } a:
                return (float[])a.Values.Clone();
            case GgufArray { ElementType: GgufValueType.Float64 } a:
                var d = (double[])a.Values;
                var narrowed = new float[d.Length];
                for (int i = 0; i < d.Length; i++)
                    narrowed[i] = (float)d[i];
                return narrowed;
            case object other:
                throw WrongType(key, "an array of float32", other);
        }
    }

    /// <summary>The integer array at <paramref name="key"/> (any integer element type) as int32; null when absent.</summary>
    /// <exception cref="ModelFileException">The key holds something else, or an element does not fit an int32.</exception>
    public int[]? GetInt32Array(string key)
    {
        object? value = Get(key);
        if (value is null)
            return null;
        if (value is not GgufArray array || !IsInteger(array.ElementType))
            throw WrongType(key, "an array of integers", value);
        // Compare element types, not `is int[]`: the runtime lets a uint[] pass as an int[].
        if (array.ElementType == GgufValueType.Int32)
            return (int[])array.Values.Clone();
        var result = new int[array.Count];
        for (int i = 0; i < result.Length; i++)
        {
            object element = array.Values.GetValue(i)!;
            if (!TryAsInteger(element, out long l) || l < int.MinValue || l > int.MaxValue)
                throw new ModelFileException(SourcePath, $"metadata '{key}'[{i}] = {element} does not fit a 32-bit integer");
            result[i] = (int)l;
        }
        return result;
    }

    /// <summary>Unmaps the file; tensors handed out by <see cref="Find"/> become invalid.</summary>
    public void Dispose()
    {
        _disposed = true;
        _file.Dispose();
    }

    private object? Get(string key) => _metadata.TryGetValue(key, out object? value) ? value : null;

    private ModelFileException WrongType(string key, string expected, object actual) =>
        new(SourcePath, $"metadata '{key}' is {GgufValues.Describe(actual)}, expected {expected}");

    private static bool IsInteger(GgufValueType t) => t is GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.UInt16
        or GgufValueType.Int16 or GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.UInt64 or GgufValueType.Int64;

    /// <summary>A metadata value of any integer width as a long; false for other kinds and uint64s above long.MaxValue.</summary>
    internal static bool TryAsInteger(object value, out long result)
    {
        switch (value)
        {
            case byte v: result = v; return true;
            case sbyte v: result = v; return true;
            case ushort v: result = v; return true;
            case short v: result = v; return true;
            case uint v: result = v; return true;
            case int v: result = v; return true;
            case long v: result = v; return true;
            case ulong v when v <= long.MaxValue: result = (long)v; return true;
            default: result = 0; return false;
        }
    }

    private static GgufFile Parse(MappedFile file)
    {
        var r = new Reader(file);
        string path = file.Path;
        if (file.Length < 4 || r.U32() != Magic)
            throw new ModelFileException(path, "not a GGUF file (the first 4 bytes are not \"GGUF\")");
        uint version = r.U32();
        if (version == 1)
            throw new ModelFileException(path, "GGUF version 1 is not supported (it predates 64-bit counts); re-convert the model with a current llama.cpp");
        if ((version & 0xFFFF) == 0 && version != 0)
            throw new ModelFileException(path, $"big-endian GGUF (version field reads 0x{version:x8}) is not supported");
        if (version is not (2 or 3))
            throw new ModelFileException(path, $"GGUF version {version} is not supported (expected 2 or 3)");

        ulong tensorCount = r.U64("tensor count");
        ulong kvCount = r.U64("metadata count");
        // The smallest key/value is an empty key (8), a type (4) and a 1-byte value; the smallest tensor info is an
        // empty name (8), n_dims (4), type (4) and offset (8). Bounding the counts by the bytes left rejects a forged
        // count before anything is sized by it.
        if (kvCount > (ulong)r.Remaining / 13)
            throw new ModelFileException(path, $"metadata count {kvCount} is impossible: only {r.Remaining} bytes follow the header");
        if (tensorCount > (ulong)r.Remaining / 24)
            throw new ModelFileException(path, $"tensor count {tensorCount} is impossible: only {r.Remaining} bytes follow the header");

        // Collections grow as entries are actually read: in a multi-GiB file a forged count can pass the bound above,
        // and sizing by it up front would allocate gigabytes before the first garbage entry fails.
        var metadata = new Dictionary<string, object>((int)Math.Min(kvCount, 1024), StringComparer.Ordinal);
        var keys = new List<string>((int)Math.Min(kvCount, 1024));
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = r.String("metadata key");
            string shown = MessageText.Clean(key);
            uint rawType = r.U32();
            if (rawType > (uint)GgufValueType.Float64)
                throw new ModelFileException(path, $"metadata '{shown}' has unknown value type {rawType}");
            object value = r.Value((GgufValueType)rawType, shown, 0);
            if (!metadata.TryAdd(key, value))
                throw new ModelFileException(path, $"metadata key '{shown}' appears twice");
            keys.Add(key);
        }

        int alignment = DefaultAlignment;
        if (metadata.TryGetValue(AlignmentKey, out object? alignValue))
        {
            if (alignValue is not uint a)
                throw new ModelFileException(path, $"metadata '{AlignmentKey}' is {GgufValues.Describe(alignValue)}, expected uint32");
            if (a == 0 || (a & (a - 1)) != 0 || a > 1u << 30)
                throw new ModelFileException(path, $"metadata '{AlignmentKey}' = {a} is not a power of two");
            alignment = (int)a;
        }

        var tensorList = new List<GgufTensorInfo>((int)Math.Min(tensorCount, 1024));
        var relativeOffsets = new List<long>((int)Math.Min(tensorCount, 1024));
        var index = new Dictionary<string, int>((int)Math.Min(tensorCount, 1024), StringComparer.Ordinal);
        Span<long> ne = stackalloc long[MaxDimensions];
        for (int i = 0; (ulong)i < tensorCount; i++)
        {
            string name = r.String("tensor name");
            string shown = MessageText.Clean(name);
            uint nDims = r.U32();
            if (nDims > MaxDimensions)
                throw new ModelFileException(path, $"tensor '{shown}' has {nDims} dimensions (at most {MaxDimensions} are allowed)");
            long elementCount = 1;
            for (int d = 0; d < nDims; d++)
            {
                ulong n = r.U64("dimension");
                if (n > long.MaxValue)
                    throw new ModelFileException(path, $"tensor '{shown}' dimension {d} ({n}) is too large");
                ne[d] = (long)n;
                if (ne[d] != 0 && elementCount > long.MaxValue / ne[d])
                    throw new ModelFileException(path, $"tensor '{shown}' element count overflows 64 bits");
                elementCount *= ne[d];
            }
            uint rawType = r.U32();
            var type = (GgmlType)rawType;
            if (!GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out _))
                throw new ModelFileException(path, $"tensor '{shown}' has unknown type {rawType}");
            long rowLength = nDims == 0 ? 1 : ne[0];
            if (rowLength % blockSize != 0)
                throw new ModelFileException(path, $"tensor '{shown}' row length {rowLength} is not a whole number of {blockSize}-element {type} blocks");
            long byteLength = GgmlTypeInfo.TryGetByteSize(type, elementCount, rowLength == 0 ? blockSize : rowLength)
                ?? throw new ModelFileException(path, $"tensor '{shown}' byte size overflows 64 bits");
            ulong offset = r.U64("tensor offset");
            if (offset % (ulong)alignment != 0)
                throw new ModelFileException(path, $"tensor '{shown}' offset {offset} is not a multiple of the alignment ({alignment})");
            if (offset > (ulong)file.Length)
                throw new ModelFileException(path, $"tensor '{shown}' offset {offset} is past the end of the file ({file.Length} bytes)");
            var dims = new long[nDims];
            for (int d = 0; d < dims.Length; d++)
                dims[d] = ne[dims.Length - 1 - d];
            if (!index.TryAdd(name, i))
                throw new ModelFileException(path, $"tensor name '{shown}' appears twice");
            relativeOffsets.Add((long)offset);
            tensorList.Add(new GgufTensorInfo(name, type, dims, elementCount, 0, byteLength));
        }

        GgufTensorInfo[] tensors = [.. tensorList];
        long dataOffset = AlignUp(r.Position, alignment);
        for (int i = 0; i < tensors.Length; i++)
        {
            GgufTensorInfo t = tensors[i];
            long start = dataOffset + relativeOffsets[i]; // both are at most the file length: no overflow
            if (start > file.Length || t.ByteLength > file.Length - start)
                throw new ModelFileException(path, $"tensor '{MessageText.Clean(t.Name)}' data (offset {start}, {t.ByteLength} bytes) runs past the end of the file ({file.Length} bytes)");
            tensors[i] = new GgufTensorInfo(t.Name, t.Type, (long[])t.Dimensions, t.ElementCount, start, t.ByteLength);
        }

        // A tensor's size follows from its type and shape; one that would run into the next tensor's bytes means the
        // file's type, shape or offsets are wrong (llama.cpp refuses such files too).
        var byOffset = (GgufTensorInfo[])tensors.Clone();
        Array.Sort(byOffset, (a, b) => a.Offset.CompareTo(b.Offset));
        for (int i = 0; i + 1 < byOffset.Length; i++)
        {
            GgufTensorInfo t = byOffset[i], next = byOffset[i + 1];
            if (t.ByteLength > next.Offset - t.Offset)
                throw new ModelFileException(path, $"tensor '{MessageText.Clean(t.Name)}' is {t.Type} [{string.Join(", ", t.Dimensions)}], which takes {t.ByteLength} bytes, but the next tensor '{MessageText.Clean(next.Name)}' starts {next.Offset - t.Offset} bytes after it: the type or shape disagrees with the data");
        }

        return new GgufFile(file, version, alignment, metadata, [.. keys], tensors, index, dataOffset);
    }

    internal static long AlignUp(long value, long alignment) => (value + alignment - 1) / alignment * alignment;

    /// <summary>A bounds-checked little-endian cursor over the mapping.</summary>
    private struct Reader(MappedFile file)
    {
        private readonly byte* _base = file.Pointer;
        private readonly long _length = file.Length;
        private readonly string _path = file.Path;
        private long _position;

        public readonly long Position => _position;

        public readonly long Remaining => _length - _position;

        private byte* Take(long count, string what)
        {
            if (count > Remaining)
                throw new ModelFileException(_path, $"{what} at offset {_position} ({count} bytes) runs past the end of the file ({_length} bytes)");
            byte* p = _base + _position;
            _position += count;
            return p;
        }

        public uint U32(string what = "value") => BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(Take(4, what), 4));

        public ulong U64(string what = "value") => BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(Take(8, what), 8));

        /// <summary>A length-prefixed UTF-8 string; <paramref name="index"/> (when not -1) names an array element in messages.</summary>
        public string String(string what, int index = -1)
        {
            long start = _position;
            if (Remaining < 8)
                throw new ModelFileException(_path, $"{Name(what, index)} length at offset {start} runs past the end of the file ({_length} bytes)");
            ulong length = U64();
            if (length > (ulong)Remaining)
                throw new ModelFileException(_path, $"{Name(what, index)} at offset {start} claims {length} bytes, but only {Remaining} remain in the file");
            if (length > MaxStringBytes)
                throw new ModelFileException(_path, $"{Name(what, index)} at offset {start} is {length} bytes long (more than {MaxStringBytes} is refused)");
            byte* p = Take((long)length, what);
            return Encoding.UTF8.GetString(p, (int)length);
        }

        private static string Name(string what, int index) => index < 0 ? what : $"{what}[{index}]";

        public object Value(GgufValueType type, string key, int depth)
        {
            switch (type)
            {
                case GgufValueType.UInt8: return *Take(1, key);
                case GgufValueType.Int8: return (sbyte)*Take(1, key);
                case GgufValueType.Bool: return *Take(1, key) != 0;
                case GgufValueType.UInt16: return BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(Take(2, key), 2));
                case GgufValueType.Int16: return BinaryPrimitives.ReadInt16LittleEndian(new ReadOnlySpan<byte>(Take(2, key), 2));
                case GgufValueType.UInt32: return U32(key);
                case GgufValueType.Int32: return (int)U32(key);
                case GgufValueType.Float32: return BitConverter.UInt32BitsToSingle(U32(key));
                case GgufValueType.UInt64: return U64(key);
                case GgufValueType.Int64: return (long)U64(key);
                case GgufValueType.Float64: return BitConverter.UInt64BitsToDouble(U64(key));
                case GgufValueType.String: return String($"metadata '{key}'");
                case GgufValueType.Array: return Array(key, depth);
                default: throw new ModelFileException(_path, $"metadata '{key}' has unknown value type {(uint)type}");
            }
        }

        private GgufArray Array(string key, int depth)
        {
            if (depth >= MaxArrayNesting)
                throw new ModelFileException(_path, $"metadata '{key}' nests arrays more than {MaxArrayNesting} deep");
            uint rawType = U32(key);
            if (rawType > (uint)GgufValueType.Float64)
                throw new ModelFileException(_path, $"metadata '{key}' is an array of unknown value type {rawType}");
            var elementType = (GgufValueType)rawType;
            ulong count = U64(key);
            int fixedSize = GgufValues.FixedSize(elementType);
            // Strings need at least their 8-byte length, nested arrays their 12-byte type and count.
            int minSize = fixedSize != 0 ? fixedSize : elementType == GgufValueType.String ? 8 : 12;
            if (count > (ulong)Remaining / (ulong)minSize || count > (ulong)System.Array.MaxLength)
                throw new ModelFileException(_path, $"metadata '{key}' array of {count} {GgufValues.Describe(elementType)} elements does not fit in the {Remaining} bytes left in the file");
            if (fixedSize != 0 && count * (ulong)fixedSize > int.MaxValue)
                throw new ModelFileException(_path, $"metadata '{key}' array of {count} elements is larger than 2 GiB");
            int n = (int)count;
            switch (elementType)
            {
                case GgufValueType.UInt8: return new GgufArray(elementType, Fixed<byte>(n, key));
                case GgufValueType.Int8: return new GgufArray(elementType, Fixed<sbyte>(n, key));
                case GgufValueType.UInt16: return new GgufArray(elementType, Fixed<ushort>(n, key));
                case GgufValueType.Int16: return new GgufArray(elementType, Fixed<short>(n, key));
                case GgufValueType.UInt32: return new GgufArray(elementType, Fixed<uint>(n, key));
                case GgufValueType.Int32: return new GgufArray(elementType, Fixed<int>(n, key));
                case GgufValueType.Float32: return new GgufArray(elementType, Fixed<float>(n, key));
                case GgufValueType.UInt64: return new GgufArray(elementType, Fixed<ulong>(n, key));
                case GgufValueType.Int64: return new GgufArray(elementType, Fixed<long>(n, key));
                case GgufValueType.Float64: return new GgufArray(elementType, Fixed<double>(n, key));
                case GgufValueType.Bool:
                {
                    byte* p = Take(n, key);
                    var bools = new bool[n];
                    for (int i = 0; i < n; i++)
                        bools[i] = p[i] != 0;
                    return new GgufArray(elementType, bools);
                }
                case GgufValueType.String:
                {
                    // Grown as read, not sized by the count: see Parse.
                    var strings = new List<string>(Math.Min(n, 4096));
                    string what = $"metadata '{key}'";
                    for (int i = 0; i < n; i++)
                        strings.Add(String(what, i));
                    return new GgufArray(elementType, strings.ToArray());
                }
                default:
                {
                    var arrays = new List<GgufArray>(Math.Min(n, 4096));
                    // Each element is a whole array value (its own element type and count), with no extra tag.
                    for (int i = 0; i < n; i++)
                        arrays.Add(Array(key, depth + 1));
                    return new GgufArray(elementType, arrays.ToArray());
                }
            }
        }

        private T[] Fixed<T>(int count, string key) where T : unmanaged
        {
            byte* p = Take((long)count * sizeof(T), $"metadata '{key}'");
            var result = new T[count];
            // GGUF is little-endian like every platform .NET runs this library on, so the bytes copy as they are.
            new ReadOnlySpan<byte>(p, count * sizeof(T)).CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
            return result;
        }
    }
}
