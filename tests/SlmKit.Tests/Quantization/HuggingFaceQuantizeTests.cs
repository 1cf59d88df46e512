using LLama.Native;
using SlmKit.Formats;
using SlmKit.Models;
using SlmKit.Quantization;
using SlmKit.Tensors;
using SlmKit.Tests.Models;

namespace SlmKit.Tests.Quantization;

/// <summary>
/// <c>slm quantize</c> from a Hugging Face folder: the same bytes as quantizing the GGUF <c>slm convert</c> makes of the
/// folder, a file that SlmKit and llama.cpp run close to the unquantized model and to llama.cpp's own quantization, and
/// broken folders refused with one line and no output.
/// </summary>
public sealed class HuggingFaceQuantizeTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-hfquant-").FullName;

    /// <summary>
    /// Multiples of 256 so every matrix takes the K types; F16 throughout, as Hugging Face checkpoints usually are (so the
    /// norms are widened to F32 on the way); 2048 tokens to match the committed byte-level BPE tokenizer, which llama.cpp
    /// needs equal to the embedding rows.
    /// </summary>
    private static readonly RandomLlamaSpec s_spec = new("hf-quant", Dim: 256, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 64, Ffn: 768,
        Vocab: 2048, Tied: false, RopeTheta: 10000f, Type: GgmlType.F16, Seed: 23);

    public static TheoryData<string, QuantizationTarget, LLamaFtype> Targets => new()
    {
        { "llama", QuantizationTarget.Q8_0, LLamaFtype.MOSTLY_Q8_0 },
        { "llama", QuantizationTarget.Q4_K_M, LLamaFtype.MOSTLY_Q4_K_M },
        { "qwen2", QuantizationTarget.Q8_0, LLamaFtype.MOSTLY_Q8_0 },
        { "qwen2", QuantizationTarget.Q4_K_M, LLamaFtype.MOSTLY_Q4_K_M },
        { "gemma", QuantizationTarget.Q8_0, LLamaFtype.MOSTLY_Q8_0 },
        { "gemma", QuantizationTarget.Q4_K_M, LLamaFtype.MOSTLY_Q4_K_M },
    };

    private static string DefaultTokenizer => Path.Combine(SharedAssets.RepositoryRoot, "models", "default", "tokenizer");

    /// <summary>A random folder of <paramref name="modelType"/>: "llama", "qwen2" (q/k/v with biases) or "gemma" (tied head, norms as 1 + w).</summary>
    private string Folder(string name = "hf", string modelType = "llama") =>
        new RandomLlama(s_spec).WriteHuggingFace(Path.Combine(_folder, name), DefaultTokenizer, modelType);

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("gemma")]
    public void A_folder_converts_to_a_gguf_that_llama_cpp_runs_as_slmkit_runs_the_folder(string modelType)
    {
        string folder = Folder(modelType, modelType);
        string converted = Path.Combine(_folder, $"{modelType}-f16.gguf");
        var (code, _, error) = Run("convert", folder, converted);
        Assert.True(code == 0, error);
        using (var gguf = GgufFile.Open(converted))
        using (var safetensors = SafeTensorsModel.Open(folder))
        {
            Assert.Equal(modelType, gguf.Architecture);
            Assert.Equal(GgmlType.F16, gguf.Tensors.Single(t => t.Name == "blk.1.attn_q.weight").Type);
            if (modelType == "qwen2")
            {
                // The biases, F16 in the folder, are F32 in the file (llama.cpp's converter keeps 1-D tensors in F32).
                foreach (var (role, rows) in new[] { ("attn_q", s_spec.Heads * s_spec.HeadDim), ("attn_k", s_spec.KvHeads * s_spec.HeadDim), ("attn_v", s_spec.KvHeads * s_spec.HeadDim) })
                {
                    var bias = gguf.Tensors.Single(t => t.Name == $"blk.1.{role}.bias");
                    Assert.Equal(GgmlType.F32, bias.Type);
                    Assert.Equal([(long)rows], bias.Dimensions);
                }
            }
            // Gemma's norms are stored as 1 + w, as llama.cpp's converter writes them; the others' as they are.
            float offset = modelType == "gemma" ? 1f : 0f;
            var norm = GgufTensorValues(gguf, "blk.0.attn_norm.weight");
            var source = safetensors.Find("model.layers.0.input_layernorm.weight")!;
            var halves = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(source.Bytes);
            for (int i = 0; i < halves.Length; i++)
                Assert.Equal((float)halves[i] + offset, norm[i]);
            Assert.Equal(modelType != "gemma", gguf.Tensors.Any(t => t.Name == "output.weight"));
        }

        int[] tokens = ModelTestHelpers.RandomTokens(64, s_spec.Vocab, 9);
        float[] fromFolder = ModelTestHelpers.OurLogits(folder, tokens);
        // SlmKit on the file computes the folder's model: the same F16 weights, rotated in the order the file's
        // architecture names.
        ModelTestHelpers.AssertLogitsMatch(fromFolder, ModelTestHelpers.OurLogits(converted, tokens), 1e-4);
        // llama.cpp, the independent engine, on the file: as close as its F16 runs of random models always are
        // (FamilyOracleTests' bound for F16 weights; it rounds activations to F16 for F16 products).
        ModelTestHelpers.AssertLogitsMatch(LlamaCppForward.Logits(converted, tokens), fromFolder, 1e-2);
    }

    private static float[] GgufTensorValues(GgufFile gguf, string name)
    {
        var tensor = gguf.Find(name)!;
        Assert.Equal(GgmlType.F32, tensor.Type);
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(tensor.Bytes).ToArray();
    }

    [Fact]
    public void A_gemma_folder_with_a_head_of_its_own_is_refused_naming_it()
    {
        // llama.cpp's gemma graph ties the head to the embeddings and would refuse a file holding one.
        string folder = Folder("gemma-untied");
        string config = Path.Combine(folder, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"model_type\": \"llama\"", "\"model_type\": \"gemma\""));
        AssertConversionRefused(folder, "lm_head.weight");
    }

    [Fact]
    public void A_qwen2_folder_without_its_biases_is_refused_naming_the_missing_tensor()
    {
        string folder = Folder("qwen2-no-bias", "qwen2");
        string weights = Path.Combine(folder, "model.safetensors");
        List<SafeTensorEntry> kept;
        using (var safetensors = SafeTensorsModel.Open(folder))
        {
            kept = safetensors.TensorNames.Where(n => !n.EndsWith(".bias", StringComparison.Ordinal))
                .Select(n => safetensors.Find(n)!)
                .Select(t => new SafeTensorEntry(t.Name, t.Type, t.Dimensions, t.Bytes.ToArray()))
                .ToList();
        }
        SafeTensorsWriter.Write(weights, kept);
        AssertConversionRefused(folder, "attn_q.bias");
    }

    /// <summary><c>slm convert</c> refuses <paramref name="folder"/>: exit code 2, the reason on stderr, nothing written.</summary>
    private void AssertConversionRefused(string folder, string expected)
    {
        var (code, stdout, error) = Run("convert", folder, Path.Combine(_folder, "out.gguf"));
        Assert.Equal(2, code);
        Assert.Contains(expected, error);
        Assert.Equal("", stdout);
        Assert.Empty(Directory.GetFiles(_folder, "out.gguf*"));
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = SlmKit.Cli.Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Theory]
    [InlineData("llama", QuantizationTarget.Q8_0)]
    [InlineData("llama", QuantizationTarget.Q4_K_M)]
    [InlineData("qwen2", QuantizationTarget.Q4_K_M)]
    public void Quantizing_a_folder_writes_the_bytes_of_quantizing_the_gguf_slm_convert_makes_of_it(string modelType, QuantizationTarget target)
    {
        string folder = Folder("hf", modelType);
        string direct = Path.Combine(_folder, $"direct-{target}.gguf");
        var (code, _, error) = Run("quantize", folder, direct, "--type", target.ToString(), "--threads", "2");
        Assert.True(code == 0, error);
        Assert.Contains("wrote", error);

        string converted = Path.Combine(_folder, "converted-f16.gguf");
        (code, _, error) = Run("convert", folder, converted);
        Assert.True(code == 0, error);
        string viaGguf = Path.Combine(_folder, $"via-gguf-{target}.gguf");
        var summary = ModelQuantizer.Quantize(converted, viaGguf, target);

        Assert.Equal(File.ReadAllBytes(viaGguf), File.ReadAllBytes(direct));
        // Nothing else is left beside the output (no temporary GGUF, no .tmp).
        Assert.Equal(["converted-f16.gguf", $"direct-{target}.gguf", $"via-gguf-{target}.gguf"],
            Directory.GetFiles(_folder).Select(Path.GetFileName).Order());

        // Every matrix took the target's types (rows of 256 and 768: no fallbacks), the norms stayed F32.
        using var gguf = GgufFile.Open(direct);
        output.WriteLine(string.Join(", ", summary.TensorsByType.OrderBy(p => p.Key).Select(p => $"{p.Key}×{p.Value}")));
        foreach (var t in gguf.Tensors)
        {
            GgmlType[] allowed = t.Dimensions.Count == 1 ? [GgmlType.F32]
                : target == QuantizationTarget.Q8_0 ? [GgmlType.Q8_0]
                : [GgmlType.Q4_K, GgmlType.Q6_K];
            Assert.True(allowed.Contains(t.Type), $"{t.Name} is {t.Type}");
        }
        Assert.Equal((long)QuantizationPlan.FileType(target), gguf.GetInteger("general.file_type"));
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void A_folder_quantized_here_runs_in_slmkit_and_llama_cpp_close_to_the_unquantized_model(string modelType, QuantizationTarget target, LLamaFtype ftype)
    {
        string folder = Folder("hf", modelType);
        string ours = Path.Combine(_folder, $"{target}.gguf");
        var reports = new List<QuantizationProgress>();
        ModelQuantizer.Quantize(folder, ours, target, progress: new Recorder(reports));
        // 2 layers × 9 (× 12 with Qwen2's three biases) + embeddings, norm and (but for Gemma's tied one) head
        int tensors = modelType switch { "qwen2" => 27, "gemma" => 20, _ => 21 };
        Assert.Equal(Enumerable.Range(1, tensors), reports.Select(r => r.Index));
        Assert.All(reports, r => Assert.Equal(tensors, r.Count));
        Assert.Equal(reports[^1].InputBytesTotal, reports[^1].InputBytesDone);
        int[] tokens = ModelTestHelpers.RandomTokens(64, s_spec.Vocab, 5);

        // SlmKit: the quantized file against the folder itself, run unquantized (F16 weights, F32 arithmetic).
        float[] reference = ModelTestHelpers.OurLogits(folder, tokens);
        float[] quantized = ModelTestHelpers.OurLogits(ours, tokens);
        var (worst, scale, _, _) = QuantizedOracleTests.Compare(reference, quantized, tokens.Length);
        double rms = RelativeRms(reference, quantized);
        output.WriteLine($"{target} vs unquantized (SlmKit): max |Δlogit| {worst / scale:P3} of scale {scale:G4}, RMS {rms:P3}, top-1 {StrictTop1(reference, quantized, tokens.Length):P1}");

        // llama.cpp's own quantization of the same weights (the converted F16 GGUF), against llama.cpp on that F16 file.
        string converted = Path.Combine(_folder, "converted-f16.gguf");
        HuggingFaceToGguf.Convert(folder, converted);
        string theirs = LlamaCppQuantizer.Quantize(converted, Path.Combine(_folder, $"{target}-llama.gguf"), ftype);
        float[] llamaOnF16 = LlamaCppForward.Logits(converted, tokens);
        float[] llamaOnTheirs = LlamaCppForward.Logits(theirs, tokens);
        double theirRms = RelativeRms(llamaOnF16, llamaOnTheirs);
        var (theirWorst, theirScale, _, _) = QuantizedOracleTests.Compare(llamaOnF16, llamaOnTheirs, tokens.Length);
        output.WriteLine($"{target} vs unquantized (llama.cpp, its own quantization): max |Δlogit| {theirWorst / theirScale:P3}, RMS {theirRms:P3}, top-1 {StrictTop1(llamaOnF16, llamaOnTheirs, tokens.Length):P1}");
        Assert.True(worst <= UnquantizedTolerance(target) * scale, $"max |Δlogit| {worst:G4} exceeds {UnquantizedTolerance(target)} × {scale:G4}");
        // As close to the unquantized model as llama.cpp's own quantization is (the margins cover the two engines'
        // different activation rounding: measured ratios 1.01 for Q8_0 and 1.00 for Q4_K_M, one position of top-1).
        Assert.True(rms <= 1.1 * theirRms, $"RMS error {rms:P3} vs llama.cpp's own quantization's {theirRms:P3}");
        Assert.True(StrictTop1(reference, quantized, tokens.Length) >= StrictTop1(llamaOnF16, llamaOnTheirs, tokens.Length) - 3.0 / tokens.Length,
            "top-1 agreement with the unquantized model falls short of llama.cpp's own quantization by more than 3 of 64 positions");

        // llama.cpp loads our file and gives the logits of its own quantization.
        float[] llamaOnOurs = LlamaCppForward.Logits(ours, tokens);
        var (llamaWorst, llamaScale, llamaAgreement, llamaTies) = QuantizedOracleTests.Compare(llamaOnTheirs, llamaOnOurs, tokens.Length);
        output.WriteLine($"{target}: llama.cpp on ours vs on its own: max |Δlogit| {llamaWorst / llamaScale:P3} of scale, top-1 {llamaAgreement:P1} ({llamaTies} near-ties)");
        Assert.True(llamaAgreement >= 0.99, $"top-1 agreement {llamaAgreement:P1}");
        Assert.True(llamaWorst <= QuantizedOracleTests.Tolerance(ftype) * llamaScale, $"max |Δlogit| {llamaWorst:G4} exceeds {QuantizedOracleTests.Tolerance(ftype)} × {llamaScale:G4}");

        // And both engines agree on our file.
        var (engineWorst, engineScale, engineAgreement, engineTies) = QuantizedOracleTests.Compare(llamaOnOurs, quantized, tokens.Length);
        output.WriteLine($"{target}: SlmKit vs llama.cpp on our file: max |Δlogit| {engineWorst / engineScale:P3} of scale, top-1 {engineAgreement:P1} ({engineTies} near-ties)");
        Assert.True(engineAgreement >= 0.99 && engineWorst <= QuantizedOracleTests.Tolerance(ftype) * engineScale,
            $"SlmKit vs llama.cpp on our file: {engineWorst / engineScale:P3}, {engineAgreement:P1}");
    }

    /// <summary>
    /// Bounds for a quantized model against its unquantized source, max |Δlogit| relative to the largest |logit|. Measured
    /// on this model (64 positions, SlmKit on both): Q8_0 1.5–1.7 %, Q4_K_M 13.0 % (llama.cpp on its own quantization of the
    /// same weights: 1.49 % and 12.7 %). Random uniform weights have no structure for 4 bits to keep, so the Q4_K_M error
    /// is large next to a trained model's; the bounds are ≈ 1.5× the measured values.
    /// </summary>
    private static double UnquantizedTolerance(QuantizationTarget target) => target switch
    {
        QuantizationTarget.Q8_0 => 0.025,
        _ => 0.2,
    };

    private static double StrictTop1(float[] expected, float[] actual, int positions)
    {
        int vocab = expected.Length / positions, same = 0;
        for (int p = 0; p < positions; p++)
            same += SlmKit.Inference.Sampler.ArgMax(expected.AsSpan(p * vocab, vocab)) == SlmKit.Inference.Sampler.ArgMax(actual.AsSpan(p * vocab, vocab)) ? 1 : 0;
        return same / (double)positions;
    }

    private static double RelativeRms(float[] expected, float[] actual)
    {
        double error = 0, energy = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            error += (expected[i] - actual[i]) * (double)(expected[i] - actual[i]);
            energy += expected[i] * (double)expected[i];
        }
        return Math.Sqrt(error / energy);
    }

    public static TheoryData<string, string> Breakages => new()
    {
        { "no-config", "config.json is missing" },
        { "truncated-safetensors", "model.safetensors" },
        { "no-tokenizer", "tokenizer.json" },
        { "wrong-head-count", "heads of" },
    };

    [Theory]
    [MemberData(nameof(Breakages))]
    public void A_broken_folder_is_refused_in_one_line_and_leaves_no_output(string breakage, string expected)
    {
        string folder = Folder(breakage);
        string weights = Path.Combine(folder, "model.safetensors");
        switch (breakage)
        {
            case "no-config":
                File.Delete(Path.Combine(folder, "config.json"));
                break;
            case "truncated-safetensors":
                byte[] bytes = File.ReadAllBytes(weights);
                File.WriteAllBytes(weights, bytes[..(bytes.Length - 4096)]);
                break;
            case "no-tokenizer":
                File.Delete(Path.Combine(folder, "tokenizer.json"));
                break;
            case "wrong-head-count":
                string config = Path.Combine(folder, "config.json");
                File.WriteAllText(config, File.ReadAllText(config).Replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 2"));
                break;
        }
        string destination = Path.Combine(_folder, "out.gguf");
        var (code, stdout, error) = Run("quantize", folder, destination, "--type", "Q4_K_M");
        output.WriteLine(error);
        Assert.Equal(2, code);
        string[] lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Single(lines);
        Assert.StartsWith("slm: ", lines[0]);
        Assert.Contains(expected, lines[0]);
        Assert.Equal("", stdout);
        Assert.Empty(Directory.GetFiles(_folder, "out.gguf*"));

        // The library refuses it the same way.
        Assert.Throws<ModelFileException>(() => ModelQuantizer.Quantize(folder, destination, QuantizationTarget.Q8_0));
        Assert.Empty(Directory.GetFiles(_folder, "out.gguf*"));
    }

    /// <summary>Records on the quantizing thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class Recorder(List<QuantizationProgress> reports) : IProgress<QuantizationProgress>
    {
        public void Report(QuantizationProgress value) => reports.Add(value);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
