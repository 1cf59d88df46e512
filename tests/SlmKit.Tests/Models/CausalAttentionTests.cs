using SlmKit.Kernels;
using SlmKit.Models;

namespace SlmKit.Tests.Models;

/// <summary>
/// The attention kernel against a float64 reference written from the definition: softmax(scale·q·kᵀ (+ soft cap,
/// + ALiBi, within the window)) · v, for every query position, head and option, on one and on several threads (where
/// decoding splits each head's keys in parts and merges their partial softmax sums).
/// </summary>
public sealed class CausalAttentionTests
{
    public static TheoryData<int, int, int, int, int, int, bool, bool> Cases() => new()
    {
        // headDim, heads, kvHeads, start, tokens, window, softCap, alibi
        { 64, 9, 3, 150, 1, 0, false, false },    // SmolLM-135M decoding: nine heads, split in parts on two threads
        { 64, 15, 5, 77, 1, 0, false, false },    // SmolLM-360M decoding
        { 64, 9, 3, 0, 13, 0, false, false },     // a prefill from the start
        { 64, 4, 4, 41, 5, 0, false, false },     // a prefill after cached tokens
        { 128, 2, 1, 99, 1, 0, false, false },    // two dimension blocks of 64
        { 80, 3, 1, 70, 2, 0, false, false },     // a head size that is not a multiple of 64
        { 72, 3, 1, 90, 1, 0, false, false },     // a multiple of 8 but not of 16: the 256-bit loops where AVX-512 is present
        { 12, 3, 3, 40, 1, 0, false, false },     // not a multiple of 8: the scalar loops
        { 64, 9, 3, 200, 1, 37, false, false },   // a sliding window shorter than the context
        { 64, 3, 3, 100, 1, 0, true, false },     // Gemma 2 soft cap
        { 32, 5, 5, 90, 1, 0, false, true },      // BLOOM ALiBi
        { 64, 9, 3, 3, 1, 0, false, false },      // too few keys to split
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Attention_equals_the_float64_reference_on_one_and_on_two_threads(int headDim, int heads, int kvHeads, int start, int tokens, int window, bool softCap, bool alibi)
    {
        var random = new Random(headDim * 1000 + heads * 10 + start);
        int length = start + tokens, headStride = length * headDim;
        float[] keys = RandomFloats(kvHeads * headStride, random, 1f);
        float[] values = RandomFloats(kvHeads * headStride, random, 1f);
        float[] q = RandomFloats(tokens * heads * headDim, random, 1f);
        var options = new AttentionOptions(1f / MathF.Sqrt(headDim), softCap ? 2.5f : 0, alibi ? Alibi.Slopes(heads) : null, window);
        double[] expected = Reference(q, keys, values, headStride, tokens, start, heads, kvHeads, headDim, options);

        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var pool = new WorkerPool(threads);
            var output = new float[tokens * heads * headDim];
            new CausalAttention().Run(pool, q, keys, values, headStride, output, tokens, start, heads, kvHeads, headDim, options);
            for (int i = 0; i < output.Length; i++)
                Assert.True(Math.Abs(output[i] - expected[i]) <= 1e-5 + 1e-4 * Math.Abs(expected[i]),
                    $"threads {threads}, element {i} (token {i / (heads * headDim)}, head {i / headDim % heads}): {output[i]} vs {expected[i]}");
        }
    }

