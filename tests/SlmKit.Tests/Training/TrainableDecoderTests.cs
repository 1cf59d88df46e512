using SlmKit.Kernels;
using SlmKit.Models;
using SlmKit.Training;

namespace SlmKit.Tests.Training;

public sealed class TrainableDecoderTests(ITestOutputHelper output)
{
    private static readonly DecoderConfig s_tiny = ModelPresets.Llama(vocabSize: 16, dim: 32, layers: 2, heads: 4, kvHeads: 2, ffn: 64);

    [Fact]
    public void Parameters_have_the_runtime_gguf_names_and_shapes()
    {
        var model = new TrainableDecoder<float>(ModelPresets.Stories15M with { LayerCount = 1 }, seed: 1, threadCount: 1);
        string[] expected =
        [
            "token_embd.weight [32000, 288]", "blk.0.attn_norm.weight [288]", "blk.0.attn_q.weight [288, 288]",
            "blk.0.attn_k.weight [288, 288]", "blk.0.attn_v.weight [288, 288]", "blk.0.attn_output.weight [288, 288]",
            "blk.0.ffn_norm.weight [288]", "blk.0.ffn_gate.weight [768, 288]", "blk.0.ffn_up.weight [768, 288]",
            "blk.0.ffn_down.weight [288, 768]", "output_norm.weight [288]",
        ];
        Assert.Equal(expected, model.Parameters.Select(p => $"{p.Name} [{string.Join(", ", p.Shape)}]"));
        Assert.Null(model.Find("output.weight"));
        var untied = new TrainableDecoder<float>(s_tiny with { TiedEmbeddings = false, KvHeadCount = 1 }, seed: 1, threadCount: 1);
        Assert.Equal([16, 32], untied.Find("output.weight")!.Shape);
        Assert.Equal([8, 32], untied.Find("blk.1.attn_k.weight")!.Shape);
    }

    [Fact]
    public void Initialisation_follows_the_seed_and_the_residual_scaling()
    {
        var config = ModelPresets.Llama(64, 64, 8, 4, 4, 256);
        var a = new TrainableDecoder<float>(config, seed: 7, threadCount: 1);
        var b = new TrainableDecoder<float>(config, seed: 7, threadCount: 1);
        var c = new TrainableDecoder<float>(config, seed: 8, threadCount: 1);
        Assert.Equal(a.Find("blk.3.attn_q.weight")!.Value, b.Find("blk.3.attn_q.weight")!.Value);
        Assert.NotEqual(a.Find("blk.3.attn_q.weight")!.Value, c.Find("blk.3.attn_q.weight")!.Value);
        Assert.All(a.Find("blk.0.ffn_norm.weight")!.Value, v => Assert.Equal(1f, v));
        Assert.Equal(0.02, StandardDeviation(a.Find("blk.0.ffn_gate.weight")!.Value), 0.002);
        Assert.Equal(0.02, StandardDeviation(a.Find("token_embd.weight")!.Value), 0.002);
        Assert.Equal(0.02 / 4, StandardDeviation(a.Find("blk.0.ffn_down.weight")!.Value), 0.0005); // 1/√(2·8)
        Assert.Equal(0.02 / 4, StandardDeviation(a.Find("blk.5.attn_output.weight")!.Value), 0.0005);
    }

    [Fact]
    public void Same_seed_gives_bit_identical_weights_whatever_the_thread_count()
    {
        float[][] one = Train(threads: 1, seed: 3);
        float[][] again = Train(threads: 1, seed: 3);
        float[][] two = Train(threads: 2, seed: 3);
        for (int i = 0; i < one.Length; i++)
        {
            Assert.Equal(one[i], again[i]);
            Assert.Equal(one[i], two[i]);
        }
        Assert.NotEqual(one[1], Train(threads: 2, seed: 4)[1]);

        static float[][] Train(int threads, ulong seed)
        {
            var model = new TrainableDecoder<float>(s_tiny with { TiedEmbeddings = false }, seed, threads);
            var trainer = new DecoderTrainer<float>(model, new AdamW<float>(model.Parameters, weightDecay: 0.1),
                LearningRateSchedule.WarmupCosine(1e-2, 1e-3, 2, 6), maxGradientNorm: 1.0);
            var data = new DeterministicRandomTokens(99);
            for (int step = 0; step < 4; step++)
                trainer.Step([data.Batch(2, 8, 16), data.Batch(2, 8, 16)]);
            return [.. model.Parameters.Select(p => (float[])p.Value.Clone())];
        }
    }

