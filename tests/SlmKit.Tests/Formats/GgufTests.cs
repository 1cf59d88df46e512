using System.Runtime.InteropServices;
using SlmKit.Formats;
using SlmKit.Tensors;

namespace SlmKit.Tests.Formats;

public sealed class GgufTests
{
    private static readonly (string Key, object Value)[] s_everyType =
    [
        ("t.u8", (byte)200),
        ("t.i8", (sbyte)-100),
        ("t.u16", (ushort)60000),
        ("t.i16", (short)-30000),
        ("t.u32", 4000000000u),
        ("t.i32", -2000000000),
        ("t.f32", 3.25f),
        ("t.bool", true),
        ("t.str", "héllo ▁wörld 🙂"),
        ("t.u64", ulong.MaxValue),
        ("t.i64", long.MinValue),
        ("t.f64", Math.PI),
        ("t.empty", ""),
        ("a.u8", new byte[] { 1, 2, 255 }),
        ("a.i8", new sbyte[] { -1, 2, -128 }),
        ("a.u16", new ushort[] { 1, 65535 }),
        ("a.i16", new short[] { -1, 32767 }),
        ("a.u32", new uint[] { 0, uint.MaxValue }),
        ("a.i32", new[] { -5, 7, int.MaxValue }),
        ("a.f32", new[] { 1.5f, -0f, float.PositiveInfinity }),
        ("a.bool", new[] { true, false, true }),
        ("a.str", new[] { "a", "", "<0x0A>", "▁the" }),
        ("a.u64", new ulong[] { 1, ulong.MaxValue }),
        ("a.i64", new long[] { long.MinValue, 3 }),
        ("a.f64", new[] { 1e300, -2.5 }),
        ("a.empty", Array.Empty<int>()),
        ("a.nested", new GgufArray(GgufValueType.Array, new[]
        {
            new GgufArray(GgufValueType.Int32, new[] { 1, 2, 3 }),
            new GgufArray(GgufValueType.String, new[] { "x", "yz" }),
            new GgufArray(GgufValueType.Array, new[] { new GgufArray(GgufValueType.Float64, new[] { 0.5 }) }),
        })),
    ];

    [Theory]
    [InlineData(3u, 32)]
    [InlineData(2u, 32)]
    [InlineData(3u, 64)]
    [InlineData(3u, 8)]
    [InlineData(2u, 1)]
    public void Round_trip_keeps_every_value_type_and_tensor(uint version, int alignment)
    {
        using var dir = new TempDirectory();
        string path = dir.File("t.gguf");
        var writer = new GgufWriter(version, alignment);
        foreach (var (key, value) in s_everyType)
            writer.Set(key, value);
        writer.Set("general.architecture", "llama");

        var random = new Random(1);
        float[] f32 = RandomFloats(random, 3 * 5);
        float[] f16 = RandomFloats(random, 2 * 8);
        float[] bf16 = RandomFloats(random, 4 * 2 * 3 * 2);
        byte[] q8 = new byte[34 * 2 * 3];
        random.NextBytes(q8);
        writer.AddTensor("f32", [3, 5], f32);
        writer.AddTensor("f16", [2, 8], f16, GgmlType.F16);
        writer.AddTensor("bf16", [4, 2, 3, 2], bf16, GgmlType.BF16);
        writer.AddTensor("q8", GgmlType.Q8_0, [3, 64], q8);
        writer.AddTensor("vec", [7], RandomFloats(random, 7));
        writer.Write(path);
        Assert.False(File.Exists(path + ".tmp"));

        using GgufFile gguf = GgufFile.Open(path);
        Assert.Equal(version, gguf.Version);
        Assert.Equal(alignment, gguf.Alignment);
        Assert.Equal("llama", gguf.Architecture);
        // general.alignment is written only when it differs from the default, first so llama.cpp sees it early.
        var expectedKeys = s_everyType.Select(e => e.Key).Append("general.architecture").ToList();
        if (alignment != 32)
        {
            expectedKeys.Insert(0, "general.alignment");
            Assert.Equal((uint)alignment, gguf.Metadata["general.alignment"]);
        }
        Assert.Equal(expectedKeys, gguf.MetadataKeys);
        foreach (var (key, value) in s_everyType)
            AssertSameValue(value, gguf.Metadata[key]);

        Assert.Equal(["f32", "f16", "bf16", "q8", "vec"], gguf.TensorNames);
        Assert.Equal(0, gguf.DataOffset % alignment);
        foreach (GgufTensorInfo info in gguf.Tensors)
            Assert.Equal(0, (info.Offset - gguf.DataOffset) % alignment);

        Assert.Equal(f32, gguf.Find("f32")!.AsFloat32().ToArray());
        WeightTensor half = gguf.Find("f16")!;
        Assert.Equal(GgmlType.F16, half.Type);
        Assert.Equal([2L, 8L], half.Dimensions);
        Assert.Equal(f16.Select(f => (Half)f).ToArray(), MemoryMarshal.Cast<byte, Half>(half.Bytes).ToArray());
        WeightTensor b = gguf.Find("bf16")!;
        Assert.Equal([4L, 2L, 3L, 2L], b.Dimensions);
        Assert.Equal(bf16.Select(Bf16).ToArray(), MemoryMarshal.Cast<byte, ushort>(b.Bytes).ToArray());
        WeightTensor q = gguf.Find("q8")!;
        Assert.Equal(GgmlType.Q8_0, q.Type);
        Assert.Equal(q8, q.Bytes.ToArray());
        Assert.Equal([3L, 64L], gguf.FindInfo("q8")!.Dimensions);
        Assert.Null(gguf.Find("missing"));
    }

