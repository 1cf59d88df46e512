using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Shape and hyper-parameters of a Llama-family model (Llama 2/3/3.2, TinyLlama, SmolLM, MobileLLM, MobiLlama,
/// H2O-Danube, Fox, MiniMA): pre-RMSNorm blocks, rotary positions, grouped-query attention, SwiGLU MLP.
/// </summary>
public sealed record LlamaConfig
{
    public required int HiddenSize { get; init; }
    public required int LayerCount { get; init; }
    public required int HeadCount { get; init; }
    public required int KvHeadCount { get; init; }
    public required int FeedForwardSize { get; init; }
    public required int VocabSize { get; init; }
    public int HeadDim { get; init; }
    public int ContextLength { get; init; } = 2048;
    public float NormEpsilon { get; init; } = 1e-5f;
    public float RopeTheta { get; init; } = 10000f;
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>Normal for GGUF and llama2.c weights; NeoX for Hugging Face weights (whose q/k rows HF permuted).</summary>
    public RopeLayout RopeLayout { get; init; } = RopeLayout.Normal;

    /// <summary>True when the output head reuses the token embedding matrix.</summary>
    public bool TiedEmbeddings { get; init; }

    public int ResolvedHeadDim => HeadDim > 0 ? HeadDim : HiddenSize / HeadCount;

    /// <summary>Throws a <see cref="SlmKitException"/> naming the first impossible number.</summary>
    public void Validate(string source)
    {
        void Require(bool ok, string what)
        {
            if (!ok)
                throw new ModelFileException(source, what);
        }

        Require(HiddenSize > 0, $"hidden size must be positive (got {HiddenSize})");
        Require(LayerCount > 0, $"layer count must be positive (got {LayerCount})");
        Require(HeadCount > 0, $"head count must be positive (got {HeadCount})");
        Require(KvHeadCount > 0 && HeadCount % KvHeadCount == 0, $"KV head count {KvHeadCount} must divide the head count {HeadCount}");
        Require(HeadDim > 0 || HiddenSize % HeadCount == 0, $"hidden size {HiddenSize} is not a multiple of the head count {HeadCount}");
        Require(ResolvedHeadDim % 2 == 0, $"head size {ResolvedHeadDim} must be even for rotary positions");
        Require(FeedForwardSize > 0, $"feed-forward size must be positive (got {FeedForwardSize})");
        Require(VocabSize > 0, $"vocabulary size must be positive (got {VocabSize})");
        Require(ContextLength > 0, $"context length must be positive (got {ContextLength})");
    }
}

/// <summary>Which tensor names a checkpoint uses.</summary>
public enum TensorNaming
{
    /// <summary>llama.cpp's names (token_embd.weight, blk.N.attn_q.weight, …); llama2.c checkpoints are exposed this way too.</summary>
    Gguf,

    /// <summary>transformers' names (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, …).</summary>
    HuggingFace,
}

/// <summary>
/// The Llama forward pass. Per block: x += Wo·Attn(RoPE(Wq·n), RoPE(Wk·n), Wv·n) with n = RMSNorm(x);
/// x += Wdown·(SiLU(Wgate·m) ⊙ Wup·m) with m = RMSNorm(x). Then logits = Wout·RMSNorm(x).
/// </summary>
public sealed class LlamaModel : LanguageModel
{
    private readonly IWeightSource _source;
    private readonly LlamaConfig _config;
    private readonly WeightTensor _embedding;
    private readonly WeightTensor _output;
    private readonly float[] _outputNorm;
    private readonly Layer[] _layers;
    private readonly RotaryEmbedding _rope;
    private readonly TransformerScratch _scratch;
    private readonly WorkerPool _pool;
    private readonly object _forwardLock = new();

    private sealed record Layer(float[] AttentionNorm, WeightTensor Query, WeightTensor Key, WeightTensor Value, WeightTensor AttentionOutput,
        float[] FeedForwardNorm, WeightTensor Gate, WeightTensor Up, WeightTensor Down);

    public LlamaModel(IWeightSource source, LlamaConfig config, TensorNaming naming, string architecture, string sourceFormat, WorkerPool? pool = null)
    {
        config.Validate(source.SourcePath);
        _source = source;
        _config = config;
        _pool = pool ?? WorkerPool.Shared;
        int dim = config.HiddenSize, headDim = config.ResolvedHeadDim;
        int qDim = config.HeadCount * headDim, kvDim = config.KvHeadCount * headDim;
        var weights = new WeightBinder(source);

        _embedding = weights.Matrix(naming == TensorNaming.Gguf ? "token_embd.weight" : "model.embed_tokens.weight", config.VocabSize, dim);
        _layers = new Layer[config.LayerCount];
        for (int i = 0; i < config.LayerCount; i++)
        {
            _layers[i] = naming == TensorNaming.Gguf
                ? new Layer(
                    weights.Vector($"blk.{i}.attn_norm.weight", dim),
                    weights.Matrix($"blk.{i}.attn_q.weight", qDim, dim),
                    weights.Matrix($"blk.{i}.attn_k.weight", kvDim, dim),
                    weights.Matrix($"blk.{i}.attn_v.weight", kvDim, dim),
                    weights.Matrix($"blk.{i}.attn_output.weight", dim, qDim),
                    weights.Vector($"blk.{i}.ffn_norm.weight", dim),
                    weights.Matrix($"blk.{i}.ffn_gate.weight", config.FeedForwardSize, dim),
                    weights.Matrix($"blk.{i}.ffn_up.weight", config.FeedForwardSize, dim),
                    weights.Matrix($"blk.{i}.ffn_down.weight", dim, config.FeedForwardSize))
                : new Layer(
                    weights.Vector($"model.layers.{i}.input_layernorm.weight", dim),
                    weights.Matrix($"model.layers.{i}.self_attn.q_proj.weight", qDim, dim),
                    weights.Matrix($"model.layers.{i}.self_attn.k_proj.weight", kvDim, dim),
                    weights.Matrix($"model.layers.{i}.self_attn.v_proj.weight", kvDim, dim),
                    weights.Matrix($"model.layers.{i}.self_attn.o_proj.weight", dim, qDim),
                    weights.Vector($"model.layers.{i}.post_attention_layernorm.weight", dim),
                    weights.Matrix($"model.layers.{i}.mlp.gate_proj.weight", config.FeedForwardSize, dim),
                    weights.Matrix($"model.layers.{i}.mlp.up_proj.weight", config.FeedForwardSize, dim),
                    weights.Matrix($"model.layers.{i}.mlp.down_proj.weight", dim, config.FeedForwardSize));
        }

        _outputNorm = weights.Vector(naming == TensorNaming.Gguf ? "output_norm.weight" : "model.norm.weight", dim);
        string outputName = naming == TensorNaming.Gguf ? "output.weight" : "lm_head.weight";
        _output = config.TiedEmbeddings || source.Find(outputName) is null
            ? _embedding
            : weights.Matrix(outputName, config.VocabSize, dim);

        float[]? frequencyFactors = naming == TensorNaming.Gguf && source.Find("rope_freqs.weight") is not null
            ? weights.Vector("rope_freqs.weight", headDim / 2)
            : null;
        _rope = new RotaryEmbedding(headDim, headDim, config.RopeTheta, config.RopeLayout, config.RopeScaling, frequencyFactors);
        _scratch = new TransformerScratch();

        Info = new ModelInfo(
            Architecture: architecture,
            Family: "llama",
            ParameterCount: weights.ParameterCount,
            ParametersByType: weights.ParametersByType,
            ContextLength: config.ContextLength,
            VocabSize: config.VocabSize,
            LayerCount: config.LayerCount,
            HiddenSize: dim,
            HeadCount: config.HeadCount,
            KvHeadCount: config.KvHeadCount,
            HeadDim: headDim,
            FeedForwardSize: config.FeedForwardSize,
            TiedEmbeddings: ReferenceEquals(_output, _embedding),
            SourceFormat: sourceFormat);
    }

    public override ModelInfo Info { get; }

    public LlamaConfig Config => _config;

    public override KvCache CreateCache(int contextSize) =>
        new(_config.LayerCount, contextSize, _config.KvHeadCount * _config.ResolvedHeadDim);

    public override void Forward(KvCache cache, ReadOnlySpan<int> tokens, Span<float> logits, bool allPositions)
    {
        int vocab = _config.VocabSize;
        if (tokens.IsEmpty)
            throw new ArgumentException("at least one token is needed", nameof(tokens));
        if (cache.Length + tokens.Length > cache.Capacity)
            throw new SlmKitException($"the context is full: {cache.Length} + {tokens.Length} tokens exceed the context size {cache.Capacity}");
        if (logits.Length < (allPositions ? tokens.Length * vocab : vocab))
            throw new ArgumentException("logits buffer too small", nameof(logits));
        foreach (int token in tokens)
        {
            if ((uint)token >= (uint)vocab)
                throw new SlmKitException($"token id {token} is outside the vocabulary (0..{vocab - 1})");
        }

        lock (_forwardLock)
        {
            for (int start = 0; start < tokens.Length; start += TransformerScratch.MaxBatch)
            {
                int count = Math.Min(TransformerScratch.MaxBatch, tokens.Length - start);
                bool last = start + count == tokens.Length;
                Span<float> chunkLogits = allPositions ? logits.Slice(start * vocab, count * vocab) : (last ? logits[..vocab] : default);
                ForwardBatch(cache, tokens.Slice(start, count), chunkLogits, allPositions, last);
            }
        }
    }

    public override bool SupportsHiddenStates => true;

    public override void ForwardHidden(KvCache cache, ReadOnlySpan<int> tokens, Span<float> hidden)
    {
        int dim = _config.HiddenSize;
        CheckTokens(tokens);
        if (tokens.IsEmpty)
            throw new ArgumentException("at least one token is needed", nameof(tokens));
        if (cache.Length + tokens.Length > cache.Capacity)
            throw new SlmKitException($"the context is full: {cache.Length} + {tokens.Length} tokens exceed the context size {cache.Capacity}");
        if (hidden.Length < tokens.Length * dim)
            throw new ArgumentException("hidden-state buffer too small", nameof(hidden));
        lock (_forwardLock)
        {
            for (int start = 0; start < tokens.Length; start += TransformerScratch.MaxBatch)
            {
                int count = Math.Min(TransformerScratch.MaxBatch, tokens.Length - start);
                ForwardBatch(cache, tokens.Slice(start, count), default, allPositions: false, wantLogits: false, hidden.Slice(start * dim, count * dim));
            }
        }
    }

    /// <summary>
    /// One decoding step for many sequences: the weight matrices are read once for all of them (the same matmuls as a
    /// prefill of that many tokens); only attention runs per sequence, against its own cache.
    /// </summary>
    public override void ForwardBatch(IReadOnlyList<KvCache> caches, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(caches);
        int vocab = _config.VocabSize;
        if (tokens.Length != caches.Count)
            throw new ArgumentException($"{caches.Count} caches but {tokens.Length} tokens", nameof(tokens));
        if (logits.Length < caches.Count * vocab)
            throw new ArgumentException("logits buffer too small", nameof(logits));
        CheckTokens(tokens);
        for (int i = 0; i < caches.Count; i++)
        {
            if (caches[i].Length >= caches[i].Capacity)
                throw new SlmKitException($"the context is full: {caches[i].Length} + 1 tokens exceed the context size {caches[i].Capacity}");
        }

        lock (_forwardLock)
        {
            for (int first = 0; first < tokens.Length; first += TransformerScratch.MaxBatch)
            {
                int count = Math.Min(TransformerScratch.MaxBatch, tokens.Length - first);
                DecodeStep(caches, first, tokens.Slice(first, count), logits.Slice(first * vocab, count * vocab));
            }
        }
    }

    private void CheckTokens(ReadOnlySpan<int> tokens)
    {
        int vocab = _config.VocabSize;
        foreach (int token in tokens)
        {
            if ((uint)token >= (uint)vocab)
                throw new SlmKitException($"token id {token} is outside the vocabulary (0..{vocab - 1})");
        }
    }

    private void DecodeStep(IReadOnlyList<KvCache> caches, int firstCache, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        var c = _config;
        int n = tokens.Length, dim = c.HiddenSize, headDim = c.ResolvedHeadDim, pairs = headDim / 2;
        int qDim = c.HeadCount * headDim, kvDim = c.KvHeadCount * headDim, ffn = c.FeedForwardSize;
        var s = _scratch;
        s.Ensure(n, dim, qDim, kvDim, ffn, pairs);

        for (int t = 0; t < n; t++)
        {
            Embeddings.Lookup(_embedding, tokens[t], s.X.AsSpan(t * dim, dim));
            _rope.ComputeAngles(caches[firstCache + t].Length, s.Cos.AsSpan(t * pairs, pairs), s.Sin.AsSpan(t * pairs, pairs));
        }

        for (int l = 0; l < _layers.Length; l++)
        {
            var layer = _layers[l];
            for (int t = 0; t < n; t++)
                Normalization.RmsNorm(s.X.AsSpan(t * dim, dim), layer.AttentionNorm, c.NormEpsilon, s.Normed.AsSpan(t * dim, dim));
            MatMul.Multiply(_pool, s.Normed, n, layer.Query, s.Q);
            MatMul.Multiply(_pool, s.Normed, n, layer.Key, s.K);
            MatMul.Multiply(_pool, s.Normed, n, layer.Value, s.V);

            for (int t = 0; t < n; t++)
            {
                var cache = caches[firstCache + t];
                var cos = s.Cos.AsSpan(t * pairs, pairs);
                var sin = s.Sin.AsSpan(t * pairs, pairs);
                _rope.Apply(s.Q.AsSpan(t * qDim, qDim), c.HeadCount, cos, sin);
                _rope.Apply(s.K.AsSpan(t * kvDim, kvDim), c.KvHeadCount, cos, sin);
                s.K.AsSpan(t * kvDim, kvDim).CopyTo(cache.Keys(l).AsSpan(cache.Length * kvDim));
                s.V.AsSpan(t * kvDim, kvDim).CopyTo(cache.Values(l).AsSpan(cache.Length * kvDim));
            }

            s.Attention.RunDecode(_pool, s.Q, caches, firstCache, n, l, s.AttentionOut, c.HeadCount, c.KvHeadCount, headDim, 1f / MathF.Sqrt(headDim));
            MatMul.Multiply(_pool, s.AttentionOut, n, layer.AttentionOutput, s.Projected);
            AddInPlace(s.X.AsSpan(0, n * dim), s.Projected.AsSpan(0, n * dim));

            for (int t = 0; t < n; t++)
                Normalization.RmsNorm(s.X.AsSpan(t * dim, dim), layer.FeedForwardNorm, c.NormEpsilon, s.Normed.AsSpan(t * dim, dim));
            MatMul.Multiply(_pool, s.Normed, n, layer.Gate, s.Gate);
            MatMul.Multiply(_pool, s.Normed, n, layer.Up, s.Up);
            Activations.SwiGlu(s.Gate.AsSpan(0, n * ffn), s.Up.AsSpan(0, n * ffn));
            MatMul.Multiply(_pool, s.Gate, n, layer.Down, s.Projected);
            AddInPlace(s.X.AsSpan(0, n * dim), s.Projected.AsSpan(0, n * dim));
        }

        for (int t = 0; t < n; t++)
        {
            caches[firstCache + t].Length++;
            Normalization.RmsNorm(s.X.AsSpan(t * dim, dim), _outputNorm, c.NormEpsilon, s.Normed.AsSpan(t * dim, dim));
        }
        MatMul.Multiply(_pool, s.Normed, n, _output, logits);
    }

    private void ForwardBatch(KvCache cache, ReadOnlySpan<int> tokens, Span<float> logits, bool allPositions, bool wantLogits, Span<float> hidden = default)
    {
        var c = _config;
        int n = tokens.Length, dim = c.HiddenSize, headDim = c.ResolvedHeadDim;
        int qDim = c.HeadCount * headDim, kvDim = c.KvHeadCount * headDim, ffn = c.FeedForwardSize;
        var s = _scratch;
        s.Ensure(n, dim, qDim, kvDim, ffn, headDim / 2);
        int start = cache.Length;

        for (int t = 0; t < n; t++)
        {
            Embeddings.Lookup(_embedding, tokens[t], s.X.AsSpan(t * dim, dim));
            _rope.ComputeAngles(start + t, s.Cos.AsSpan(t * (headDim / 2), headDim / 2), s.Sin.AsSpan(t * (headDim / 2), headDim / 2));
        }

        for (int l = 0; l < _layers.Length; l++)
        {
            var layer = _layers[l];
            for (int t = 0; t < n; t++)
                Normalization.RmsNorm(s.X.AsSpan(t * dim, dim), layer.AttentionNorm, c.NormEpsilon, s.Normed.AsSpan(t * dim, dim));
            MatMul.Multiply(_pool, s.Normed, n, layer.Query, s.Q);
            MatMul.Multiply(_pool, s.Normed, n, layer.Key, s.K);
            MatMul.Multiply(_pool, s.Normed, n, layer.Value, s.V);

            float[] keys = cache.Keys(l), values = cache.Values(l);
            for (int t = 0; t < n; t++)
            {
                var cos = s.Cos.AsSpan(t * (headDim / 2), headDim / 2);
                var sin = s.Sin.AsSpan(t * (headDim / 2), headDim / 2);
                _rope.Apply(s.Q.AsSpan(t * qDim, qDim), c.HeadCount, cos, sin);
                _rope.Apply(s.K.AsSpan(t * kvDim, kvDim), c.KvHeadCount, cos, sin);
                s.K.AsSpan(t * kvDim, kvDim).CopyTo(keys.AsSpan((start + t) * kvDim));
                s.V.AsSpan(t * kvDim, kvDim).CopyTo(values.AsSpan((start + t) * kvDim));
            }

            s.Attention.Run(_pool, s.Q, keys, values, s.AttentionOut, n, start, c.HeadCount, c.KvHeadCount, headDim, 1f / MathF.Sqrt(headDim));
            MatMul.Multiply(_pool, s.AttentionOut, n, layer.AttentionOutput, s.Projected);
            AddInPlace(s.X.AsSpan(0, n * dim), s.Projected.AsSpan(0, n * dim));

            for (int t = 0; t < n; t++)
                Normalization.RmsNorm(s.X.AsSpan(t * dim, dim), layer.FeedForwardNorm, c.NormEpsilon, s.Normed.AsSpan(t * dim, dim));
            MatMul.Multiply(_pool, s.Normed, n, layer.Gate, s.Gate);
            MatMul.Multiply(_pool, s.Normed, n, layer.Up, s.Up);
            Activations.SwiGlu(s.Gate.AsSpan(0, n * ffn), s.Up.AsSpan(0, n * ffn));
            MatMul.Multiply(_pool, s.Gate, n, layer.Down, s.Projected);
            AddInPlace(s.X.AsSpan(0, n * dim), s.Projected.AsSpan(0, n * dim));
        }

        cache.Length = start + n;
        if (!hidden.IsEmpty)
        {
            for (int t = 0; t < n; t++)
                Normalization.RmsNorm(s.X.AsSpan(t * dim, dim), _outputNorm, c.NormEpsilon, hidden.Slice(t * dim, dim));
        }
        if (!wantLogits && !allPositions)
            return;

        int first = allPositions ? 0 : n - 1;
        for (int t = first; t < n; t++)
            Normalization.RmsNorm(s.X.AsSpan(t * dim, dim), _outputNorm, c.NormEpsilon, s.Normed.AsSpan((t - first) * dim, dim));
        MatMul.Multiply(_pool, s.Normed, n - first, _output, logits);
    }

    private static void AddInPlace(Span<float> x, ReadOnlySpan<float> y) =>
        System.Numerics.Tensors.TensorPrimitives.Add(x, y, x);

    public override void Dispose()
    {
        _source.Dispose();
        base.Dispose();
    }
}