    [Fact]
    public void A_tiny_model_overfits_a_repeated_sequence()
    {
        int[] pattern = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2];
        const int batch = 2, seq = 24;
        var tokens = new int[batch * seq];
        var targets = new int[batch * seq];
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < seq; t++)
            {
                // Each row starts at a different phase of the pattern; targets are the next token of the same stream,
                // and the last position of each row, whose next token is not in the row, is ignored.
                int at = b * 5 + t;
                tokens[b * seq + t] = pattern[at % pattern.Length];
                targets[b * seq + t] = t == seq - 1 ? TrainableDecoder<float>.IgnoreIndex : pattern[(at + 1) % pattern.Length];
            }
        }

        var model = new TrainableDecoder<float>(s_tiny, seed: 1, threadCount: 2);
        var trainer = new DecoderTrainer<float>(model, new AdamW<float>(model.Parameters, beta2: 0.99, weightDecay: 0.0),
            LearningRateSchedule.WarmupCosine(1e-2, 1e-3, 5, 120), maxGradientNorm: 1.0);
        var batchData = new TokenBatch(tokens, targets, batch, seq);
        double first = trainer.Step(batchData).Loss;
        double last = first;
        for (int step = 1; step < 120; step++)
            last = trainer.Step(batchData).Loss;
        output.WriteLine($"loss {first:F4} → {last:F4}");
        Assert.True(first > 2.0, $"initial loss {first} should be near ln 16 ≈ 2.77");
        Assert.True(last < 0.05, $"loss after 120 steps is {last}");
        Assert.True(model.EvaluateLoss(tokens, targets, batch, seq) < 0.05);
    }

    [Fact]
    public void Stories15M_step_keeps_activations_well_under_two_gigabytes()
    {
        var model = new TrainableDecoder<float>(ModelPresets.Stories15M, seed: 1, threadCount: 2);
        var data = new DeterministicRandomTokens(5);
        TokenBatch batch = data.Batch(4, 256, 32000);
        float loss = model.Loss(batch.Tokens, batch.Targets, 4, 256);
        long parameterBytes = model.ParameterCount * sizeof(float);
        // Values, gradients and AdamW's two moments, plus the tape's activations and their gradients.
        long total = 4 * parameterBytes + model.Tape.PeakBytes;
        output.WriteLine($"loss {loss:F3}; parameters {model.ParameterCount}; tape peak {model.Tape.PeakBytes / 1e6:F0} MB; total {total / 1e6:F0} MB");
        Assert.InRange(loss, 10.0f, 10.8f); // ≈ ln 32000 = 10.37 at initialisation
        Assert.True(total < 2_000_000_000L, $"{total} bytes");
    }

    private static double StandardDeviation(float[] values)
    {
        double sum = 0, sumSquares = 0;
        foreach (float v in values)
        {
            sum += v;
            sumSquares += (double)v * v;
        }
        double mean = sum / values.Length;
        return Math.Sqrt(sumSquares / values.Length - mean * mean);
    }

    /// <summary>Random token batches from a fixed seed.</summary>
    private sealed class DeterministicRandomTokens(int seed)
    {
        private readonly Random _random = new(seed);

        public TokenBatch Batch(int batch, int seq, int vocab)
        {
            var tokens = new int[batch * seq];
            var targets = new int[batch * seq];
            for (int i = 0; i < tokens.Length; i++)
            {
                tokens[i] = _random.Next(vocab);
                targets[i] = _random.Next(vocab);
            }
            return new TokenBatch(tokens, targets, batch, seq);
        }
    }
}
