using System.Numerics.Tensors;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// The forward pass shared by every decoder-only family: a stack of blocks whose variations (norm kind and placement,
/// attention options, MLP kind, residual structure, position scheme, embedding projections, embedding and logit
/// scaling) come from a <see cref="DecoderConfig"/>. Per block, with the default (Llama) choices:
/// x += Wo·Attn(RoPE(Wq·n), RoPE(Wk·n), Wv·n) with n = norm(x); x += Wdown·(act(Wgate·m) ⊙ Wup·m) with m = norm(x).
/// Then logits = Wout·norm(x). Post-norm blocks (OPT-350m) instead run x = norm₁(x + Attn(x)); x = norm₂(x + MLP(x)).
/// </summary>
public sealed class DecoderModel : LanguageModel
{
    private readonly IWeightSource _source;
    private readonly WeightBinder _binder;
    private readonly DecoderConfig _config;
    private readonly DecoderWeights _weights;
    private readonly RotaryEmbedding? _rope;
    private readonly RotaryEmbedding? _slidingRope;
    private readonly float[]? _alibiSlopes;
    private readonly int _maxKvHeads;
    private readonly QkvLayout _fusedQkvLayout;
    private readonly DecoderScratch _scratch = new();
    private readonly WorkerPool _pool;
    private readonly object _forwardLock = new();

    /// <summary>Binds the weights of <paramref name="source"/> (named as <paramref name="layout"/> says) and owns the source from then on.</summary>
    public DecoderModel(IWeightSource source, DecoderConfig config, TensorLayout layout, string family, string architecture, string sourceFormat, WorkerPool? pool = null)
    {
        config.Validate(source.SourcePath);
        _source = source;
        _config = config;
        _pool = pool ?? WorkerPool.Shared;
        _binder = new WeightBinder(source);
        _fusedQkvLayout = layout.FusedQkv;
        if (layout.FusedQkv == QkvLayout.PerHeadInterleaved && config.LayerHeadCounts is null && config.HeadCount != config.KvHeadCount)
            throw new ModelFileException(source.SourcePath, "a per-head interleaved fused qkv needs as many KV heads as query heads");
        try
        {
            _weights = DecoderWeights.Bind(_binder, source, config, layout);
        }
        catch
        {
            _binder.Dispose();
            throw;
        }

        int headDim = config.ResolvedHeadDim;
        if (config.Positions == PositionKind.Rope)
        {
            _rope = new RotaryEmbedding(headDim, config.ResolvedRotaryDim, config.RopeTheta, config.RopeLayout, config.RopeScaling, _weights.RopeFrequencyFactors, _weights.RopeLongFactors);
            if (config.SlidingRopeTheta > 0)
                _slidingRope = new RotaryEmbedding(headDim, config.ResolvedRotaryDim, config.SlidingRopeTheta, config.RopeLayout);
        }
        int maxHeads = 0, maxKvHeads = 0;
        for (int l = 0; l < config.LayerCount; l++)
        {
            maxHeads = Math.Max(maxHeads, config.HeadsOf(l));
            maxKvHeads = Math.Max(maxKvHeads, config.KvHeadsOf(l));
        }
        if (config.Positions == PositionKind.Alibi)
            _alibiSlopes = Alibi.Slopes(maxHeads);
        _maxKvHeads = maxKvHeads;

        Info = new ModelInfo(
            Architecture: architecture,
            Family: family,
            ParameterCount: _binder.ParameterCount,
            ParametersByType: _binder.ParametersByType,
            ContextLength: config.ContextLength,
            VocabSize: config.VocabSize,
            LayerCount: config.LayerCount,
            HiddenSize: config.HiddenSize,
            HeadCount: config.HeadCount,
            KvHeadCount: config.KvHeadCount,
            HeadDim: headDim,
            FeedForwardSize: config.FeedForwardSize,
            TiedEmbeddings: ReferenceEquals(_weights.Output.Weight, _weights.Embedding),
            SourceFormat: sourceFormat);
    }

    public override ModelInfo Info { get; }

    public DecoderConfig Config => _config;

