using LLama.Native;
using SlmKit.Inference;
using SlmKit.Models;
using SlmKit.Tests.Models;

namespace SlmKit.Tests.Quantization;

/// <summary>Steady-state decoding of a quantized model allocates nothing on the decoding thread.</summary>
public sealed class DecodeAllocationTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-alloc-").FullName;

    private string QuantizedModel()
    {
        string source = new RandomLlama(QuantizedOracleTests.Spec).WriteGguf(Path.Combine(_folder, "f32.gguf"));
        return LlamaCppQuantizer.Quantize(source, Path.Combine(_folder, "q4km.gguf"), LLamaFtype.MOSTLY_Q4_K_M);
    }

    [Fact]
    public void Forward_and_sampling_allocate_nothing_per_token()
    {
        using var model = ModelLoader.Load(QuantizedModel());
        var cache = model.CreateCache(400);
        var logits = new float[model.VocabSize];
        // Top-k 0 sorts the whole vocabulary: the path that used to allocate its sort keys.
        var sampler = new Sampler(new GenerationOptions { Temperature = 0.8f, TopK = 0, TopP = 0.95f, RepetitionPenalty = 1.1f, Seed = 1 });
        int[] token = [1];
        var history = new int[400];
        int n = 0;

        void Step()
        {
            model.Forward(cache, token, logits, allPositions: false);
            token[0] = sampler.Sample(logits, history.AsSpan(0, n));
            history[n++] = token[0];
        }

        // Warm-up past 256 positions, where the attention score buffers last grow.
        for (int i = 0; i < 300; i++)
            Step();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++)
            Step();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void The_token_generator_allocates_nothing_per_token()
    {
        string path = QuantizedModel();
        using var model = ModelLoader.Load(path);
        var tokenizer = SlmModel.LoadTokenizerFor(path);
        var generator = new TextGenerator(model, tokenizer, 512);
        var options = new GenerationOptions { Temperature = 0.8f, TopK = 40, MaxTokens = 200, Seed = 3, StopAtEndOfGeneration = false };
        using var tokens = generator.GenerateTokens([1, 300, 301], options).GetEnumerator();
        for (int i = 0; i < 100; i++)
            Assert.True(tokens.MoveNext());
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++)
            Assert.True(tokens.MoveNext());
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
