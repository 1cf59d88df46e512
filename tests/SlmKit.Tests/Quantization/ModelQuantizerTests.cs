using SlmKit.Kernels;
using LLama.Native;
using SlmKit.Formats;
using SlmKit.Kernels.Quantization;
using SlmKit.Quantization;
using SlmKit.Tensors;
using SlmKit.Tests.Models;

namespace SlmKit.Tests.Quantization;

/// <summary>
/// <c>slm quantize</c> against llama-quantize: the same type for every tensor (mix rules and fallbacks), files that load
/// in llama.cpp and give logits within the oracle tolerance of llama.cpp's own quantization, round-trip error bounds per
/// type, and no partial output on failure.
/// </summary>
public sealed class ModelQuantizerTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-quantize-").FullName;

    public static TheoryData<QuantizationTarget, LLamaFtype> Targets => new()
    {
        { QuantizationTarget.Q8_0, LLamaFtype.MOSTLY_Q8_0 },
        { QuantizationTarget.Q4_0, LLamaFtype.MOSTLY_Q4_0 },
        { QuantizationTarget.Q4_1, LLamaFtype.MOSTLY_Q4_1 },
        { QuantizationTarget.Q5_0, LLamaFtype.MOSTLY_Q5_0 },
        { QuantizationTarget.Q5_1, LLamaFtype.MOSTLY_Q5_1 },
        { QuantizationTarget.Q2_K, LLamaFtype.MOSTLY_Q2_K },
        { QuantizationTarget.Q4_K_M, LLamaFtype.MOSTLY_Q4_K_M },
        { QuantizationTarget.Q5_K_M, LLamaFtype.MOSTLY_Q5_K_M },
        { QuantizationTarget.Q6_K, LLamaFtype.MOSTLY_Q6_K },
        { QuantizationTarget.F16, LLamaFtype.MOSTLY_F16 },
    };

    /// <summary>A SmolLM-like shape: rows of 192 are not whole K super-blocks, so the fallbacks are exercised; 8 layers, GQA 3.</summary>
    private static readonly RandomLlamaSpec s_fallbackSpec = new("quant-fallback", Dim: 192, Layers: 8, Heads: 6, KvHeads: 2, HeadDim: 32, Ffn: 512,
        Vocab: 600, Tied: true, RopeTheta: 10000f, Type: GgmlType.F16, Seed: 9);

    private static Dictionary<string, GgmlType> Types(string path)
    {
        using var gguf = GgufFile.Open(path);
        return gguf.Tensors.ToDictionary(t => t.Name, t => t.Type);
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_tensor_gets_the_type_llama_quantize_gives_it(QuantizationTarget target, LLamaFtype ftype)
    {
        foreach (var spec in new[] { QuantizedOracleTests.Spec, s_fallbackSpec })
        {
            string source = new RandomLlama(spec).WriteGguf(Path.Combine(_folder, spec.Name + ".gguf"));
            string ours = Path.Combine(_folder, $"{spec.Name}-{target}-ours.gguf");
            string theirs = LlamaCppQuantizer.Quantize(source, Path.Combine(_folder, $"{spec.Name}-{target}-llama.gguf"), ftype);
            ModelQuantizer.Quantize(source, ours, target);
            var expected = Types(theirs);
            var actual = Types(ours);
            Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
            foreach (var (name, type) in expected)
            {
                // llama.cpp falls back to IQ4_NL, which SlmKit does not compute; SlmKit uses Q4_0 (same size, 4.5 bits).
                var wanted = type == GgmlType.IQ4_NL ? GgmlType.Q4_0 : type;
                Assert.True(wanted == actual[name], $"{spec.Name} {target}: {name} is {actual[name]}, llama.cpp made it {type}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Files_quantized_here_give_llama_cpp_the_logits_of_its_own_quantization(QuantizationTarget target, LLamaFtype ftype)
    {
        var spec = QuantizedOracleTests.Spec;
        string source = new RandomLlama(spec).WriteGguf(Path.Combine(_folder, "f32.gguf"));
        string ours = Path.Combine(_folder, $"{target}-ours.gguf");
        string theirs = LlamaCppQuantizer.Quantize(source, Path.Combine(_folder, $"{target}-llama.gguf"), ftype);
        ModelQuantizer.Quantize(source, ours, target);

        // How many blocks came out bit-identical to llama.cpp's (for information: the algorithms are the same, but float
        // evaluation order may differ at a rounding boundary).
        using (var a = GgufFile.Open(ours))
        using (var b = GgufFile.Open(theirs))
        {
            long same = 0, total = 0;
            foreach (var t in a.Tensors)
            {
                var x = a.Find(t.Name)!.Bytes;
                var y = b.Find(t.Name)!.Bytes;
                total += x.Length;
                for (int i = 0; i < x.Length; i++)
                    same += x[i] == y[i] ? 1 : 0;
            }
            output.WriteLine($"{target}: {same / (double)total:P3} of bytes identical to llama-quantize's");
        }

        int[] tokens = ModelTestHelpers.RandomTokens(64, spec.Vocab, 11);
        float[] expected = LlamaCppForward.Logits(theirs, tokens);
        float[] actual = LlamaCppForward.Logits(ours, tokens);
        var (worst, scale, agreement, ties) = QuantizedOracleTests.Compare(expected, actual, tokens.Length);
        output.WriteLine($"{target}: llama.cpp on ours vs on its own: max |Δlogit| {worst / scale:P3} of scale, top-1 {agreement:P1} ({ties} near-ties)");
        Assert.True(agreement >= 0.99, $"top-1 agreement {agreement:P1}");
        Assert.True(worst <= QuantizedOracleTests.Tolerance(ftype) * scale, $"max |Δlogit| {worst:G4} exceeds {QuantizedOracleTests.Tolerance(ftype)} × {scale:G4}");

        // And SlmKit runs its own file within the same tolerance of llama.cpp running it.
        var (worst2, scale2, agreement2, _) = QuantizedOracleTests.Compare(actual, ModelTestHelpers.OurLogits(ours, tokens), tokens.Length);
        Assert.True(agreement2 >= 0.99 && worst2 <= QuantizedOracleTests.Tolerance(ftype) * scale2, $"SlmKit vs llama.cpp on our file: {worst2 / scale2:P3}, {agreement2:P1}");
    }

    /// <summary>
    /// BF16, which LLamaSharp's quantizer refuses (so there is no llama-quantize file to compare bytes with): every matrix
    /// becomes BF16 and every 1-D tensor F32, llama.cpp loads the file, and both engines give logits within BF16's
    /// precision of llama.cpp on the F32 source and within float rounding of each other.
    /// </summary>
    [Fact]
    public void Bf16_conversion_runs_in_both_engines_close_to_the_f32_source()
    {
        var spec = QuantizedOracleTests.Spec;
        string source = new RandomLlama(spec).WriteGguf(Path.Combine(_folder, "f32.gguf"));
        string bf16 = Path.Combine(_folder, "bf16.gguf");
        ModelQuantizer.Quantize(source, bf16, QuantizationTarget.BF16);
        using (var file = GgufFile.Open(bf16))
        {
            Assert.Equal(32L, file.GetInteger("general.file_type"));
            Assert.All(file.Tensors, t => Assert.Equal(t.Dimensions.Count >= 2 ? GgmlType.BF16 : GgmlType.F32, t.Type));
        }

        int[] tokens = ModelTestHelpers.RandomTokens(64, spec.Vocab, 5);
        float[] reference = LlamaCppForward.Logits(source, tokens);
        float[] theirs = LlamaCppForward.Logits(bf16, tokens);
        float[] ours = ModelTestHelpers.OurLogits(bf16, tokens);
        var (drift, scale, _, _) = QuantizedOracleTests.Compare(reference, theirs, tokens.Length);
        var (engines, scale2, agreement, ties) = QuantizedOracleTests.Compare(theirs, ours, tokens.Length);
        output.WriteLine($"BF16 vs F32 in llama.cpp: {drift / scale:P3} of scale; SlmKit vs llama.cpp on the BF16 file: {engines / scale2:P4}, top-1 {agreement:P1} ({ties} near-ties)");
        // 8 mantissa bits: each weight is off by up to 2^-9 of itself (measured drift 0.54 % of the logit scale). The
        // engines differ by more than float rounding because llama.cpp's BF16 dot products round the activations to
        // BF16 as well, while SlmKit keeps them in float (measured 0.33 %). Bounds ≈ 3× the measured values.
        Assert.True(drift <= 0.015 * scale, $"BF16 moved llama.cpp's logits by {drift / scale:P3} of their scale");
        Assert.True(engines <= 0.01 * scale2 && agreement >= 0.99, $"SlmKit vs llama.cpp on the BF16 file: {engines / scale2:P4}, top-1 {agreement:P1}");
    }

    /// <summary>F32 as a target widens a quantized file: every matrix holds exactly the dequantized values.</summary>
    [Fact]
    public unsafe void Converting_a_q8_0_file_to_f32_writes_the_dequantized_values()
    {
        string source = new RandomLlama(QuantizedOracleTests.Spec).WriteGguf(Path.Combine(_folder, "f32.gguf"));
        string q8 = Path.Combine(_folder, "q8.gguf");
        string widened = Path.Combine(_folder, "widened.gguf");
        ModelQuantizer.Quantize(source, q8, QuantizationTarget.Q8_0);
        ModelQuantizer.Quantize(q8, widened, QuantizationTarget.F32);
        using var quantized = GgufFile.Open(q8);
        using var f32 = GgufFile.Open(widened);
        Assert.Equal(0L, f32.GetInteger("general.file_type"));
        foreach (var info in quantized.Tensors)
        {
            var tensor = quantized.Find(info.Name)!;
            var actual = f32.Find(info.Name)!;
            Assert.Equal(GgmlType.F32, actual.Type);
            int cols = (int)tensor.RowLength;
            var expected = new float[tensor.ElementCount];
            for (int r = 0; r < tensor.RowCount; r++)
                MatMul.WidenRow(tensor.Data, tensor.Type, cols, r, expected.AsSpan(r * cols, cols));
            Assert.True(expected.AsSpan().SequenceEqual(actual.AsFloat32()), $"{info.Name} ({tensor.Type}) was not widened exactly");
        }
    }

    /// <summary>Regression guards ≈ 1.15× the errors measured on unit Gaussian data (block maxima ≈ 2.5σ set the step).</summary>
    [Theory]
    [InlineData(GgmlType.Q8_0, 0.0062)]
    [InlineData(GgmlType.Q6_K, 0.02)]
    [InlineData(GgmlType.Q5_0, 0.05)]
    [InlineData(GgmlType.Q5_1, 0.044)]
    [InlineData(GgmlType.Q5_K, 0.042)]
    [InlineData(GgmlType.Q4_0, 0.10)]
    [InlineData(GgmlType.Q4_1, 0.09)]
    [InlineData(GgmlType.Q4_K, 0.09)]
    [InlineData(GgmlType.Q3_K, 0.2)]
    [InlineData(GgmlType.Q2_K, 0.34)]
    public void Round_trip_error_is_what_the_bit_width_allows(GgmlType type, double maxRelativeRms)
    {
        var random = new Random((int)type);
        int n = 256 * 64;
        var x = new float[n];
        for (int i = 0; i < n; i++)
            x[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out int blockBytes);
        var bytes = new byte[n / blockSize * blockBytes];
        BlockQuantizer.QuantizeRow(type, x, bytes);
        var y = new float[n];
        unsafe
        {
            fixed (byte* p = bytes)
                Dequantization.Row(type, p, y);
        }
        double error = 0, energy = 0;
        for (int i = 0; i < n; i++)
        {
            error += (x[i] - y[i]) * (double)(x[i] - y[i]);
            energy += x[i] * (double)x[i];
        }
        double relative = Math.Sqrt(error / energy);
        output.WriteLine($"{type}: relative RMS error {relative:P3}");
        Assert.True(relative <= maxRelativeRms, $"{type}: relative RMS error {relative:P3} > {maxRelativeRms:P1}");
    }

    [Fact]
    public void A_failure_leaves_no_output_file()
    {
        string source = Path.Combine(_folder, "broken.gguf");
        string model = new RandomLlama(s_fallbackSpec).WriteGguf(Path.Combine(_folder, "good.gguf"));
        byte[] bytes = File.ReadAllBytes(model);
        File.WriteAllBytes(source, bytes.AsSpan(0, bytes.Length - 1000).ToArray());
        string destination = Path.Combine(_folder, "out.gguf");
        Assert.Throws<ModelFileException>(() => ModelQuantizer.Quantize(source, destination, QuantizationTarget.Q4_0));
        Assert.Empty(Directory.GetFiles(_folder, "out.gguf*"));
    }

    [Fact]
    public void The_cli_quantizes_with_a_progress_bar_and_refuses_bad_types()
    {
        string source = new RandomLlama(s_fallbackSpec).WriteGguf(Path.Combine(_folder, "cli.gguf"));
        string destination = Path.Combine(_folder, "cli-q8.gguf");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = SlmKit.Cli.Program.Run(["quantize", source, destination, "--type", "q8_0", "--threads", "2"], stdout, stderr);
        Assert.True(code == 0, stderr.ToString());
        Assert.Contains("Q8_0", stderr.ToString());
        Assert.Contains("wrote", stderr.ToString());
        Assert.Equal(GgmlType.Q8_0, Types(destination)["blk.0.ffn_up.weight"]);

        stderr = new StringWriter();
        code = SlmKit.Cli.Program.Run(["quantize", source, Path.Combine(_folder, "x.gguf"), "--type", "Q3_XX"], stdout, stderr);
        Assert.Equal(2, code);
        Assert.Contains("unknown quantization type 'Q3_XX'", stderr.ToString());
        Assert.False(File.Exists(Path.Combine(_folder, "x.gguf")));
    }

    [Fact]
    public void A_tensor_whose_size_disagrees_with_its_type_and_shape_is_refused()
    {
        // Q8_0 tensors written correctly, then the first one's type relabelled as F32 in the tensor table: its computed
        // size (4 bytes per element) now runs into the second tensor (but not past the end of the file).
        var writer = new GgufWriter();
        writer.Set("general.architecture", "llama");
        var block = new byte[34 * 2];
        writer.AddTensor("a.weight", GgmlType.Q8_0, [1, 64], block);
        writer.AddTensor("b.weight", GgmlType.Q8_0, [1, 64], block);
        writer.AddTensor("c.weight", GgmlType.Q8_0, [16, 64], new byte[34 * 2 * 16]);
        string path = Path.Combine(_folder, "bad-size.gguf");
        writer.Write(path);
        byte[] bytes = File.ReadAllBytes(path);
        byte[] name = "a.weight"u8.ToArray();
        int at = bytes.AsSpan().IndexOf(name) + name.Length + 4 + 16; // name, n_dims, two dimensions
        Assert.Equal((uint)GgmlType.Q8_0, BitConverter.ToUInt32(bytes, at));
        BitConverter.TryWriteBytes(bytes.AsSpan(at, 4), (uint)GgmlType.F32);
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<ModelFileException>(() => GgufFile.Open(path));
        Assert.Contains("'a.weight' is F32 [1, 64], which takes 256 bytes", error.Message);
        Assert.Contains("the type or shape disagrees with the data", error.Message);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
