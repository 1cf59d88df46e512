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
}