    public override SequenceState CreateCache(int contextSize)
    {
        if (_config.Positions == PositionKind.Learned && contextSize > _config.ContextLength)
            throw new SlmKitException($"context size {contextSize} exceeds the {_config.ContextLength} learned positions of this model");
        return new KvCache(_config.LayerCount, contextSize, _maxKvHeads, _config.ResolvedHeadDim);
    }

    public override void Forward(SequenceState state, ReadOnlySpan<int> tokens, Span<float> logits, bool allPositions)
    {
        int vocab = _config.VocabSize;
        var cache = OwnCache(state);
        CheckFeed(cache, tokens);
        if (logits.Length < (allPositions ? tokens.Length * vocab : vocab))
            throw new ArgumentException("logits buffer too small", nameof(logits));

        lock (_forwardLock)
        {
            for (int start = 0; start < tokens.Length; start += DecoderScratch.MaxBatch)
            {
                int count = Math.Min(DecoderScratch.MaxBatch, tokens.Length - start);
                bool last = start + count == tokens.Length;
                Span<float> chunkLogits = allPositions ? logits.Slice(start * vocab, count * vocab) : (last ? logits[..vocab] : default);
                ForwardBatch(cache, tokens.Slice(start, count), chunkLogits, allPositions, last);
            }
        }
    }

    public override bool SupportsHiddenStates => true;

    /// <summary>
    /// Feeds tokens like <see cref="Forward"/> and writes each token's final hidden state (tokens × hidden): after the
    /// final norm where the model has one, before any output projection to the embedding width.
    /// </summary>
    public override void ForwardHidden(SequenceState state, ReadOnlySpan<int> tokens, Span<float> hidden)
    {
        int d = _config.HiddenSize;
        var cache = OwnCache(state);
        CheckFeed(cache, tokens);
        if (hidden.Length < tokens.Length * d)
            throw new ArgumentException("hidden-state buffer too small", nameof(hidden));
        lock (_forwardLock)
        {
            for (int start = 0; start < tokens.Length; start += DecoderScratch.MaxBatch)
            {
                int count = Math.Min(DecoderScratch.MaxBatch, tokens.Length - start);
                ForwardBatch(cache, tokens.Slice(start, count), default, allPositions: false, wantLogits: false, hidden.Slice(start * d, count * d));
            }
        }
    }

    /// <summary>
    /// One decoding step for several sequences at once (continuous batching): every weight matrix is read once for
    /// all of them, as in a prefill of that many tokens; only attention runs per sequence, against its own cache.
    /// </summary>
    public override void ForwardBatch(IReadOnlyList<SequenceState> caches, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(caches);
        int vocab = _config.VocabSize;
        if (tokens.Length != caches.Count)
            throw new ArgumentException($"{caches.Count} caches but {tokens.Length} tokens", nameof(tokens));
        if (logits.Length < caches.Count * vocab)
            throw new ArgumentException("logits buffer too small", nameof(logits));
        for (int i = 0; i < caches.Count; i++)
        {
            if ((uint)tokens[i] >= (uint)vocab)
                throw new SlmKitException($"token id {tokens[i]} is outside the vocabulary (0..{vocab - 1})");
            if (caches[i].Length >= caches[i].Capacity)
                throw new SlmKitException($"the context is full: {caches[i].Length} + 1 tokens exceed the context size {caches[i].Capacity}");
            for (int j = 0; j < i; j++)
            {
                if (ReferenceEquals(caches[i], caches[j]))
                    throw new ArgumentException("a sequence may appear only once in a batch step", nameof(caches));
            }
        }

        lock (_forwardLock)
        {
            var s = _scratch;
            for (int first = 0; first < tokens.Length; first += DecoderScratch.MaxBatch)
            {
                int count = Math.Min(DecoderScratch.MaxBatch, tokens.Length - first);
                for (int t = 0; t < count; t++)
                {
                    s.RowCaches[t] = OwnCache(caches[first + t]);
                    s.RowPositions[t] = caches[first + t].Length;
                }
                ForwardRows(null, tokens.Slice(first, count), logits.Slice(first * vocab, count * vocab), allPositions: true, wantLogits: true, default);
                for (int t = 0; t < count; t++)
                {
                    s.RowCaches[t].Length++;
                    s.RowCaches[t] = null!;
                }
            }
        }
    }