    [Fact]
    public void Typed_getters_widen_integers_and_name_the_key_on_a_wrong_type()
    {
        using var dir = new TempDirectory();
        string path = dir.File("t.gguf");
        var writer = new GgufWriter();
        foreach (var (key, value) in s_everyType)
            writer.Set(key, value);
        writer.Write(path);
        using GgufFile gguf = GgufFile.Open(path);

        Assert.Equal(200, gguf.GetInteger("t.u8"));
        Assert.Equal(-30000, gguf.GetInteger("t.i16"));
        Assert.Equal(4000000000, gguf.GetInteger("t.u32"));
        Assert.Equal(long.MinValue, gguf.GetInteger("t.i64"));
        Assert.Equal(3.25, gguf.GetNumber("t.f32"));
        Assert.Equal(-100.0, gguf.GetNumber("t.i8"));
        Assert.Equal(Math.PI, gguf.GetNumber("t.f64"));
        Assert.True(gguf.GetBool("t.bool"));
        Assert.Equal("héllo ▁wörld 🙂", gguf.GetString("t.str"));
        Assert.Equal(["a", "", "<0x0A>", "▁the"], gguf.GetStringArray("a.str")!);
        Assert.Equal([1.5f, -0f, float.PositiveInfinity], gguf.GetFloatArray("a.f32")!);
        Assert.Equal([float.PositiveInfinity, -2.5f], gguf.GetFloatArray("a.f64")!);
        Assert.Equal([-1, 2, -128], gguf.GetInt32Array("a.i8")!);
        Assert.Equal([1, 65535], gguf.GetInt32Array("a.u16")!);
        Assert.Null(gguf.GetString("absent"));
        Assert.Null(gguf.GetInteger("absent"));
        Assert.Null(gguf.GetInt32Array("absent"));

        var e = Assert.Throws<ModelFileException>(() => gguf.GetString("t.u32"));
        Assert.Equal($"{path}: metadata 't.u32' is uint32, expected a string", e.Message);
        e = Assert.Throws<ModelFileException>(() => gguf.GetInteger("t.u64"));
        Assert.Contains("'t.u64'", e.Message);
        e = Assert.Throws<ModelFileException>(() => gguf.GetInt32Array("a.u32"));
        Assert.Contains("'a.u32'[1]", e.Message);
        e = Assert.Throws<ModelFileException>(() => gguf.GetFloatArray("a.str"));
        Assert.Contains("array of string, expected an array of float32", e.Message);
        Assert.Throws<ModelFileException>(() => gguf.GetBool("t.u8"));
        Assert.Throws<ModelFileException>(() => gguf.GetNumber("t.str"));
    }

