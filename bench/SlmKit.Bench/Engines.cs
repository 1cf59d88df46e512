using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;
using SlmKit.Inference;
using SlmKit.Kernels;
using SlmKit.Models;

namespace SlmKit.Bench;

/// <summary>One timed run: prefill of the prompt (one batch), then greedy decoding one token at a time.</summary>
internal readonly record struct RunResult(double PrefillTokensPerSecond, double DecodeTokensPerSecond);

internal interface IEngine : IDisposable
{
    RunResult Run(int[] prompt, int generate);
}

internal sealed class SlmKitEngine : IEngine
{
    private readonly WorkerPool _pool;
    private readonly LanguageModel _model;
    private SequenceState? _cache;

    public SlmKitEngine(string path, int threads)
    {
        _pool = new WorkerPool(threads);
        _model = ModelLoader.Load(path, _pool);
    }

    public RunResult Run(int[] prompt, int generate)
    {
        // One cache for every run, emptied before each, as `slm bench` and llama-bench do. A new one per run put the
        // first touch of its pages (page faults, zeroing) inside the timed prefill and decode; llama.cpp clears its KV
        // buffer when the context is created, before its clock starts. SmolLM-135M Q8_0 128-token prefill, three
        // alternating runs: 870, 873, 909 tok/s with a new cache per run, 1011, 976, 882 with this one.
        int capacity = prompt.Length + generate + 1;
        if (_cache is null || _cache.Capacity != capacity)
            _cache = _model.CreateCache(capacity);
        var cache = _cache;
        cache.Length = 0;
        var logits = new float[_model.VocabSize];
        int[] step = new int[1];
        var clock = Stopwatch.StartNew();
        _model.Forward(cache, prompt, logits, allPositions: false);
        double prefill = clock.Elapsed.TotalSeconds;
        clock.Restart();
        for (int i = 0; i < generate; i++)
        {
            step[0] = Sampler.ArgMax(logits);
            _model.Forward(cache, step, logits, allPositions: false);
        }
        double decode = clock.Elapsed.TotalSeconds;
        return new RunResult(prompt.Length / prefill, generate / decode);
    }

    public void Dispose()
    {
        _model.Dispose();
        _pool.Dispose();
    }
}

internal sealed class LlamaCppEngine : IEngine
{
    private static readonly Lazy<bool> s_initialised = new(() =>
    {
        NativeLibraryConfig.All.WithLogCallback((level, message) => { });
        NativeApi.llama_empty_call();
        return true;
    });

    private readonly LLamaWeights _weights;
    private readonly string _path;
    private readonly int _threads;

    public LlamaCppEngine(string path, int threads)
    {
        _ = s_initialised.Value;
        _path = path;
        _threads = threads;
        _weights = LLamaWeights.LoadFromFile(Parameters(256, 128));
    }

    private ModelParams Parameters(int context, int batch) => new(_path)
    {
        ContextSize = (uint)context,
        BatchSize = (uint)batch,
        UBatchSize = (uint)batch,
        Threads = _threads,
        BatchThreads = _threads,
        GpuLayerCount = 0,
    };

    public RunResult Run(int[] prompt, int generate)
    {
        var parameters = Parameters(prompt.Length + generate + 8, prompt.Length);
        using var context = _weights.CreateContext(parameters);
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt.Length; i++)
            batch.Add((LLamaToken)prompt[i], i, LLamaSeqId.Zero, logits: i == prompt.Length - 1);
        var clock = Stopwatch.StartNew();
        if (context.NativeHandle.Decode(batch) != DecodeResult.Ok)
            throw new InvalidOperationException("llama.cpp prefill failed");
        double prefill = clock.Elapsed.TotalSeconds;
        clock.Restart();
        int position = prompt.Length;
        for (int i = 0; i < generate; i++)
        {
            int next = Sampler.ArgMax(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1));
            batch.Clear();
            batch.Add((LLamaToken)next, position++, LLamaSeqId.Zero, logits: true);
            if (context.NativeHandle.Decode(batch) != DecodeResult.Ok)
                throw new InvalidOperationException("llama.cpp decode failed");
        }
        double decode = clock.Elapsed.TotalSeconds;
        return new RunResult(prompt.Length / prefill, generate / decode);
    }

    public void Dispose() => _weights.Dispose();
}