    /// <summary>The key/value cache a state of this model is; a state made by another kind of model is refused.</summary>
    private static KvCache OwnCache(SequenceState state) =>
        state as KvCache ?? throw new ArgumentException($"a {state.GetType().Name} is not a transformer's cache; make states with this model's CreateCache", nameof(state));

    private void ForwardBatch(KvCache cache, ReadOnlySpan<int> tokens, Span<float> logits, bool allPositions, bool wantLogits, Span<float> hidden = default)
    {
        var s = _scratch;
        for (int t = 0; t < tokens.Length; t++)
        {
            s.RowCaches[t] = cache;
            s.RowPositions[t] = cache.Length + t;
        }
        ForwardRows(cache, tokens, logits, allPositions, wantLogits, hidden);
        Array.Clear(s.RowCaches);
        cache.Length += tokens.Length;
    }

    /// <summary>
    /// The forward pass over rows of a batch. With <paramref name="shared"/> set the rows are consecutive positions of
    /// one sequence (prefill); otherwise each row is the next token of its own sequence (scratch.RowCaches).
    /// </summary>
    private void ForwardRows(KvCache? shared, ReadOnlySpan<int> tokens, Span<float> logits, bool allPositions, bool wantLogits, Span<float> hidden)
    {
        var c = _config;
        int n = tokens.Length, d = c.HiddenSize, pairs = c.ResolvedRotaryDim / 2;
        var s = _scratch;
        s.Ensure(n, c);

        if (_weights.InputProjection is { } projectIn)
        {
            int e = c.ResolvedEmbeddingSize;
            for (int t = 0; t < n; t++)
                Embeddings.Lookup(_weights.Embedding, tokens[t], s.Embedded.AsSpan(t * e, e));
            Project(s.Embedded, n, projectIn, s.X);
        }
        else
        {
            for (int t = 0; t < n; t++)
                Embeddings.Lookup(_weights.Embedding, tokens[t], s.X.AsSpan(t * d, d));
        }
        for (int t = 0; t < n; t++)
        {
            var x = s.X.AsSpan(t * d, d);
            if (c.EmbeddingScale != 1f)
                TensorPrimitives.Multiply(x, c.EmbeddingScale, x);
            if (_weights.PositionEmbedding is { } positions)
            {
                var row = s.Normed.AsSpan(0, d);
                Embeddings.Lookup(positions, s.RowPositions[t] + c.PositionOffset, row);
                TensorPrimitives.Add(x, row, x);
            }
            else if (c.Positions == PositionKind.Sinusoidal)
            {
                var row = s.Normed.AsSpan(0, d);
                SinusoidalPositions.Row(s.RowPositions[t] + c.PositionOffset, row);
                TensorPrimitives.Add(x, row, x);
            }
            if (_weights.EmbeddingNorm is { } embeddingNorm)
                Norm(x, embeddingNorm, x);
            _rope?.ComputeAngles(s.RowPositions[t], s.RowCaches[t].Capacity, s.Cos.AsSpan(t * pairs, pairs), s.Sin.AsSpan(t * pairs, pairs));
            _slidingRope?.ComputeAngles(s.RowPositions[t], s.RowCaches[t].Capacity, s.SlidingCos.AsSpan(t * pairs, pairs), s.SlidingSin.AsSpan(t * pairs, pairs));
        }

        for (int l = 0; l < _weights.Layers.Length; l++)
        {
            var layer = _weights.Layers[l];
            if (c.PostLayerNorm)
            {
                // x = norm₁(x + Attn(x)); x = norm₂(x + MLP(x)).
                s.X.AsSpan(0, n * d).CopyTo(s.Normed);
                Attention(l, layer, shared, n);
                AddScaled(s.X, s.Attended, n * d, c.ResidualScale);
                NormRows(s.X, layer.AttentionNorm!, n, s.X);
                s.X.AsSpan(0, n * d).CopyTo(s.Normed);
                FeedForward(l, layer, n);
                AddScaled(s.X, s.FedForward, n * d, c.ResidualScale);
                NormRows(s.X, layer.FeedForwardNorm!, n, s.X);
                continue;
            }
            NormRows(s.X, layer.AttentionNorm, n, s.Normed);
            Attention(l, layer, shared, n);
            if (layer.PostAttentionNorm is { } postAttention)
                NormRows(s.Attended, postAttention, n, s.Attended);

            switch (c.Residual)
            {
                case ResidualKind.Sequential:
                    AddScaled(s.X, s.Attended, n * d, c.ResidualScale);
                    NormRows(s.X, layer.FeedForwardNorm, n, s.Normed);
                    FeedForward(l, layer, n);
                    break;
                case ResidualKind.ParallelSharedNorm:
                    FeedForward(l, layer, n);
                    AddScaled(s.X, s.Attended, n * d, c.ResidualScale);
                    break;
                case ResidualKind.ParallelTwoNorms:
                    NormRows(s.X, layer.FeedForwardNorm!, n, s.Normed);
                    FeedForward(l, layer, n);
                    AddScaled(s.X, s.Attended, n * d, c.ResidualScale);
                    break;
            }
            if (layer.PostFeedForwardNorm is { } postFeedForward)
                NormRows(s.FedForward, postFeedForward, n, s.FedForward);
            AddScaled(s.X, s.FedForward, n * d, c.ResidualScale);
        }

        if (!hidden.IsEmpty)
        {
            for (int t = 0; t < n; t++)
                FinalNorm(s.X.AsSpan(t * d, d), hidden.Slice(t * d, d));
        }
        if (!wantLogits && !allPositions)
            return;

        int first = allPositions ? 0 : n - 1, rows = n - first, vocab = c.VocabSize;
        for (int t = first; t < n; t++)
            FinalNorm(s.X.AsSpan(t * d, d), s.Normed.AsSpan((t - first) * d, d));
        var headInput = s.Normed;
        if (_weights.OutputProjection is { } projectOut)
        {
            Project(s.Normed, rows, projectOut, s.Embedded);
            headInput = s.Embedded;
        }
        MatMul.Multiply(_pool, headInput, rows, _weights.Output.Weight, logits);
        var all = logits[..(rows * vocab)];
        if (_weights.Output.Bias is { } headBias)
        {
            for (int t = 0; t < rows; t++)
                TensorPrimitives.Add(all.Slice(t * vocab, vocab), headBias, all.Slice(t * vocab, vocab));
        }
        if (c.LogitScale != 1f)
            TensorPrimitives.Multiply(all, c.LogitScale, all);
        if (c.FinalLogitSoftCap > 0)
            Activations.SoftCap(all, c.FinalLogitSoftCap);
    }

