using SlmKit.Inference;
using SlmKit.Models;
using SlmKit.Tensors;

namespace SlmKit.Tests.Models;

/// <summary>
/// Every family with a llama.cpp architecture against llama.cpp on random models written by our GGUF writer, and the
/// Hugging Face twin of each model against its GGUF.
/// </summary>
public sealed class FamilyOracleTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-family-").FullName;

    public static IEnumerable<RandomDecoderSpec> AllSpecs() =>
    [
        new("qwen2", "gqa-untied-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 160, Vocab: 300, Tied: false, Type: GgmlType.F32, Seed: 11) { RopeTheta = 1000000f },
        new("qwen2", "tied-f16", Dim: 96, Layers: 2, Heads: 6, KvHeads: 2, HeadDim: 16, Ffn: 192, Vocab: 400, Tied: true, Type: GgmlType.F16, Seed: 12),
        // Five layers: the fourth attends without rotary positions.
        new("smollm3", "nope-f32", Dim: 64, Layers: 5, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 160, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 16) { RopeTheta = 5000000f },
        // Qwen3-0.6B's proportions: a head size (32) above hidden ÷ heads (16), so q is wider than the hidden state.
        new("qwen3", "wide-heads-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 32, Ffn: 160, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 14) { RopeTheta = 1000000f },
        new("qwen3", "untied-f16", Dim: 96, Layers: 2, Heads: 6, KvHeads: 3, HeadDim: 16, Ffn: 192, Vocab: 400, Tied: false, Type: GgmlType.F16, Seed: 15),
        new("qwen", "fused-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 96, Vocab: 300, Tied: false, Type: GgmlType.F32, Seed: 13),
        new("gemma", "headdim32-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 1, HeadDim: 32, Ffn: 160, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 21),
        new("gemma2", "window16-f32", Dim: 64, Layers: 3, Heads: 4, KvHeads: 2, HeadDim: 32, Ffn: 128, Vocab: 320, Tied: true, Type: GgmlType.F32, Seed: 31) { SlidingWindow = 16 },
        // Six layers: five sliding (window 16, their own rotation base) and a global one, as Gemma 3 alternates them.
        new("gemma3", "pattern-f32", Dim: 64, Layers: 6, Heads: 4, KvHeads: 1, HeadDim: 32, Ffn: 128, Vocab: 320, Tied: true, Type: GgmlType.F32, Seed: 33) { SlidingWindow = 16, RopeTheta = 1000000f },
        // Linear rope scaling (Gemma 3 4B and up), which applies to the global layers only.
        new("gemma3", "scaled-f16", Dim: 64, Layers: 7, Heads: 2, KvHeads: 1, HeadDim: 32, Ffn: 128, Vocab: 320, Tied: true, Type: GgmlType.F16, Seed: 34) { SlidingWindow = 16, RopeTheta = 1000000f, LinearRopeFactor = 8f },
        new("phi2", "partial-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 256, Vocab: 300, Tied: false, Type: GgmlType.F32, Seed: 41) { RotaryDim = 6 },
        new("phi2", "partial-f16", Dim: 128, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 32, Ffn: 256, Vocab: 500, Tied: false, Type: GgmlType.F16, Seed: 42) { RotaryDim = 12 },
        new("phi3", "fused-f32", Dim: 96, Layers: 2, Heads: 6, KvHeads: 6, HeadDim: 16, Ffn: 160, Vocab: 320, Tied: false, Type: GgmlType.F32, Seed: 51),
        // Long-rope: 4096 positions trained from 512, so the short factors at the tests' contexts (64 and 41 in llama.cpp).
        new("phi3", "longrope-short-f32", Dim: 96, Layers: 2, Heads: 6, KvHeads: 2, HeadDim: 16, Ffn: 160, Vocab: 320, Tied: false, Type: GgmlType.F32, Seed: 52)
        { Context = 4096, LongRopeOriginal = 512 },
        // Original length 32: every test context (ours 40 and 64, llama.cpp's n_ctx ≥ 41) is longer, so both use the long factors.
        new("phi3", "longrope-long-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 128, Vocab: 300, Tied: false, Type: GgmlType.F32, Seed: 53)
        { Context = 256, LongRopeOriginal = 32 },
        new("stablelm", "sequential-qkvbias-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 160, Vocab: 300, Tied: false, Type: GgmlType.F32, Seed: 61) { RotaryDim = 4, Parallel = false, Biases = true },
        new("stablelm", "parallel-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 160, Vocab: 300, Tied: false, Type: GgmlType.F32, Seed: 62) { RotaryDim = 8, Parallel = true },
        new("gptneox", "parallel-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 256, Vocab: 300, Tied: false, Type: GgmlType.F32, Seed: 71) { RotaryDim = 4 },
        new("gptneox", "sequential-f16", Dim: 96, Layers: 2, Heads: 3, KvHeads: 3, HeadDim: 32, Ffn: 384, Vocab: 400, Tied: false, Type: GgmlType.F16, Seed: 72) { RotaryDim = 8, Parallel = false },
        new("gpt2", "tied-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 256, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 81) { Context = 128 },
        new("olmo", "clip-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 160, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 91) { ClipQkv = 0.6f },
        new("olmo", "untied-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 160, Vocab: 300, Tied: false, Type: GgmlType.F32, Seed: 92),
        new("olmo2", "gqa-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 160, Vocab: 300, Tied: false, Type: GgmlType.F32, Seed: 93) { RopeTheta = 500000f },
        // llama.cpp's olmo2 requires a head of its own (OLMo 2 checkpoints are untied).
        new("olmo2", "mha-f16", Dim: 96, Layers: 2, Heads: 6, KvHeads: 6, HeadDim: 16, Ffn: 192, Vocab: 300, Tied: false, Type: GgmlType.F16, Seed: 94),
        new("minicpm", "tied-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 160, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 101),
        new("nemotron", "partial-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 256, Vocab: 300, Tied: false, Type: GgmlType.F32, Seed: 111) { RotaryDim = 8 },
        // Heads 2, 4, 4 and KV heads 1, 2, 2 are what qkv_multipliers (0.5, 1.0) with 2 GQA groups give for 3 layers of 64.
        new("openelm", "layerwise-f32", Dim: 64, Layers: 3, Heads: 2, KvHeads: 1, HeadDim: 16, Ffn: 96, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 131)
        { LayerHeads = [2, 4, 4], LayerKvHeads = [1, 2, 2], LayerFfn = [96, 144, 208] },
        new("bloom", "heads6-f32", Dim: 96, Layers: 2, Heads: 6, KvHeads: 6, HeadDim: 16, Ffn: 384, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 121),
    ];

    public static TheoryData<RandomDecoderSpec> Specs => new(AllSpecs());

    private static double Tolerance(RandomDecoderSpec spec) => spec.Type == GgmlType.F16 ? 1e-2 : 1e-3;

    [Theory]
    [MemberData(nameof(Specs))]
    public void Logits_of_every_position_match_llama_cpp(RandomDecoderSpec spec)
    {
        string path = new RandomDecoder(spec).WriteGguf(Path.Combine(_folder, spec.Name + ".gguf"));
        int[] tokens = ModelTestHelpers.RandomTokens(64, spec.Vocab, spec.Seed);
        ModelTestHelpers.AssertLogitsMatch(LlamaCppForward.Logits(path, tokens), ModelTestHelpers.OurLogits(path, tokens), Tolerance(spec));
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void Greedy_continuations_are_identical_to_llama_cpp(RandomDecoderSpec spec)
    {
        string path = new RandomDecoder(spec).WriteGguf(Path.Combine(_folder, spec.Name + ".gguf"));
        int[] prompt = ModelTestHelpers.RandomTokens(8, spec.Vocab, spec.Seed + 100);
        int[] expected = LlamaCppForward.Greedy(path, prompt, 32);

        using var model = ModelLoader.Load(path);
        Assert.Equal(spec.Family, model.Info.Family);
        Assert.Equal(expected, ModelTestHelpers.OurGreedy(path, prompt, 32));
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void The_hugging_face_twin_gives_the_same_logits_as_the_gguf(RandomDecoderSpec spec)
    {
        var random = new RandomDecoder(spec);
        string gguf = random.WriteGguf(Path.Combine(_folder, spec.Name + ".gguf"));
        string hf = random.WriteHuggingFace(Path.Combine(_folder, spec.Name + "-hf"));
        int[] tokens = ModelTestHelpers.RandomTokens(40, spec.Vocab, spec.Seed + 7);
        float[] expected = ModelTestHelpers.OurLogits(gguf, tokens);
        float[] actual = ModelTestHelpers.OurLogits(hf, tokens);
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4 * scale, $"logit {i}: {actual[i]} vs {expected[i]}");

        foreach (string path in new[] { gguf, hf })
        {
            using var model = (DecoderModel)ModelLoader.Load(path);
            Assert.Equal(spec.Family, model.Info.Family);
            Assert.Equal(model.Config.ParameterCount(), model.Info.ParameterCount);
        }
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void A_batched_decode_step_over_several_sequences_equals_each_sequence_alone(RandomDecoderSpec spec)
    {
        string path = new RandomDecoder(spec).WriteGguf(Path.Combine(_folder, spec.Name + "-batch.gguf"));
        using var model = ModelLoader.Load(path);
        int vocab = model.VocabSize;
        int[][] prompts = [ModelTestHelpers.RandomTokens(5, vocab, 1), ModelTestHelpers.RandomTokens(1, vocab, 2), ModelTestHelpers.RandomTokens(23, vocab, 3)];
        var batchedCaches = prompts.Select(_ => model.CreateCache(40)).ToArray();
        var soloCaches = prompts.Select(_ => model.CreateCache(40)).ToArray();
        var scratch = new float[vocab];
        for (int i = 0; i < prompts.Length; i++)
        {
            model.Forward(batchedCaches[i], prompts[i], scratch, allPositions: false);
            model.Forward(soloCaches[i], prompts[i], scratch, allPositions: false);
        }
        var batched = new float[prompts.Length * vocab];
        for (int step = 0; step < 4; step++)
        {
            int[] next = [.. prompts.Select((_, i) => (i * 31 + step * 17 + 3) % vocab)];
            model.ForwardBatch(batchedCaches, next, batched);
            for (int i = 0; i < prompts.Length; i++)
            {
                model.Forward(soloCaches[i], [next[i]], scratch, allPositions: false);
                Assert.Equal(scratch, batched.AsSpan(i * vocab, vocab).ToArray());
                Assert.Equal(soloCaches[i].Length, batchedCaches[i].Length);
            }
        }
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
