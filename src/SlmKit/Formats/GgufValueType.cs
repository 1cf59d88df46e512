namespace SlmKit.Formats;

/// <summary>Metadata value types, numbered exactly as the GGUF specification numbers them.</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>
/// A GGUF metadata array. <see cref="Values"/> is a typed CLR array: <c>byte[]</c>, <c>sbyte[]</c>, <c>ushort[]</c>,
/// <c>short[]</c>, <c>uint[]</c>, <c>int[]</c>, <c>float[]</c>, <c>bool[]</c>, <c>string[]</c>, <c>ulong[]</c>,
/// <c>long[]</c>, <c>double[]</c>, or <c>GgufArray[]</c> for nested arrays.
/// </summary>
public sealed class GgufArray
{
    /// <summary>Wraps <paramref name="values"/>, whose CLR element type must match <paramref name="elementType"/>.</summary>
    public GgufArray(GgufValueType elementType, Array values)
    {
        ArgumentNullException.ThrowIfNull(values);
        Type expected = GgufValues.ClrArrayType(elementType)
            ?? throw new ArgumentException($"{elementType} is not a GGUF value type", nameof(elementType));
        if (values.GetType() != expected)
            throw new ArgumentException($"a GGUF {elementType} array must be a {expected.Name}, not a {values.GetType().Name}", nameof(values));
        ElementType = elementType;
        Values = values;
    }

    /// <summary>The GGUF type of every element.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>The elements, as a typed CLR array (see the class remarks).</summary>
    public Array Values { get; }

    /// <summary>Number of elements.</summary>
    public int Count => Values.Length;

    /// <summary>E.g. "array of 512 String".</summary>
    public override string ToString() => $"array of {Count} {ElementType}";
}

/// <summary>Mapping between GGUF value types and CLR types, shared by the reader and the writer.</summary>
internal static class GgufValues
{
    /// <summary>The CLR array type holding elements of <paramref name="type"/>, or null for an unknown number.</summary>
    public static Type? ClrArrayType(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => typeof(byte[]),
        GgufValueType.Int8 => typeof(sbyte[]),
        GgufValueType.UInt16 => typeof(ushort[]),
        GgufValueType.Int16 => typeof(short[]),
        GgufValueType.UInt32 => typeof(uint[]),
        GgufValueType.Int32 => typeof(int[]),
        GgufValueType.Float32 => typeof(float[]),
        GgufValueType.Bool => typeof(bool[]),
        GgufValueType.String => typeof(string[]),
        GgufValueType.Array => typeof(GgufArray[]),
        GgufValueType.UInt64 => typeof(ulong[]),
        GgufValueType.Int64 => typeof(long[]),
        GgufValueType.Float64 => typeof(double[]),
        _ => null,
    };

    /// <summary>The GGUF type a CLR scalar value is stored as, or null when GGUF has no such type.</summary>
    public static GgufValueType? TypeOf(object value) => value switch
    {
        byte => GgufValueType.UInt8,
        sbyte => GgufValueType.Int8,
        ushort => GgufValueType.UInt16,
        short => GgufValueType.Int16,
        uint => GgufValueType.UInt32,
        int => GgufValueType.Int32,
        float => GgufValueType.Float32,
        bool => GgufValueType.Bool,
        string => GgufValueType.String,
        GgufArray or Array => GgufValueType.Array,
        ulong => GgufValueType.UInt64,
        long => GgufValueType.Int64,
        double => GgufValueType.Float64,
        _ => null,
    };

    /// <summary>Size in bytes of a fixed-size scalar; 0 for strings and arrays.</summary>
    public static int FixedSize(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
        _ => 0,
    };

    /// <summary>Words for error messages: "uint32", "string", "array of float32" …</summary>
    public static string Describe(object value) => value switch
    {
        GgufArray a => "array of " + Describe(a.ElementType),
        _ => TypeOf(value) is { } t ? Describe(t) : value.GetType().Name,
    };

    public static string Describe(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => "uint8",
        GgufValueType.Int8 => "int8",
        GgufValueType.UInt16 => "uint16",
        GgufValueType.Int16 => "int16",
        GgufValueType.UInt32 => "uint32",
        GgufValueType.Int32 => "int32",
        GgufValueType.Float32 => "float32",
        GgufValueType.Bool => "bool",
        GgufValueType.String => "string",
        GgufValueType.Array => "array",
        GgufValueType.UInt64 => "uint64",
        GgufValueType.Int64 => "int64",
        GgufValueType.Float64 => "float64",
        _ => $"type {(uint)type}",
    };
}
