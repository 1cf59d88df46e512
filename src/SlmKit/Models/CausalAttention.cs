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

    public void Execute(int index)
    {
        int t = index / _heads, h = index % _heads;
        int headDim = _headDim, qDim = _heads * headDim, kvDim = _kvHeads * headDim;
        int kvHead = h / (_heads / _kvHeads);
        int length = _start + t + 1;
        var scores = t_scores is { } buffer && buffer.Length >= length ? buffer : (t_scores = new float[Math.Max(2 * length, 256)]);

        var query = new ReadOnlySpan<float>(_q, t * qDim + h * headDim, headDim);
        for (int j = 0; j < length; j++)
            scores[j] = TensorPrimitives.Dot(query, new ReadOnlySpan<float>(_keys, j * kvDim + kvHead * headDim, headDim)) * _scale;
        Activations.Softmax(scores.AsSpan(0, length));

        var output = new Span<float>(_output, t * qDim + h * headDim, headDim);
        output.Clear();
        for (int j = 0; j < length; j++)
        {
            var value = new ReadOnlySpan<float>(_values, j * kvDim + kvHead * headDim, headDim);
            TensorPrimitives.MultiplyAdd(value, scores[j], output, output);
        }
    }
}