    /// <summary>s.Normed (n × hidden) → s.Attended: projections, q/k norms, rotation, cache append, attention, output projection.</summary>
    private void Attention(int l, DecoderLayer layer, KvCache? shared, int n)
    {
        var c = _config;
        var s = _scratch;
        int d = c.HiddenSize, headDim = c.ResolvedHeadDim, heads = c.HeadsOf(l), kvHeads = c.KvHeadsOf(l);
        int q = heads * headDim, kv = kvHeads * headDim, pairs = c.ResolvedRotaryDim / 2;

        if (layer.Qkv is { } qkv)
        {
            int width = q + 2 * kv;
            Project(s.Normed, n, qkv, s.Qkv);
            for (int t = 0; t < n; t++)
            {
                var row = s.Qkv.AsSpan(t * width, width);
                if (_fusedQkvLayout == QkvLayout.Concatenated)
                {
                    row[..q].CopyTo(s.Q.AsSpan(t * q, q));
                    row.Slice(q, kv).CopyTo(s.K.AsSpan(t * kv, kv));
                    row.Slice(q + kv, kv).CopyTo(s.V.AsSpan(t * kv, kv));
                }
                else
                {
                    // [head][q, k, v][headDim] (multi-head attention only: heads == kvHeads)
                    for (int h = 0; h < heads; h++)
                    {
                        row.Slice(3 * h * headDim, headDim).CopyTo(s.Q.AsSpan(t * q + h * headDim, headDim));
                        row.Slice((3 * h + 1) * headDim, headDim).CopyTo(s.K.AsSpan(t * kv + h * headDim, headDim));
                        row.Slice((3 * h + 2) * headDim, headDim).CopyTo(s.V.AsSpan(t * kv + h * headDim, headDim));
                    }
                }
            }
        }
        else
        {
            MatMul.MultiplyShared(_pool, s.Normed, n, layer.Query!.Weight, s.Q, layer.Key!.Weight, s.K, layer.Value!.Weight, s.V);
            AddBias(layer.Query, n, s.Q);
            AddBias(layer.Key, n, s.K);
            AddBias(layer.Value, n, s.V);
        }

        if (c.ClipQkv > 0)
        {
            TensorPrimitives.Clamp(s.Q.AsSpan(0, n * q), -c.ClipQkv, c.ClipQkv, s.Q.AsSpan(0, n * q));
            TensorPrimitives.Clamp(s.K.AsSpan(0, n * kv), -c.ClipQkv, c.ClipQkv, s.K.AsSpan(0, n * kv));
            TensorPrimitives.Clamp(s.V.AsSpan(0, n * kv), -c.ClipQkv, c.ClipQkv, s.V.AsSpan(0, n * kv));
        }
        if (layer.QueryNorm is { } wholeQueryNorm && c.QkNormAcrossHeads)
        {
            for (int t = 0; t < n; t++)
            {
                Norm(s.Q.AsSpan(t * q, q), wholeQueryNorm, s.Q.AsSpan(t * q, q));
                Norm(s.K.AsSpan(t * kv, kv), layer.KeyNorm!, s.K.AsSpan(t * kv, kv));
            }
        }
        else if (layer.QueryNorm is { } queryNorm)
        {
            for (int i = 0; i < n * heads; i++)
                Norm(s.Q.AsSpan(i * headDim, headDim), queryNorm, s.Q.AsSpan(i * headDim, headDim));
            for (int i = 0; i < n * kvHeads; i++)
                Norm(s.K.AsSpan(i * headDim, headDim), layer.KeyNorm!, s.K.AsSpan(i * headDim, headDim));
        }

        // Sliding-window layers rotate with their own base where the family has one (Gemma 3's local layers); NoPE
        // layers (SmolLM 3) not at all.
        var (layerRope, cosTable, sinTable) = _slidingRope is not null && c.WindowOf(l) > 0 ? (_slidingRope, s.SlidingCos, s.SlidingSin) : (_rope, s.Cos, s.Sin);
        if (c.NoRopeLayers?[l] == true)
            layerRope = null;
        for (int t = 0; t < n; t++)
        {
            if (layerRope is { } rope)
            {
                var cos = cosTable.AsSpan(t * pairs, pairs);
                var sin = sinTable.AsSpan(t * pairs, pairs);
                rope.Apply(s.Q.AsSpan(t * q, q), heads, cos, sin);
                rope.Apply(s.K.AsSpan(t * kv, kv), kvHeads, cos, sin);
            }
            s.RowCaches[t].Store(l, s.RowPositions[t], s.K.AsSpan(t * kv, kv), s.V.AsSpan(t * kv, kv));
        }

        var options = new AttentionOptions(c.ResolvedAttentionScale, c.AttentionSoftCap, _alibiSlopes, c.WindowOf(l));
        if (shared is not null)
            s.Attention.Run(_pool, s.Q, shared.Keys(l), shared.Values(l), shared.HeadStride, s.AttentionOut, n, s.RowPositions[0], heads, kvHeads, headDim, options);
        else
            s.Attention.RunRows(_pool, s.Q, s.RowCaches, s.RowPositions, l, s.AttentionOut, n, heads, kvHeads, headDim, options);
        Project(s.AttentionOut, n, layer.Output, s.Attended);
    }

