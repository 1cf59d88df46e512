using System.Text;
using SlmKit.Tokenizers;

namespace SlmKit.Tests.Tokenizers;

/// <summary>
/// TEST-ONLY minimal GGUF metadata reader (v2/v3 header and key-value section, no tensors), so the tokenizer can be
/// tested before <c>SlmKit.Formats.GgufFile</c> lands. It trusts the file; the product reader must not.
/// </summary>
internal sealed class TestGgufMetadataReader : ITokenizerMetadata
{
    private readonly Dictionary<string, object> _values = new(StringComparer.Ordinal);

    private TestGgufMetadataReader()
    {
    }

    public static TestGgufMetadataReader Open(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
        if (reader.ReadUInt32() != 0x46554747)
            throw new InvalidDataException($"{path}: not a GGUF file");
        uint version = reader.ReadUInt32();
        if (version < 2)
            throw new InvalidDataException($"{path}: GGUF v{version} is not supported by this test reader");
        reader.ReadUInt64(); // tensor count
        ulong count = reader.ReadUInt64();
        var result = new TestGgufMetadataReader();
        for (ulong i = 0; i < count; i++)
        {
            string key = ReadString(reader);
            result._values[key] = ReadValue(reader, reader.ReadUInt32());
        }
        return result;
    }

    public string? GetString(string key) => _values.GetValueOrDefault(key) as string;

    public long? GetInteger(string key) => _values.GetValueOrDefault(key) switch
    {
        byte v => v, sbyte v => v, ushort v => v, short v => v, uint v => v, int v => v, ulong v => (long)v, long v => v,
        _ => null,
    };

    public bool? GetBool(string key) => _values.GetValueOrDefault(key) as bool?;

    public string[]? GetStringArray(string key) => _values.GetValueOrDefault(key) is object[] a && a.All(x => x is string)
        ? a.Cast<string>().ToArray()
        : null;

    public float[]? GetFloatArray(string key) => _values.GetValueOrDefault(key) is object[] a && a.All(x => x is float)
        ? a.Cast<float>().ToArray()
        : null;

    public int[]? GetInt32Array(string key) => _values.GetValueOrDefault(key) is object[] a && a.All(x => x is int)
        ? a.Cast<int>().ToArray()
        : null;

    private static string ReadString(BinaryReader r) => Encoding.UTF8.GetString(r.ReadBytes(checked((int)r.ReadUInt64())));

    private static object ReadValue(BinaryReader r, uint type) => type switch
    {
        0 => r.ReadByte(),
        1 => r.ReadSByte(),
        2 => r.ReadUInt16(),
        3 => r.ReadInt16(),
        4 => r.ReadUInt32(),
        5 => r.ReadInt32(),
        6 => r.ReadSingle(),
        7 => r.ReadByte() != 0,
        8 => ReadString(r),
        9 => ReadArray(r),
        10 => r.ReadUInt64(),
        11 => r.ReadInt64(),
        12 => r.ReadDouble(),
        _ => throw new InvalidDataException($"unknown GGUF value type {type}"),
    };

    private static object[] ReadArray(BinaryReader r)
    {
        uint type = r.ReadUInt32();
        var items = new object[checked((int)r.ReadUInt64())];
        for (int i = 0; i < items.Length; i++)
            items[i] = ReadValue(r, type);
        return items;
    }
}
