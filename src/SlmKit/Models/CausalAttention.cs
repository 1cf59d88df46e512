using System.Numerics.Tensors;
using SlmKit.Kernels;

namespace SlmKit.Models;

/// <summary>
/// Scaled dot-product attention with a causal mask and grouped-query sharing: query head h reads KV head
/// h / (heads / kvHeads). One parallel item per (token, head).
/// </summary>
internal sealed class CausalAttention : IParallelWork
{
    [ThreadStatic] private static float[]? t_scores;

    private float[] _q = [], _keys = [], _values = [], _output = [];
    private int _start, _heads, _kvHeads, _headDim;
    private float _scale;

    public void Run(WorkerPool pool, float[] q, float[] keys, float[] values, float[] output, int tokens, int start, int heads, int kvHeads, int headDim, float scale)
    {
        _q = q;
        _keys = keys;
        _values = values;
        _output = output;
        _start = start;
        _heads = heads;
        _kvHeads = kvHeads;
        _headDim = headDim;
        _scale = scale;
        pool.For(tokens * heads, this);
        _q = _keys = _values = _output = [];
    }

    private IReadOnlyList<KvCache>? _caches;
    private int _firstCache, _layer;

    /// <summary>
    /// Attention for one new token in each of several sequences: row t of <paramref name="q"/> belongs to
    /// caches[firstCache + t], whose keys and values of <paramref name="layer"/> already hold the token at position Length.
    /// </summary>
    public void RunDecode(WorkerPool pool, float[] q, IReadOnlyList<KvCache> caches, int firstCache, int sequences, int layer, float[] output,
        int heads, int kvHeads, int headDim, float scale)
    {
        _q = q;
        _output = output;
        _caches = caches;
        _firstCache = firstCache;
        _layer = layer;
        _heads = heads;
        _kvHeads = kvHeads;
        _headDim = headDim;
        _scale = scale;
        pool.For(sequences * heads, this);
        _q = _output = [];
        _caches = null;
    }

    public void Execute(int index)
    {
        int t = index / _heads, h = index % _heads;
        int headDim = _headDim, qDim = _heads * headDim, kvDim = _kvHeads * headDim;
        int kvHead = h / (_heads / _kvHeads);
        int length;
        float[] keys, values;
        if (_caches is { } caches)
        {
            var cache = caches[_firstCache + t];
            keys = cache.Keys(_layer);
            values = cache.Values(_layer);
            length = cache.Length + 1;
        }
        else
        {
            keys = _keys;
            values = _values;
            length = _start + t + 1;
        }
        var scores = t_scores is { } buffer && buffer.Length >= length ? buffer : (t_scores = new float[Math.Max(length, 256)]);

        var query = new ReadOnlySpan<float>(_q, t * qDim + h * headDim, headDim);
        for (int j = 0; j < length; j++)
            scores[j] = TensorPrimitives.Dot(query, new ReadOnlySpan<float>(keys, j * kvDim + kvHead * headDim, headDim)) * _scale;
        Activations.Softmax(scores.AsSpan(0, length));

        var output = new Span<float>(_output, t * qDim + h * headDim, headDim);
        output.Clear();
        for (int j = 0; j < length; j++)
        {
            var value = new ReadOnlySpan<float>(values, j * kvDim + kvHead * headDim, headDim);
            TensorPrimitives.MultiplyAdd(value, scores[j], output, output);
        }
    }
}