    /// <summary>s.Normed (n × hidden) → s.FedForward.</summary>
    private void FeedForward(int l, DecoderLayer layer, int n)
    {
        var c = _config;
        var s = _scratch;
        int f = c.FeedForwardOf(l);
        if (!c.GatedFeedForward)
        {
            Project(s.Normed, n, layer.Up, s.Gate);
            Activations.Apply(c.Activation, s.Gate.AsSpan(0, n * f));
        }
        else
        {
            if (layer.FusedGateUp)
            {
                Project(s.Normed, n, layer.Up, s.Qkv);
                for (int t = 0; t < n; t++)
                {
                    s.Qkv.AsSpan(t * 2 * f, f).CopyTo(s.Gate.AsSpan(t * f, f));
                    s.Qkv.AsSpan(t * 2 * f + f, f).CopyTo(s.Up.AsSpan(t * f, f));
                }
            }
            else
            {
                MatMul.MultiplyShared(_pool, s.Normed, n, layer.Gate!.Weight, s.Gate, layer.Up.Weight, s.Up);
                AddBias(layer.Gate, n, s.Gate);
                AddBias(layer.Up, n, s.Up);
            }
            s.GatedActivation.Run(_pool, c.Activation, s.Gate, s.Up, n, f);
        }
        Project(s.Gate, n, layer.Down, s.FedForward);
    }

