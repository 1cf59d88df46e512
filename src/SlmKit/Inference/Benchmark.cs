using System.Diagnostics;
using SlmKit.Models;

namespace SlmKit.Inference;

/// <summary>Tokens per second of each repetition: prefill of the prompt in one call, then one token per call.</summary>
public sealed record BenchmarkResult(double[] PrefillTokensPerSecond, double[] DecodeTokensPerSecond)
{
    public static (double Mean, double StandardDeviation) Summarize(double[] values)
    {
        double mean = values.Average();
        double variance = values.Length > 1 ? values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1) : 0;
        return (mean, Math.Sqrt(variance));
    }
}

/// <summary>llama-bench's measurement: random prompt tokens (prefill, "pp") and greedy generation ("tg"), after a warm-up.</summary>
public static class Benchmark
{
    /// <summary>Default seconds of full-length runs before the measured ones (see <see cref="Run"/>).</summary>
    public const double WarmUpSeconds = 3;

    public static BenchmarkResult Run(LanguageModel model, int promptTokens, int generateTokens, int repetitions, int seed = 42,
        double warmUpSeconds = WarmUpSeconds)
    {
        if (promptTokens < 1 || generateTokens < 1 || repetitions < 1)
            throw new SlmKitException("prompt tokens, generated tokens and repetitions must all be at least 1");
        if (!(warmUpSeconds >= 0))
            throw new SlmKitException($"the warm-up must be 0 seconds or more (got {warmUpSeconds})");
        var random = new Random(seed);
        int[] prompt = new int[promptTokens];
        for (int i = 0; i < prompt.Length; i++)
            prompt[i] = random.Next(model.VocabSize);
        var cache = model.CreateCache(promptTokens + generateTokens + 1);
        var logits = new float[model.VocabSize];
        int[] step = new int[1];

        void Once(int generate, out double prefill, out double decode)
        {
            cache.Length = 0;
            var clock = Stopwatch.StartNew();
            model.Forward(cache, prompt, logits, allPositions: false);
            prefill = promptTokens / clock.Elapsed.TotalSeconds;
            clock.Restart();
            for (int i = 0; i < generate; i++)
            {
                step[0] = Sampler.ArgMax(logits);
                model.Forward(cache, step, logits, allPositions: false);
            }
            decode = generate / clock.Elapsed.TotalSeconds;
        }

        // Warm-up: page cache, buffers, and the JIT's tiering, which recompiles hot methods optimised only after they have
        // run a while (measured on SmolLM-135M Q8_0: the first ≈ 2 s of decoding ran at 40-70 % of the steady speed).
        // Full-length runs until warmUpSeconds have passed, at least one.
        var warmUp = Stopwatch.StartNew();
        do
            Once(generateTokens, out _, out _);
        while (warmUp.Elapsed.TotalSeconds < warmUpSeconds);
        var pp = new double[repetitions];
        var tg = new double[repetitions];
        for (int r = 0; r < repetitions; r++)
            Once(generateTokens, out pp[r], out tg[r]);
        return new BenchmarkResult(pp, tg);
    }
}
