using System.Text;
using SlmKit.Formats;
using SlmKit.Tensors;

namespace SlmKit.Tests.Formats;

/// <summary>
/// Damaged files must either open (and every tensor they hand out must lie inside the file) or fail with a
/// <see cref="ModelFileException"/> whose message starts with the path; no other exception may escape.
/// </summary>
public sealed class MalformedInputTests
{
    private static readonly Func<string, object?> s_openGguf = path =>
    {
        using GgufFile f = GgufFile.Open(path);
        TouchEveryTensor(f, f.FileLength);
        return null;
    };

    private static readonly Func<string, object?> s_openLlama2C = path =>
    {
        using Llama2CCheckpoint c = Llama2CCheckpoint.Open(path);
        TouchEveryTensor(c, new FileInfo(path).Length);
        return null;
    };

    private static readonly Func<string, object?> s_openSafeTensors = path =>
    {
        using SafeTensorsFile f = SafeTensorsFile.Open(path);
        TouchEveryTensor(f, new FileInfo(path).Length);
        return null;
    };

    private static readonly Func<string, object?> s_openTokenizer = path => Llama2CTokenizerFile.Read(path, 512);

    [Fact]
    public void Truncated_gguf() => Truncations(SharedAssets.Require("assets/llama2c/stories260K/stories260K.gguf"), s_openGguf);

    [Fact]
    public void Truncated_vocab_gguf() => Truncations(SharedAssets.Require("assets/llamacpp/vocab/ggml-vocab-llama-spm.gguf"), s_openGguf, stride: 4096);

    [Fact]
    public void Truncated_llama2c_checkpoints()
    {
        Truncations(SharedAssets.Require("assets/llama2c/stories260K/stories260K.bin"), s_openLlama2C);
        Truncations(SharedAssets.Require("assets/llama2c/stories260K/stories260K_v1.bin"), s_openLlama2C);
    }

    [Fact]
    public void Truncated_tokenizer() => Truncations(SharedAssets.Require("assets/llama2c/stories260K/tok512.bin"), s_openTokenizer, stride: 7);

    [Fact]
    public void Truncated_safetensors()
    {
        using var dir = new TempDirectory();
        string path = dir.File("model.safetensors");
        SafeTensorsWriter.Write(path, SafeTensorsTests.SampleTensors(), new Dictionary<string, string> { ["format"] = "pt" });
        Truncations(path, s_openSafeTensors, stride: 3);
    }

    [Fact]
    public void Flipped_bytes_in_gguf()
    {
        string path = SharedAssets.Require("assets/llama2c/stories260K/stories260K.gguf");
        long header;
        using (GgufFile f = GgufFile.Open(path))
            header = f.DataOffset;
        Flips(path, s_openGguf, header, trials: 1500, seed: 11);
    }

    [Fact]
    public void Flipped_bytes_in_llama2c_checkpoints()
    {
        Flips(SharedAssets.Require("assets/llama2c/stories260K/stories260K.bin"), s_openLlama2C, 28, trials: 600, seed: 12);
        Flips(SharedAssets.Require("assets/llama2c/stories260K/stories260K_v1.bin"), s_openLlama2C, 40, trials: 600, seed: 13);
    }

    [Fact]
    public void Flipped_bytes_in_tokenizer() =>
        Flips(SharedAssets.Require("assets/llama2c/stories260K/tok512.bin"), s_openTokenizer, 6227, trials: 1500, seed: 14);

    [Fact]
    public void Flipped_bytes_in_safetensors()
    {
        using var dir = new TempDirectory();
        string path = dir.File("model.safetensors");
        SafeTensorsWriter.Write(path, SafeTensorsTests.SampleTensors(), new Dictionary<string, string> { ["format"] = "pt" });
        using (SafeTensorsFile f = SafeTensorsFile.Open(path))
            Flips(path, s_openSafeTensors, f.DataOffset, trials: 2000, seed: 15);
    }

