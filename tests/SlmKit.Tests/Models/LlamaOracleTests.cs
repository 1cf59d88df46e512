using SlmKit.Inference;
using SlmKit.Models;

namespace SlmKit.Tests.Models;

/// <summary>
/// Our Llama forward pass against llama.cpp's on random models written by our GGUF writer, and the Hugging Face
/// twin of each model against its GGUF.
/// </summary>
public sealed class LlamaOracleTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-oracle-").FullName;

    public static TheoryData<RandomLlamaSpec> Specs => new(RandomLlama.OracleSpecs());

    private static double Tolerance(RandomLlamaSpec spec) => spec.Type == SlmKit.Tensors.GgmlType.F16 ? 1e-2 : 1e-3;

    [Theory]
    [MemberData(nameof(Specs))]
    public void Logits_of_every_position_match_llama_cpp(RandomLlamaSpec spec)
    {
        string path = new RandomLlama(spec).WriteGguf(Path.Combine(_folder, spec.Name + ".gguf"));
        int[] tokens = ModelTestHelpers.RandomTokens(64, spec.Vocab, spec.Seed);
        ModelTestHelpers.AssertLogitsMatch(LlamaCppForward.Logits(path, tokens), ModelTestHelpers.OurLogits(path, tokens), Tolerance(spec));
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void Greedy_continuations_are_identical_to_llama_cpp(RandomLlamaSpec spec)
    {
        string path = new RandomLlama(spec).WriteGguf(Path.Combine(_folder, spec.Name + ".gguf"));
        int[] prompt = ModelTestHelpers.RandomTokens(8, spec.Vocab, spec.Seed + 100);
        int[] expected = LlamaCppForward.Greedy(path, prompt, 32);

        Assert.Equal(expected, ModelTestHelpers.OurGreedy(path, prompt, 32));
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void The_hugging_face_twin_gives_the_same_logits_as_the_gguf(RandomLlamaSpec spec)
    {
        var model = new RandomLlama(spec);
        string gguf = model.WriteGguf(Path.Combine(_folder, spec.Name + ".gguf"));
        string hf = model.WriteHuggingFace(Path.Combine(_folder, spec.Name + "-hf"));
        int[] tokens = ModelTestHelpers.RandomTokens(40, spec.Vocab, spec.Seed + 7);
        float[] expected = ModelTestHelpers.OurLogits(gguf, tokens);
        float[] actual = ModelTestHelpers.OurLogits(hf, tokens);
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4 * scale, $"logit {i}: {actual[i]} vs {expected[i]}");
    }

    [Fact]
    public void Prefill_then_token_by_token_decoding_equals_one_batch()
    {
        var spec = RandomLlama.OracleSpecs().First(s => s.Name.StartsWith("gqa4", StringComparison.Ordinal));
        string path = new RandomLlama(spec).WriteGguf(Path.Combine(_folder, "kv.gguf"));
        int[] tokens = ModelTestHelpers.RandomTokens(100, spec.Vocab, 11);
        float[] whole = ModelTestHelpers.OurLogits(path, tokens);

        using var model = ModelLoader.Load(path);
        var cache = model.CreateCache(tokens.Length);
        var prefill = new float[70 * spec.Vocab];
        model.Forward(cache, tokens.AsSpan(0, 70), prefill, allPositions: true);
        var step = new float[spec.Vocab];
        for (int i = 70; i < tokens.Length; i++)
        {
            model.Forward(cache, tokens.AsSpan(i, 1), step, allPositions: false);
            for (int v = 0; v < spec.Vocab; v++)
                Assert.Equal(whole[i * spec.Vocab + v], step[v], 1e-4);
        }
        for (int i = 0; i < prefill.Length; i++)
            Assert.Equal(whole[i], prefill[i], 1e-4);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
