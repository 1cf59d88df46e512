using LLama;
using LLama.Common;
using LLama.Native;

namespace SlmKit.Tests;

/// <summary>
/// llama.cpp (through LLamaSharp, tests only) as the reference for forward passes: logits of every position and
/// greedy continuations of a GGUF file. Calls are serialised: the native library is shared process-wide, and it
/// is initialised through <see cref="LlamaCppOracle"/> like every other LLamaSharp use.
/// </summary>
internal static class LlamaCppForward
{
    private static readonly object s_lock = new();

    private static void EnsureInitialised() => LlamaCppOracle.EnsureInitialised();

    private static ModelParams Parameters(string path, int context) => new(path)
    {
        ContextSize = (uint)context,
        BatchSize = (uint)context,
        UBatchSize = (uint)context,
        Threads = 2,
        GpuLayerCount = 0,
    };

    /// <summary>Logits of every position, row-major [tokens, vocab].</summary>
    public static float[] Logits(string path, int[] tokens)
    {
        EnsureInitialised();
        lock (s_lock)
        {
            var parameters = Parameters(path, Math.Max(tokens.Length, 16));
            using var weights = LLamaWeights.LoadFromFile(parameters);
            using var context = weights.CreateContext(parameters);
            var batch = new LLamaBatch();
            for (int i = 0; i < tokens.Length; i++)
                batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, logits: true);
            var result = context.NativeHandle.Decode(batch);
            if (result != DecodeResult.Ok)
                throw new InvalidOperationException($"llama.cpp decode failed: {result}");
            int vocab = -1;
            float[] all = [];
            for (int i = 0; i < tokens.Length; i++)
            {
                var row = context.NativeHandle.GetLogitsIth(i);
                if (vocab < 0)
                {
                    vocab = row.Length;
                    all = new float[tokens.Length * vocab];
                }
                row.CopyTo(all.AsSpan(i * vocab, vocab));
            }
            return all;
        }
    }

    /// <summary>
    /// An encoder-decoder model's logits: <paramref name="input"/> through llama_encode, then every position of
    /// <paramref name="decoder"/> (which starts with the decoder start token) in one decode, row-major [decoder, vocab].
    /// </summary>
    public static float[] EncoderDecoderLogits(string path, int[] input, int[] decoder)
    {
        EnsureInitialised();
        lock (s_lock)
        {
            var parameters = Parameters(path, Math.Max(Math.Max(input.Length, decoder.Length), 16));
            using var weights = LLamaWeights.LoadFromFile(parameters);
            using var context = weights.CreateContext(parameters);
            var batch = new LLamaBatch();
            for (int i = 0; i < input.Length; i++)
                batch.Add((LLamaToken)input[i], i, LLamaSeqId.Zero, logits: false);
            if (context.NativeHandle.Encode(batch) != DecodeResult.Ok)
                throw new InvalidOperationException("llama.cpp encode failed");
            batch.Clear();
            for (int i = 0; i < decoder.Length; i++)
                batch.Add((LLamaToken)decoder[i], i, LLamaSeqId.Zero, logits: true);
            if (context.NativeHandle.Decode(batch) != DecodeResult.Ok)
                throw new InvalidOperationException("llama.cpp decode failed");
            float[] all = [];
            for (int i = 0; i < decoder.Length; i++)
            {
                var row = context.NativeHandle.GetLogitsIth(i);
                if (all.Length == 0)
                    all = new float[decoder.Length * row.Length];
                row.CopyTo(all.AsSpan(i * row.Length, row.Length));
            }
            return all;
        }
    }

    /// <summary>Greedy continuation: feeds the prompt, then the argmax token, one at a time.</summary>
    public static int[] Greedy(string path, int[] prompt, int count)
    {
        EnsureInitialised();
        lock (s_lock)
        {
            var parameters = Parameters(path, prompt.Length + count + 1);
            using var weights = LLamaWeights.LoadFromFile(parameters);
            using var context = weights.CreateContext(parameters);
            var output = new int[count];
            var batch = new LLamaBatch();
            for (int i = 0; i < prompt.Length; i++)
                batch.Add((LLamaToken)prompt[i], i, LLamaSeqId.Zero, logits: i == prompt.Length - 1);
            int position = prompt.Length;
            for (int step = 0; step < count; step++)
            {
                if (context.NativeHandle.Decode(batch) != DecodeResult.Ok)
                    throw new InvalidOperationException("llama.cpp decode failed");
                var logits = context.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
                int next = SlmKit.Inference.Sampler.ArgMax(logits);
                output[step] = next;
                batch.Clear();
                batch.Add((LLamaToken)next, position++, LLamaSeqId.Zero, logits: true);
            }
            return output;
        }
    }
}