    private void Project(float[] input, int n, Linear linear, float[] output)
    {
        MatMul.Multiply(_pool, input, n, linear.Weight, output);
        AddBias(linear, n, output);
    }

    private static void AddBias(Linear linear, int n, float[] output)
    {
        if (linear.Bias is { } bias)
        {
            int rows = bias.Length;
            for (int t = 0; t < n; t++)
                TensorPrimitives.Add(output.AsSpan(t * rows, rows), bias, output.AsSpan(t * rows, rows));
        }
    }

    /// <summary>Each row of <paramref name="input"/> normalised into <paramref name="output"/>; copied where <paramref name="norm"/> is null (no pre-norm).</summary>
    private void NormRows(float[] input, NormWeights? norm, int n, float[] output)
    {
        int d = _config.HiddenSize;
        if (norm is null)
        {
            input.AsSpan(0, n * d).CopyTo(output);
            return;
        }
        for (int t = 0; t < n; t++)
            Norm(input.AsSpan(t * d, d), norm, output.AsSpan(t * d, d));
    }

    private void Norm(ReadOnlySpan<float> x, NormWeights norm, Span<float> y)
    {
        if (_config.Norm == NormKind.RmsNorm)
        {
            Normalization.RmsNorm(x, norm.Weight, _config.NormEpsilon, y);
            if (norm.Bias is { } bias)
                TensorPrimitives.Add(y[..x.Length], bias, y);
        }
        else
        {
            Normalization.LayerNorm(x, norm.Weight, norm.Bias, _config.NormEpsilon, y);
        }
    }

    private void FinalNorm(ReadOnlySpan<float> x, Span<float> y)
    {
        if (_weights.FinalNorm is { } norm)
            Norm(x, norm, y);
        else
            x.CopyTo(y);
    }

    private static void AddScaled(float[] x, float[] y, int count, float scale)
    {
        if (scale == 1f)
            TensorPrimitives.Add(x.AsSpan(0, count), y.AsSpan(0, count), x.AsSpan(0, count));
        else
            TensorPrimitives.MultiplyAdd(y.AsSpan(0, count), scale, x.AsSpan(0, count), x.AsSpan(0, count));
    }

    public override void Dispose()
    {
        _binder.Dispose();
        _source.Dispose();
        base.Dispose();
    }
}

/// <summary>Activation buffers for one forward batch, grown on demand and reused, so decoding allocates nothing per token.</summary>
internal sealed class DecoderScratch
{
    /// <summary>Tokens per forward batch during prefill; longer prompts run in several batches.</summary>
    public const int MaxBatch = 64;

    private int _tokens = -1;