    [Fact]
    public void Writer_refuses_what_llama_cpp_would_refuse()
    {
        var writer = new GgufWriter();
        Assert.Throws<ArgumentException>(() => writer.AddTensor("x", GgmlType.Q8_0, [2, 40], new byte[34 * 2]));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("x", GgmlType.F32, [2, 2], new byte[15]));
        Assert.Throws<ArgumentException>(() => writer.AddTensor(new string('n', 64), [1], [1f]));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("x", [1, 1, 1, 1, 1], [1f]));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("x", [1], [1f], GgmlType.Q4_0));
        Assert.Throws<ArgumentException>(() => writer.Set("k", new object()));
        Assert.Throws<ArgumentException>(() => writer.Set("k", new decimal[1]));
        Assert.Throws<ArgumentException>(() => writer.Set("general.alignment", 64u));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GgufWriter(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GgufWriter(3, 48));
        writer.AddTensor("x", [1], [1f]);
        Assert.Throws<ArgumentException>(() => writer.AddTensor("x", [1], [1f]));
    }

    [Fact]
    public void Float16_conversions_round_to_nearest_even()
    {
        // 1 + 2^-8 lies exactly between two bfloat16 values: ties go to the even one (1.0).
        Assert.Equal(0x3F80, Bf16(1.00390625f));
        // 1 + 3·2^-8 lies between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up to the even one.
        Assert.Equal(0x3F82, Bf16(1.01171875f));
        Assert.Equal(0x3F81, Bf16(1.0058594f));
        Assert.True(float.IsNaN(FloatConversion.FromBFloat16(Bf16(float.NaN))));
        Assert.Equal(float.PositiveInfinity, FloatConversion.FromBFloat16(Bf16(float.MaxValue)));

        using var dir = new TempDirectory();
        var writer = new GgufWriter();
        // 1 + 2^-11 is a tie for float16 too.
        writer.AddTensor("h", [3], [1.00048828125f, 1.00146484375f, 65520f], GgmlType.F16);
        writer.Write(dir.File("h.gguf"));
        using GgufFile gguf = GgufFile.Open(dir.File("h.gguf"));
        ushort[] bits = MemoryMarshal.Cast<byte, ushort>(gguf.Find("h")!.Bytes).ToArray();
        Assert.Equal([(ushort)0x3C00, (ushort)0x3C02, (ushort)0x7C00], bits);
    }

    [Fact]
    public void Reads_stories260K_gguf()
    {
        string path = SharedAssets.Require("assets/llama2c/stories260K/stories260K.gguf");
        using GgufFile gguf = GgufFile.Open(path);
        Assert.Equal(3u, gguf.Version);
        Assert.Equal(32, gguf.Alignment);
        Assert.Equal("llama", gguf.Architecture);
        Assert.Equal(48, gguf.Tensors.Count);
        Assert.All(gguf.Tensors, t => Assert.Equal(GgmlType.F32, t.Type));
        Assert.Equal(64, gguf.GetInteger("llama.embedding_length"));
        Assert.Equal(172, gguf.GetInteger("llama.feed_forward_length"));
        Assert.Equal(5, gguf.GetInteger("llama.block_count"));
        Assert.Equal(4, gguf.GetInteger("llama.attention.head_count_kv"));
        Assert.Equal(1e-5, gguf.GetNumber("llama.attention.layer_norm_rms_epsilon")!.Value, 1e-9);
        // The converter wrote "seperator" (sic) and uses uint32 -1 for "no such token".
        Assert.Equal(uint.MaxValue, gguf.GetInteger("tokenizer.ggml.seperator_token_id"));
        string[] tokens = gguf.GetStringArray("tokenizer.ggml.tokens")!;
        Assert.Equal(512, tokens.Length);
        Assert.Equal(["<unk>", "<s>", "</s>", "<0x00>"], tokens[..4]);
        Assert.Equal(512, gguf.GetFloatArray("tokenizer.ggml.scores")!.Length);
        Assert.Equal([2, 3, 3, 6], gguf.GetInt32Array("tokenizer.ggml.token_type")![..4]);

        WeightTensor embedding = gguf.Find("token_embd.weight")!;
        Assert.Equal([512L, 64L], embedding.Dimensions);
        Assert.Equal([64L, 64L], gguf.Find("blk.0.attn_q.weight")!.Dimensions);
        Assert.Equal([32L, 64L], gguf.Find("blk.0.attn_k.weight")!.Dimensions);
        Assert.Equal([172L, 64L], gguf.Find("blk.0.ffn_gate.weight")!.Dimensions);
        Assert.Equal([64L, 172L], gguf.Find("blk.0.ffn_down.weight")!.Dimensions);
        // The classifier is stored although llama2.c shares it: it is a copy of the embedding.
        Assert.True(embedding.Bytes.SequenceEqual(gguf.Find("output.weight")!.Bytes));
        Assert.Equal(gguf.FileLength, gguf.Tensors.Max(t => t.Offset + t.ByteLength));
    }

    [Fact]
    public void Reads_every_llama_cpp_vocab_only_gguf()
    {
        string folder = SharedAssets.Require("assets/llamacpp/vocab");
        string[] files = Directory.GetFiles(folder, "*.gguf");
        Assert.NotEmpty(files);
        foreach (string path in files)
        {
            using GgufFile gguf = GgufFile.Open(path);
            Assert.Empty(gguf.Tensors);
            Assert.NotNull(gguf.Architecture);
            string[] tokens = gguf.GetStringArray("tokenizer.ggml.tokens")!;
            Assert.True(tokens.Length > 1000, path);
            Assert.Equal(tokens.Length, gguf.GetInt32Array("tokenizer.ggml.token_type")!.Length);
            Assert.NotNull(gguf.GetString("tokenizer.ggml.model"));
        }
    }

    [Fact]
    public void Rewriting_a_real_file_reproduces_it_byte_for_byte()
    {
        string source = SharedAssets.Require("assets/llama2c/stories260K/stories260K.gguf");
        using var dir = new TempDirectory();
        string copy = dir.File("copy.gguf");
        using (GgufFile gguf = GgufFile.Open(source))
        {
            var writer = new GgufWriter(gguf.Version, gguf.Alignment);
            foreach (string key in gguf.MetadataKeys)
                writer.Set(key, gguf.Metadata[key]);
            foreach (GgufTensorInfo t in gguf.Tensors)
                writer.AddTensor(t.Name, t.Type, [.. t.Dimensions], gguf.Find(t.Name)!.Bytes);
            writer.Write(copy);
        }
        Assert.Equal(File.ReadAllBytes(source), File.ReadAllBytes(copy));
    }

    internal static ushort Bf16(float f) => FloatConversion.ToBFloat16(f);

    private static float[] RandomFloats(Random random, int n)
    {
        var result = new float[n];
        for (int i = 0; i < n; i++)
            result[i] = (float)(random.NextDouble() * 4 - 2);
        return result;
    }

    private static void AssertSameValue(object expected, object actual)
    {
        switch (expected)
        {
            case GgufArray e:
                var a = Assert.IsType<GgufArray>(actual);
                Assert.Equal(e.ElementType, a.ElementType);
                Assert.Equal(e.Count, a.Count);
                for (int i = 0; i < e.Count; i++)
                    AssertSameValue(e.Values.GetValue(i)!, a.Values.GetValue(i)!);
                break;
            case Array e:
                var array = Assert.IsType<GgufArray>(actual);
                Assert.Equal(e.GetType(), array.Values.GetType());
                Assert.Equal(e, array.Values);
                break;
            default:
                Assert.Equal(expected.GetType(), actual.GetType());
                Assert.Equal(expected, actual);
                break;
        }
    }
}
