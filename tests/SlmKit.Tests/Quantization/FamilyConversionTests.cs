using LLama.Native;
using SlmKit.Formats;
using SlmKit.Models;
using SlmKit.Quantization;
using SlmKit.Tensors;
using SlmKit.Tests.Models;

namespace SlmKit.Tests.Quantization;

/// <summary>
/// <c>slm convert</c> and <c>slm quantize</c> on a Hugging Face folder of every family that converts: llama.cpp, the
/// independent engine, runs the written file as SlmKit runs the folder itself. The folders are the Hugging Face twins of
/// <see cref="RandomDecoder"/> (transformers' names, layouts and config fields per family), with the committed byte-level
/// tokenizer, so their vocabulary is its 2048 tokens.
/// </summary>
public sealed class FamilyConversionTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-familyconv-").FullName;

    private static string DefaultTokenizer => Path.Combine(SharedAssets.RepositoryRoot, "models", "default", "tokenizer");

    private const int Vocab = 2048;

    private static IEnumerable<RandomDecoderSpec> AllSpecs() =>
    [
        // Llama 3.2's rope scaling, its original length short enough that the test's frequencies fall in all three bands.
        new("llama", "llama3-rope-f16", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 160, Vocab: Vocab, Tied: true, Type: GgmlType.F16, Seed: 201) { Llama3RopeOriginal = 256 },
        new("smollm3", "nope-f16", Dim: 64, Layers: 4, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 160, Vocab: Vocab, Tied: true, Type: GgmlType.F16, Seed: 216) { RopeTheta = 5000000f },
        new("qwen3", "wide-heads-f16", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 32, Ffn: 160, Vocab: Vocab, Tied: true, Type: GgmlType.F16, Seed: 214) { RopeTheta = 1000000f },
        new("gemma2", "window16-f32", Dim: 64, Layers: 3, Heads: 4, KvHeads: 2, HeadDim: 32, Ffn: 128, Vocab: Vocab, Tied: true, Type: GgmlType.F32, Seed: 202) { SlidingWindow = 16 },
        new("gemma3", "scaled-f32", Dim: 64, Layers: 7, Heads: 2, KvHeads: 1, HeadDim: 32, Ffn: 128, Vocab: Vocab, Tied: true, Type: GgmlType.F32, Seed: 215) { SlidingWindow = 16, RopeTheta = 1000000f, LinearRopeFactor = 8f },
        new("phi3", "fused-f16", Dim: 96, Layers: 2, Heads: 6, KvHeads: 6, HeadDim: 16, Ffn: 160, Vocab: Vocab, Tied: false, Type: GgmlType.F16, Seed: 203),
        new("phi3", "longrope-long-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 128, Vocab: Vocab, Tied: false, Type: GgmlType.F32, Seed: 204)
        { Context = 256, LongRopeOriginal = 32 },
        new("stablelm", "sequential-qkvbias-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 160, Vocab: Vocab, Tied: false, Type: GgmlType.F32, Seed: 205) { RotaryDim = 4, Parallel = false, Biases = true },
        new("stablelm", "parallel-f16", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 160, Vocab: Vocab, Tied: false, Type: GgmlType.F16, Seed: 206) { RotaryDim = 8, Parallel = true },
        new("olmo", "clip-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 160, Vocab: Vocab, Tied: true, Type: GgmlType.F32, Seed: 207) { ClipQkv = 0.6f },
        new("olmo2", "gqa-f16", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 160, Vocab: Vocab, Tied: false, Type: GgmlType.F16, Seed: 217) { RopeTheta = 500000f },
        new("minicpm", "tied-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 160, Vocab: Vocab, Tied: true, Type: GgmlType.F32, Seed: 208),
        new("nemotron", "partial-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 256, Vocab: Vocab, Tied: false, Type: GgmlType.F32, Seed: 209) { RotaryDim = 8 },
        new("phi2", "partial-f16", Dim: 128, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 32, Ffn: 256, Vocab: Vocab, Tied: false, Type: GgmlType.F16, Seed: 210) { RotaryDim = 12 },
        new("gptneox", "sequential-f16", Dim: 96, Layers: 2, Heads: 3, KvHeads: 3, HeadDim: 32, Ffn: 384, Vocab: Vocab, Tied: false, Type: GgmlType.F16, Seed: 211) { RotaryDim = 8, Parallel = false },
        new("gpt2", "tied-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 256, Vocab: Vocab, Tied: true, Type: GgmlType.F32, Seed: 212) { Context = 128 },
        new("bloom", "heads6-f32", Dim: 96, Layers: 2, Heads: 6, KvHeads: 6, HeadDim: 16, Ffn: 384, Vocab: Vocab, Tied: true, Type: GgmlType.F32, Seed: 213),
    ];

    public static TheoryData<RandomDecoderSpec> Specs => new(AllSpecs());

    /// <summary>
    /// The folder's name becomes general.name, and llama.cpp looks up "&lt;s&gt;", "&lt;/s&gt;" and "&lt;unk&gt;" in the
    /// vocabulary of any model whose name contains "phi3" (Phi-3's tokenizer has them; the test tokenizer does not), so
    /// the folders are named by seed rather than by family.
    /// </summary>
    private string Folder(RandomDecoderSpec spec) =>
        new RandomDecoder(spec).WriteHuggingFace(Path.Combine(_folder, $"model-{spec.Seed}"), DefaultTokenizer);

    [Theory]
    [MemberData(nameof(Specs))]
    public void A_folder_converts_to_a_gguf_that_llama_cpp_runs_as_slmkit_runs_the_folder(RandomDecoderSpec spec)
    {
        string folder = Folder(spec);
        string converted = Path.Combine(_folder, spec.Family + ".gguf");
        var (code, _, error) = Run("convert", folder, converted);
        Assert.True(code == 0, error);
        using (var gguf = GgufFile.Open(converted))
        {
            Assert.Equal(RandomDecoder.TraitsOf(spec).Arch, gguf.Architecture);
            // The rotary tables llama.cpp reads as tensors, written where the config scales its rope.
            Assert.Equal(spec.Llama3RopeOriginal > 0, gguf.Find("rope_freqs.weight") is not null);
            Assert.Equal(spec.LongRopeOriginal > 0, gguf.Find("rope_factors_long.weight") is not null);
        }

        int[] tokens = ModelTestHelpers.RandomTokens(48, Vocab, spec.Seed);
        float[] fromFolder = ModelTestHelpers.OurLogits(folder, tokens);
        // SlmKit on the file computes the folder's model.
        ModelTestHelpers.AssertLogitsMatch(fromFolder, ModelTestHelpers.OurLogits(converted, tokens), 1e-4);
        // llama.cpp on the file computes it too: FamilyOracleTests' bounds (it rounds activations to F16 for F16 products).
        ModelTestHelpers.AssertLogitsMatch(LlamaCppForward.Logits(converted, tokens), fromFolder, spec.Type == GgmlType.F16 ? 1e-2 : 1e-3);
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void A_folder_quantized_to_q8_0_runs_in_llama_cpp_as_in_slmkit(RandomDecoderSpec spec)
    {
        string folder = Folder(spec);
        string quantized = Path.Combine(_folder, spec.Family + "-Q8_0.gguf");
        var (code, _, error) = Run("quantize", folder, quantized, "--type", "Q8_0");
        Assert.True(code == 0, error);

        int[] tokens = ModelTestHelpers.RandomTokens(48, Vocab, spec.Seed + 1);
        float[] ours = ModelTestHelpers.OurLogits(quantized, tokens);
        var (worst, scale, agreement, ties) = QuantizedOracleTests.Compare(LlamaCppForward.Logits(quantized, tokens), ours, tokens.Length);
        output.WriteLine($"{spec}: SlmKit vs llama.cpp on the Q8_0 file: max |Δlogit| {worst / scale:P3} of scale, top-1 {agreement:P1} ({ties} near-ties)");
        Assert.True(agreement >= 0.99, $"top-1 agreement {agreement:P1}");
        Assert.True(worst <= QuantizedOracleTests.Tolerance(LLamaFtype.MOSTLY_Q8_0) * scale, $"max |Δlogit| {worst:G4} exceeds {QuantizedOracleTests.Tolerance(LLamaFtype.MOSTLY_Q8_0)} × {scale:G4}");
    }

    [Fact]
    public void A_gemma2_folder_whose_query_scale_llama_cpp_would_not_use_is_refused_naming_the_field()
    {
        var spec = new RandomDecoderSpec("gemma2", "scalar", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 32, Ffn: 128, Vocab: Vocab, Tied: true, Type: GgmlType.F32, Seed: 220) { SlidingWindow = 16 };
        string folder = Folder(spec);
        string config = Path.Combine(folder, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"query_pre_attn_scalar\": 32", "\"query_pre_attn_scalar\": 16"));
        AssertConversionRefused(folder, "query_pre_attn_scalar");
    }

    [Fact]
    public void A_gemma3_folder_whose_layer_pattern_llama_cpp_would_not_use_is_refused_naming_the_layer()
    {
        var spec = new RandomDecoderSpec("gemma3", "pattern", Dim: 64, Layers: 6, Heads: 2, KvHeads: 1, HeadDim: 32, Ffn: 128, Vocab: Vocab, Tied: true, Type: GgmlType.F32, Seed: 223) { SlidingWindow = 16 };
        string folder = Folder(spec);
        string config = Path.Combine(folder, "config.json");
        // Layer 2 made global: SlmKit runs such a folder as transformers would, but llama.cpp's gemma3 fixes the pattern.
        string text = File.ReadAllText(config);
        int third = text.IndexOf("\"sliding_attention\"", text.IndexOf("\"sliding_attention\"", text.IndexOf("\"sliding_attention\"") + 1) + 1);
        File.WriteAllText(config, text[..third] + "\"full_attention\"" + text[(third + "\"sliding_attention\"".Length)..]);
        AssertConversionRefused(folder, "layer 2 is global");
    }

    [Fact]
    public void A_tied_olmo2_folder_is_refused_as_llama_cpp_needs_its_head()
    {
        var spec = new RandomDecoderSpec("olmo2", "tied", Dim: 64, Layers: 1, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 160, Vocab: Vocab, Tied: true, Type: GgmlType.F32, Seed: 224);
        AssertConversionRefused(Folder(spec), "requires output.weight");
    }

    [Fact]
    public void A_folder_whose_activation_llama_cpp_would_not_apply_is_refused_naming_both()
    {
        var spec = new RandomDecoderSpec("llama", "gelu", Dim: 64, Layers: 1, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 160, Vocab: Vocab, Tied: true, Type: GgmlType.F32, Seed: 221);
        string folder = Folder(spec);
        string config = Path.Combine(folder, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""));
        string error = AssertConversionRefused(folder, "GeluErf");
        Assert.Contains("Silu", error);
    }

    [Fact]
    public void A_family_llama_cpp_has_no_converter_for_here_is_refused_listing_those_that_convert()
    {
        var spec = new RandomDecoderSpec("openelm", "layerwise", Dim: 64, Layers: 3, Heads: 2, KvHeads: 1, HeadDim: 16, Ffn: 96, Vocab: Vocab, Tied: true, Type: GgmlType.F32, Seed: 222)
        { LayerHeads = [2, 4, 4], LayerKvHeads = [1, 2, 2], LayerFfn = [96, 144, 208] };
        string error = AssertConversionRefused(Folder(spec), "converting model_type 'openelm' is not supported yet");
        Assert.Contains("gemma2", error);
        Assert.Contains("phi3", error);
    }

    /// <summary><c>slm convert</c> refuses <paramref name="folder"/>: exit code 2, one line naming the reason, nothing written.</summary>
    private string AssertConversionRefused(string folder, string expected)
    {
        var (code, stdout, error) = Run("convert", folder, Path.Combine(_folder, "out.gguf"));
        output.WriteLine(error);
        Assert.Equal(2, code);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(expected, error);
        Assert.Equal("", stdout);
        Assert.Empty(Directory.GetFiles(_folder, "out.gguf*"));
        return error;
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = SlmKit.Cli.Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