    public float[] X = [], Normed = [], Qkv = [], Q = [], K = [], V = [], AttentionOut = [], Attended = [], FedForward = [], Gate = [], Up = [], Cos = [], Sin = [];

    /// <summary>Angles of the sliding-window layers' own rotation, where the family has one (else empty).</summary>
    public float[] SlidingCos = [], SlidingSin = [];

    /// <summary>Rows at the embedding width, when it differs from the hidden size (input and output projections).</summary>
    public float[] Embedded = [];

    public CausalAttention Attention { get; } = new();

    public GatedActivation GatedActivation { get; } = new();

    /// <summary>Per row of a batch: the sequence's cache and the row's position in it.</summary>
    public KvCache[] RowCaches { get; } = new KvCache[MaxBatch];

    public int[] RowPositions { get; } = new int[MaxBatch];

    public void Ensure(int tokens, DecoderConfig c)
    {
        if (tokens <= _tokens)
            return;
        int capacity = Math.Max(tokens, Math.Min(MaxBatch, Math.Max(_tokens * 2, 1)));
        int headDim = c.ResolvedHeadDim, q = 0, kv = 0, f = 0;
        for (int l = 0; l < c.LayerCount; l++)
        {
            q = Math.Max(q, c.HeadsOf(l) * headDim);
            kv = Math.Max(kv, c.KvHeadsOf(l) * headDim);
            f = Math.Max(f, c.FeedForwardOf(l));
        }
        int d = c.HiddenSize, pairs = c.ResolvedRotaryDim / 2;
        X = new float[capacity * d];
        Normed = new float[capacity * d];
        Qkv = new float[capacity * Math.Max(q + 2 * kv, 2 * f)];
        Q = new float[capacity * q];
        K = new float[capacity * kv];
        V = new float[capacity * kv];
        AttentionOut = new float[capacity * q];
        Attended = new float[capacity * d];
        FedForward = new float[capacity * d];
        Gate = new float[capacity * f];
        Up = new float[capacity * f];
        Cos = new float[capacity * pairs];
        Sin = new float[capacity * pairs];
        SlidingCos = c.SlidingRopeTheta > 0 ? new float[capacity * pairs] : [];
        SlidingSin = c.SlidingRopeTheta > 0 ? new float[capacity * pairs] : [];
        Embedded = c.ProjectsEmbeddings ? new float[capacity * c.ResolvedEmbeddingSize] : [];
        _tokens = capacity;
    }
}

/// <summary>
/// gate ← act(gate) ⊙ up over a batch's rows; from <see cref="RowSplit.ParallelStepTokens"/> tokens on, four rows per item spread over
/// the pool (in a prefill the other threads would otherwise wait for it). Each element's arithmetic is the same either way.
/// </summary>
internal sealed unsafe class GatedActivation : IParallelWork
{
    private float* _gate, _up;
    private int _tokens, _width;
    private ActivationKind _kind;

    public void Run(WorkerPool pool, ActivationKind kind, float[] gate, float[] up, int tokens, int width)
    {
        fixed (float* g = gate)
        fixed (float* u = up)
        {
            _gate = g;
            _up = u;
            (_tokens, _width, _kind) = (tokens, width, kind);
            if (tokens >= RowSplit.ParallelStepTokens && pool.ThreadCount > 1)
                pool.For((tokens + 3) / 4, this);
            else
                Rows(0, tokens);
            _gate = _up = null;
        }
    }

    public void Execute(int index) => Rows(4 * index, Math.Min(4 * index + 4, _tokens));

    private void Rows(int first, int last)
    {
        var gate = new Span<float>(_gate + (long)first * _width, (last - first) * _width);
        var up = new ReadOnlySpan<float>(_up + (long)first * _width, (last - first) * _width);
        switch (_kind)
        {
            case ActivationKind.Silu:
                Activations.SwiGlu(gate, up);
                break;
            case ActivationKind.GeluTanh:
                Activations.GeGluTanh(gate, up);
                break;
            default:
                Activations.Apply(_kind, gate);
                TensorPrimitives.Multiply(gate, up, gate);
                break;
        }
    }
}
