using System.Text.Json;
using SlmKit.Tensors;

namespace SlmKit.Formats;

/// <summary>A tensor to write to a safetensors file: row-major dimensions, little-endian bytes in <paramref name="Type"/>'s layout.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="Type">F32, F16 or BF16 (F64 and I8/I16/I32/I64 are accepted as well).</param>
/// <param name="Dimensions">Row-major dimensions, outermost first.</param>
/// <param name="Data">Exactly product(dimensions) × element size bytes.</param>
public readonly record struct SafeTensorEntry(string Name, GgmlType Type, long[] Dimensions, ReadOnlyMemory<byte> Data);

/// <summary>Writes safetensors files, single or sharded the way Hugging Face shards them.</summary>
public static class SafeTensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> in order to <paramref name="path"/> (through <paramref name="path"/>.tmp and a
    /// rename). The header is padded with spaces to a multiple of 8 bytes so the data section starts aligned.
    /// </summary>
    public static void Write(string path, IEnumerable<SafeTensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        SafeTensorEntry[] list = [.. tensors];
        byte[] header = Header(list, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (SafeTensorEntry t in list)
                stream.Write(t.Data.Span);
        });
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> into shards of at most <paramref name="maxShardBytes"/> of data each (a tensor
    /// larger than that gets a shard of its own), named <c>model-00001-of-0000N.safetensors</c>, plus
    /// <c>model.safetensors.index.json</c>. When everything fits one shard, Hugging Face's convention is followed: a
    /// single <c>model.safetensors</c> and no index. Returns the paths written.
    /// </summary>
    public static IReadOnlyList<string> WriteSharded(string folder, IEnumerable<SafeTensorEntry> tensors, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        SafeTensorEntry[] list = [.. tensors];
        var shards = new List<List<SafeTensorEntry>>();
        long current = 0;
        foreach (SafeTensorEntry t in list)
        {
            if (shards.Count == 0 || (current + t.Data.Length > maxShardBytes && current > 0))
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(t);
            current += t.Data.Length;
        }
        Directory.CreateDirectory(folder);
        if (shards.Count <= 1)
        {
            string single = Path.Combine(folder, SafeTensorsModel.SingleFileName);
            Write(single, list, metadata);
            return [single];
        }

        var written = new List<string>();
        var index = new List<(string Tensor, string Shard)>();
        long total = 0;
        for (int s = 0; s < shards.Count; s++)
        {
            string name = $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
            string shardPath = Path.Combine(folder, name);
            Write(shardPath, shards[s], metadata);
            written.Add(shardPath);
            foreach (SafeTensorEntry t in shards[s])
            {
                index.Add((t.Name, name));
                total += t.Data.Length;
            }
        }

        string indexPath = Path.Combine(folder, SafeTensorsModel.IndexFileName);
        AtomicFile.Write(indexPath, stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", total);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (tensor, shard) in index)
                json.WriteString(tensor, shard);
            json.WriteEndObject();
            json.WriteEndObject();
        });
        written.Add(indexPath);
        return written;
    }

    private static byte[] Header(SafeTensorEntry[] tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata)
                    json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (SafeTensorEntry t in tensors)
            {
                if (string.IsNullOrEmpty(t.Name) || t.Name == "__metadata__")
                    throw new ArgumentException($"'{t.Name}' cannot be a tensor name", nameof(tensors));
                if (!seen.Add(t.Name))
                    throw new ArgumentException($"tensor '{t.Name}' is given twice", nameof(tensors));
                string dtype = SafeTensorsFile.DTypeOf(t.Type)
                    ?? throw new ArgumentException($"tensor '{t.Name}': safetensors cannot store {t.Type}", nameof(tensors));
                GgmlTypeInfo.TryGetBlockLayout(t.Type, out _, out int elementSize);
                ArgumentNullException.ThrowIfNull(t.Dimensions);
                long count = 1;
                foreach (long d in t.Dimensions)
                {
                    if (d < 0)
                        throw new ArgumentException($"tensor '{t.Name}' has a negative dimension", nameof(tensors));
                    count = checked(count * d);
                }
                if (checked(count * elementSize) != t.Data.Length)
                    throw new ArgumentException($"tensor '{t.Name}' is {dtype} [{string.Join(", ", t.Dimensions)}], which takes {count * elementSize} bytes, but {t.Data.Length} were given", nameof(tensors));
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (long d in t.Dimensions)
                    json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.Data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.Data.Length;
            }
            json.WriteEndObject();
        }
        // Trailing spaces are valid JSON whitespace; they make the data section start 8-byte aligned.
        while (buffer.Length % 8 != 0)
            buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}
