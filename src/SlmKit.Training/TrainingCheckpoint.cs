using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using SlmKit.Formats;

namespace SlmKit.Training;

/// <summary>
/// Everything needed to continue a run bit-exactly: the step, how many batches the data stream has given, every
/// parameter and every optimizer buffer. Layout: "SLMCKPT1", a length-prefixed JSON header (names, shapes,
/// counters), the float32 arrays in header order, an FNV-1a checksum of those bytes, and "SLMCKEND". Written to a
/// temporary file and renamed; a truncated or altered file is refused before anything is loaded.
/// </summary>
public static class TrainingCheckpoint
{
    private static readonly byte[] s_magic = "SLMCKPT1"u8.ToArray();
    private static readonly byte[] s_trailer = "SLMCKEND"u8.ToArray();

    /// <summary>Counters stored beside the arrays.</summary>
    public sealed record State(int Step, long BatchesConsumed, double ElapsedSeconds, long TokensSeen);

    public static void Save(string path, State state, IReadOnlyList<Parameter<float>> parameters, IReadOnlyList<float[]> optimizerBuffers)
    {
        using var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            w.WriteNumber("step", state.Step);
            w.WriteNumber("batches_consumed", state.BatchesConsumed);
            w.WriteNumber("elapsed_seconds", state.ElapsedSeconds);
            w.WriteNumber("tokens_seen", state.TokensSeen);
            w.WriteStartArray("parameters");
            foreach (var p in parameters)
            {
                w.WriteStartObject();
                w.WriteString("name", p.Name);
                w.WriteNumber("length", p.Value.Length);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("optimizer_buffers");
            foreach (float[] b in optimizerBuffers)
                w.WriteNumberValue(b.Length);
            w.WriteEndArray();
            w.WriteEndObject();
        }

        AtomicFile.Write(path, stream =>
        {
            stream.Write(s_magic);
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(length, (int)header.Length);
            stream.Write(length);
            stream.Write(header.GetBuffer().AsSpan(0, (int)header.Length));
            ulong hash = FnvOffset;
            foreach (var p in parameters)
                hash = WriteArray(stream, p.Value, hash);
            foreach (float[] b in optimizerBuffers)
                hash = WriteArray(stream, b, hash);
            Span<byte> checksum = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(checksum, hash);
            stream.Write(checksum);
            stream.Write(s_trailer);
        });
    }

    /// <summary>Checks the file against the model and fills the parameters and optimizer buffers in place.</summary>
    public static State Load(string path, IReadOnlyList<Parameter<float>> parameters, IReadOnlyList<float[]> optimizerBuffers)
    {
        if (!File.Exists(path))
            throw new ModelFileException(path, "no checkpoint to resume from");
        byte[] bytes = File.ReadAllBytes(path);
        ModelFileException Corrupt(string why) => new(path, $"corrupt checkpoint: {why}");
        if (bytes.Length < s_magic.Length + 4 + 8 + s_trailer.Length || !bytes.AsSpan(0, 8).SequenceEqual(s_magic))
            throw Corrupt("not an SlmKit training checkpoint");
        if (!bytes.AsSpan(bytes.Length - 8).SequenceEqual(s_trailer))
            throw Corrupt("the file is truncated (end marker missing)");
        int headerLength = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8));
        if (headerLength <= 0 || headerLength > bytes.Length - 12)
            throw Corrupt($"header length {headerLength} is out of range");

        State state;
        try
        {
            using var json = JsonDocument.Parse(bytes.AsMemory(12, headerLength));
            var root = json.RootElement;
            state = new State(root.GetProperty("step").GetInt32(), root.GetProperty("batches_consumed").GetInt64(),
                root.GetProperty("elapsed_seconds").GetDouble(), root.GetProperty("tokens_seen").GetInt64());
            var stored = root.GetProperty("parameters");
            if (stored.GetArrayLength() != parameters.Count)
                throw new ModelFileException(path, $"checkpoint holds {stored.GetArrayLength()} parameters, the model has {parameters.Count}: was it written by a different configuration?");
            int i = 0;
            foreach (var entry in stored.EnumerateArray())
            {
                string name = entry.GetProperty("name").GetString() ?? "";
                int length = entry.GetProperty("length").GetInt32();
                if (name != parameters[i].Name || length != parameters[i].Value.Length)
                    throw new ModelFileException(path, $"checkpoint parameter '{name}' ({length} values) does not match the model's '{parameters[i].Name}' ({parameters[i].Value.Length}): different configuration");
                i++;
            }
            var buffers = root.GetProperty("optimizer_buffers");
            if (buffers.GetArrayLength() != optimizerBuffers.Count)
                throw new ModelFileException(path, "checkpoint was written with a different optimizer");
            i = 0;
            foreach (var b in buffers.EnumerateArray())
            {
                if (b.GetInt32() != optimizerBuffers[i++].Length)
                    throw new ModelFileException(path, "checkpoint optimizer state does not match the model");
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw Corrupt($"unreadable header ({e.Message})");
        }

        long expected = 12L + headerLength + 4L * (parameters.Sum(p => (long)p.Value.Length) + optimizerBuffers.Sum(b => (long)b.Length)) + 8 + 8;
        if (bytes.Length != expected)
            throw Corrupt($"size {bytes.Length} bytes, expected {expected}");
        int offset = 12 + headerLength;
        ulong hash = FnvOffset;
        foreach (var p in parameters)
            hash = ReadArray(bytes, ref offset, p.Value, hash);
        foreach (float[] b in optimizerBuffers)
            hash = ReadArray(bytes, ref offset, b, hash);
        if (BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(offset)) != hash)
            throw Corrupt("checksum mismatch (the file was altered or damaged)");
        return state;
    }

    private const ulong FnvOffset = 14695981039346656037UL;
    private const ulong FnvPrime = 1099511628211UL;

    private static ulong Hash(ReadOnlySpan<byte> bytes, ulong hash)
    {
        foreach (byte b in bytes)
            hash = (hash ^ b) * FnvPrime;
        return hash;
    }

    private static ulong WriteArray(Stream stream, float[] values, ulong hash)
    {
        var bytes = MemoryMarshal.AsBytes(values.AsSpan());
        stream.Write(bytes);
        return Hash(bytes, hash);
    }

    private static ulong ReadArray(byte[] source, ref int offset, float[] destination, ulong hash)
    {
        var bytes = source.AsSpan(offset, destination.Length * 4);
        bytes.CopyTo(MemoryMarshal.AsBytes(destination.AsSpan()));
        offset += bytes.Length;
        return Hash(bytes, hash);
    }
}
