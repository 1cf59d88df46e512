using SlmKit.Inference;
using SlmKit.Models;

namespace SlmKit.Tests.Models;

/// <summary>What the forward-pass tests share: seeded token sequences and our logits for a model file.</summary>
internal static class ModelTestHelpers
{
    /// <summary>BOS (id 1) then <paramref name="count"/> − 1 seeded ids above the three special ids.</summary>
    public static int[] RandomTokens(int count, int vocab, int seed)
    {
        var random = new Random(seed);
        var tokens = new int[count];
        tokens[0] = 1;
        for (int i = 1; i < count; i++)
            tokens[i] = random.Next(3, vocab);
        return tokens;
    }

    /// <summary>SlmKit's logits of every position, row-major [tokens, vocab], from an empty cache.</summary>
    public static float[] OurLogits(string path, int[] tokens)
    {
        using var model = ModelLoader.Load(path);
        var cache = model.CreateCache(tokens.Length);
        var logits = new float[tokens.Length * model.VocabSize];
        model.Forward(cache, tokens, logits, allPositions: true);
        return logits;
    }

    /// <summary>Greedy continuation by SlmKit: feed the prompt, then the argmax token, one at a time.</summary>
    public static int[] OurGreedy(string path, int[] prompt, int count)
    {
        using var model = ModelLoader.Load(path);
        var cache = model.CreateCache(prompt.Length + count);
        var logits = new float[model.VocabSize];
        model.Forward(cache, prompt, logits, allPositions: false);
        var tokens = new int[count];
        for (int i = 0; i < count; i++)
        {
            tokens[i] = Sampler.ArgMax(logits);
            model.Forward(cache, [tokens[i]], logits, allPositions: false);
        }
        return tokens;
    }

    /// <summary>Asserts max |expected − actual| ≤ tolerance × the largest |expected| logit, which must exceed 1.</summary>
    public static void AssertLogitsMatch(float[] expected, float[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(Math.Abs);
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
            worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        Assert.True(scale > 1, $"logit scale {scale} too small for a meaningful comparison");
        Assert.True(worst <= tolerance * scale, $"max |Δlogit| = {worst:G4} exceeds {tolerance} × scale {scale:G4}");
    }
}