    [Fact]
    public void Forged_counts_fail_fast_without_allocating()
    {
        using var dir = new TempDirectory();
        string path = dir.File("forged.gguf");
        var cases = new (string Name, byte[] Bytes, string Problem)[]
        {
            ("array of 2^62 uint32", Gguf(0, 1, [.. Key("a"), .. U32(9), .. U32(4), .. U64(1UL << 62)]), "array of 4611686018427387904 uint32 elements does not fit"),
            ("array of 2^62 strings", Gguf(0, 1, [.. Key("a"), .. U32(9), .. U32(8), .. U64(1UL << 62)]), "array of 4611686018427387904 string elements"),
            ("array of 2^62 arrays", Gguf(0, 1, [.. Key("a"), .. U32(9), .. U32(9), .. U64(1UL << 62)]), "array of 4611686018427387904 array elements"),
            ("string of 2^62 bytes", Gguf(0, 1, [.. Key("a"), .. U32(8), .. U64(1UL << 62)]), "claims 4611686018427387904 bytes"),
            ("2^60 tensors", Gguf(1UL << 60, 0), "tensor count 1152921504606846976 is impossible"),
            ("2^60 metadata", Gguf(0, 1UL << 60), "metadata count 1152921504606846976 is impossible"),
            ("deep nesting", Gguf(0, 1, [.. Key("a"), .. U32(9), .. Enumerable.Range(0, 20).SelectMany(_ => U32(9).Concat(U64(1))), .. U32(4), .. U64(0)]), "nests arrays"),
            ("version 1", [.. "GGUF"u8, .. U32(1), .. U32(0), .. U32(0)], "GGUF version 1 is not supported"),
            ("big-endian", [.. "GGUF"u8, 0, 0, 0, 3, .. new byte[16]], "big-endian GGUF"),
            ("not gguf", [.. "GGML"u8, .. new byte[20]], "not a GGUF file"),
            ("duplicate key", Gguf(0, 2, [.. Key("a"), .. U32(4), .. U32(1), .. Key("a"), .. U32(4), .. U32(2)]), "metadata key 'a' appears twice"),
            ("bad alignment", Gguf(0, 1, [.. Key("general.alignment"), .. U32(4), .. U32(48)]), "is not a power of two"),
            ("alignment type", Gguf(0, 1, [.. Key("general.alignment"), .. U32(5), .. U32(64)]), "'general.alignment' is int32, expected uint32"),
            ("unknown value type", Gguf(0, 1, [.. Key("a"), .. U32(13), .. U32(0)]), "unknown value type 13"),
            ("tensor past end", Gguf(1, 0, [.. Key("w"), .. U32(1), .. U64(1000), .. U32(0), .. U64(0)]), "tensor 'w' data (offset 64, 4000 bytes) runs past the end of the file"),
            ("unknown tensor type", Gguf(1, 0, [.. Key("w"), .. U32(1), .. U64(1), .. U32(5), .. U64(0)]), "tensor 'w' has unknown type 5"),
            ("partial block", Gguf(1, 0, [.. Key("w"), .. U32(1), .. U64(33), .. U32(8), .. U64(0)]), "row length 33 is not a whole number of 32-element Q8_0 blocks"),
            ("unaligned offset", Gguf(1, 0, [.. Key("w"), .. U32(1), .. U64(1), .. U32(0), .. U64(4)]), "offset 4 is not a multiple of the alignment (32)"),
            ("5 dimensions", Gguf(1, 0, [.. Key("w"), .. U32(5)]), "tensor 'w' has 5 dimensions"),
            ("overflowing shape", Gguf(1, 0, [.. Key("w"), .. U32(3), .. U64(1UL << 31), .. U64(1UL << 31), .. U64(1UL << 31), .. U32(0), .. U64(0)]), "element count overflows"),
            ("duplicate tensor", Gguf(2, 0, [.. Key("w"), .. U32(1), .. U64(1), .. U32(0), .. U64(0), .. Key("w"), .. U32(1), .. U64(1), .. U32(0), .. U64(32)]), "tensor name 'w' appears twice"),
        };
        foreach (var (name, bytes, problem) in cases)
        {
            // Pad so forged sizes are judged against a file of realistic length, not a tiny one.
            File.WriteAllBytes(path, [.. bytes, .. new byte[64]]);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<ModelFileException>(() => GgufFile.Open(path));
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, $"{name} allocated too much");
            Assert.StartsWith(path + ": ", e.Message);
            Assert.True(e.Message.Contains(problem, StringComparison.Ordinal), $"{name}: {e.Message}");
            Assert.DoesNotContain('\n', e.Message);
        }
    }

    private static byte[] Gguf(ulong tensors, ulong kvs, IEnumerable<byte>? rest = null) =>
        [.. "GGUF"u8, .. U32(3), .. U64(tensors), .. U64(kvs), .. rest ?? []];

    private static byte[] U32(uint v) => BitConverter.GetBytes(v);

    private static byte[] U64(ulong v) => BitConverter.GetBytes(v);

    private static byte[] Key(string s) => [.. U64((ulong)Encoding.UTF8.GetByteCount(s)), .. Encoding.UTF8.GetBytes(s)];

    private static unsafe void TouchEveryTensor(IWeightSource source, long fileLength)
    {
        foreach (string name in source.TensorNames)
        {
            WeightTensor t = source.Find(name)!;
            Assert.True(t.ByteLength >= 0 && t.ByteLength <= fileLength, name);
            if (t.ByteLength > 0)
            {
                // Reading the first and last byte would fault if the reader let a tensor run outside the mapping.
                _ = t.Data[0];
                _ = t.Data[t.ByteLength - 1];
            }
        }
    }

    /// <summary>Every prefix of the first 512 bytes, then every <paramref name="stride"/>-th, then the last few.</summary>
    private static void Truncations(string source, Func<string, object?> open, int stride = 0)
    {
        byte[] original = File.ReadAllBytes(source);
        if (stride == 0)
            stride = Math.Max(1, original.Length / 200);
        var lengths = new SortedSet<int>();
        for (int n = 0; n < Math.Min(512, original.Length); n++)
            lengths.Add(n);
        for (int n = 512; n < original.Length; n += stride)
            lengths.Add(n);
        for (int n = Math.Max(0, original.Length - 8); n < original.Length; n++)
            lengths.Add(n);

        using var dir = new TempDirectory();
        string path = dir.File(Path.GetFileName(source));
        foreach (int n in lengths)
        {
            File.WriteAllBytes(path, original.AsSpan(0, n).ToArray());
            Check(path, open, $"truncated to {n} bytes");
        }
    }

    /// <summary>
    /// Seeded random damage: most trials hit the first <paramref name="headerBytes"/> (where the structure is), some hit
    /// anywhere; each trial changes one to four bytes, then restores them.
    /// </summary>
    private static void Flips(string source, Func<string, object?> open, long headerBytes, int trials, int seed)
    {
        byte[] original = File.ReadAllBytes(source);
        using var dir = new TempDirectory();
        string path = dir.File(Path.GetFileName(source));
        File.WriteAllBytes(path, original);
        var random = new Random(seed);
        var positions = new List<long>();
        int opened = 0;
        for (int trial = 0; trial < trials; trial++)
        {
            positions.Clear();
            int count = random.Next(1, 5);
            using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            {
                for (int i = 0; i < count; i++)
                {
                    long at = random.Next(10) < 9 ? random.NextInt64(Math.Min(headerBytes, original.Length)) : random.NextInt64(original.Length);
                    positions.Add(at);
                    stream.Position = at;
                    // Sometimes a whole new byte, sometimes one bit: both kinds of damage happen to files.
                    stream.WriteByte(random.Next(2) == 0 ? (byte)random.Next(256) : (byte)(original[at] ^ (1 << random.Next(8))));
                }
            }
            if (Check(path, open, $"seed {seed} trial {trial}, bytes changed at {string.Join(", ", positions)}"))
                opened++;
            using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            {
                foreach (long at in positions)
                {
                    stream.Position = at;
                    stream.WriteByte(original[at]);
                }
            }
        }
        // Both outcomes should occur; if nothing ever opened, the damage model (or the reader) is too strict to be useful.
        Assert.InRange(opened, 1, trials - 1);
    }

    private static bool Check(string path, Func<string, object?> open, string what)
    {
        try
        {
            open(path);
            return true;
        }
        catch (ModelFileException e)
        {
            if (!e.Message.StartsWith(path + ": ", StringComparison.Ordinal) || e.Message.Contains('\n'))
                throw new Xunit.Sdk.XunitException($"{what}: message is not one line starting with the path: {e.Message}");
            return false;
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException($"{what}: {e.GetType().Name} escaped: {e}");
        }
    }
}