    [Fact]
    public void Rows_of_different_sequences_each_attend_to_their_own_cache()
    {
        const int headDim = 64, heads = 9, kvHeads = 3;
        var random = new Random(5);
        int[] positions = [140, 33, 0];
        var caches = new KvCache[positions.Length];
        for (int t = 0; t < positions.Length; t++)
        {
            caches[t] = new KvCache(1, 256, kvHeads, headDim);
            RandomFloats(caches[t].Keys(0).Length, random, 1f).CopyTo(caches[t].Keys(0), 0);
            RandomFloats(caches[t].Values(0).Length, random, 1f).CopyTo(caches[t].Values(0), 0);
        }
        float[] q = RandomFloats(positions.Length * heads * headDim, random, 1f);
        var options = new AttentionOptions(0.125f);
        using var pool = new WorkerPool(2);
        var output = new float[q.Length];
        new CausalAttention().RunRows(pool, q, caches, positions, 0, output, positions.Length, heads, kvHeads, headDim, options);
        for (int t = 0; t < positions.Length; t++)
        {
            double[] expected = Reference(q.AsSpan(t * heads * headDim, heads * headDim).ToArray(), caches[t].Keys(0), caches[t].Values(0),
                caches[t].HeadStride, 1, positions[t], heads, kvHeads, headDim, options);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(output[t * heads * headDim + i] - expected[i]) <= 1e-5 + 1e-4 * Math.Abs(expected[i]),
                    $"row {t}, element {i}: {output[t * heads * headDim + i]} vs {expected[i]}");
        }
    }

    [Theory]
    [InlineData(3, 2, 2)]    // SmolLM-135M's three KV heads on two threads: six items per token
    [InlineData(9, 2, 2)]
    [InlineData(15, 2, 2)]
    [InlineData(8, 2, 1)]    // already even
    [InlineData(9, 1, 1)]    // one thread: nothing to balance
    [InlineData(9, 3, 1)]
    [InlineData(32, 3, 1)]   // many heads
    [InlineData(5, 4, 4)]
    public void Heads_are_split_in_parts_only_when_the_threads_would_otherwise_wait(int heads, int threads, int parts) =>
        Assert.Equal(parts, CausalAttention.PartsPerHead(heads, threads));

    [Fact]
    public void A_token_gets_the_same_attention_alone_and_in_a_prefill()
    {
        // The split of a token's keys depends on its own context only, so decoding position p alone gives the bits a
        // prefill gives position p, on two threads, where three KV heads are split in two parts from 64 keys on.
        const int headDim = 64, heads = 9, kvHeads = 3, tokens = 40, start = 60, headStride = (start + tokens) * headDim;
        var random = new Random(8);
        float[] keys = RandomFloats(kvHeads * headStride, random, 1f);
        float[] values = RandomFloats(kvHeads * headStride, random, 1f);
        float[] q = RandomFloats(tokens * heads * headDim, random, 1f);
        var options = new AttentionOptions(0.125f);
        using var pool = new WorkerPool(2);
        var prefill = new float[q.Length];
        new CausalAttention().Run(pool, q, keys, values, headStride, prefill, tokens, start, heads, kvHeads, headDim, options);
        var alone = new float[heads * headDim];
        for (int t = 0; t < tokens; t++)
        {
            new CausalAttention().Run(pool, q.AsSpan(t * heads * headDim, heads * headDim).ToArray(), keys, values, headStride, alone, 1, start + t, heads, kvHeads, headDim, options);
            Assert.Equal(alone, prefill.AsSpan(t * heads * headDim, heads * headDim).ToArray());
        }
    }

    private static double[] Reference(float[] q, float[] keys, float[] values, int headStride, int tokens, int start, int heads, int kvHeads, int headDim, AttentionOptions options)
    {
        var result = new double[tokens * heads * headDim];
        for (int t = 0; t < tokens; t++)
        {
            int position = start + t;
            int first = options.Window > 0 ? Math.Max(0, position - options.Window + 1) : 0;
            for (int h = 0; h < heads; h++)
            {
                int kv = h / (heads / kvHeads);
                var scores = new double[position + 1];
                double max = double.NegativeInfinity;
                for (int j = first; j <= position; j++)
                {
                    double dot = 0;
                    for (int i = 0; i < headDim; i++)
                        dot += (double)q[(t * heads + h) * headDim + i] * keys[kv * headStride + j * headDim + i];
                    double score = dot * options.Scale;
                    if (options.SoftCap > 0)
                        score = options.SoftCap * Math.Tanh(score / options.SoftCap);
                    if (options.AlibiSlopes is { } slopes)
                        score += slopes[h] * (double)(j - position);
                    scores[j] = score;
                    max = Math.Max(max, score);
                }
                double sum = 0;
                for (int j = first; j <= position; j++)
                {
                    scores[j] = Math.Exp(scores[j] - max);
                    sum += scores[j];
                }
                for (int j = first; j <= position; j++)
                {
                    for (int i = 0; i < headDim; i++)
                        result[(t * heads + h) * headDim + i] += scores[j] / sum * values[kv * headStride + j * headDim + i];
                }
            }
        }
        return result;
    }

    private static float[] RandomFloats(int count, Random random, float scale)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
            values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return values;
    }
}
