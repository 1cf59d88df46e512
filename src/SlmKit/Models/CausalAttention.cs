using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SlmKit.Kernels;

namespace SlmKit.Models;

/// <summary>The per-layer choices of scaled dot-product attention.</summary>
/// <param name="Scale">Multiplies q·k (usually 1/√headDim).</param>
/// <param name="SoftCap">When positive, scores become cap·tanh(score/cap) before the mask (Gemma 2).</param>
/// <param name="AlibiSlopes">When set, head h adds slope[h]·(j − i) to the score of key j (BLOOM).</param>
/// <param name="Window">When positive, query i sees only keys j with i − j &lt; Window (sliding-window layers).</param>
internal readonly record struct AttentionOptions(float Scale, float SoftCap = 0, float[]? AlibiSlopes = null, int Window = 0);

/// <summary>
/// Scaled dot-product attention with a causal mask and grouped-query sharing: query head h reads KV head
/// h / (heads / kvHeads). One parallel item per (token, head).
/// </summary>
internal sealed class CausalAttention : IParallelWork
{
    [ThreadStatic] private static float[]? t_scores;

    private float[] _q = [], _keys = [], _values = [], _output = [];
    private int _start, _heads, _kvHeads, _headDim, _kvStride;
    private AttentionOptions _options;
    private KvCache[]? _rowCaches;
    private int[]? _rowPositions;
    private int _layer;

    /// <summary>
    /// Attends tokens start…start+tokens−1 (queries in <paramref name="q"/>, [tokens, heads·headDim]) over cached keys and
    /// values whose rows are <paramref name="kvStride"/> floats apart.
    /// </summary>
    public void Run(WorkerPool pool, float[] q, float[] keys, float[] values, float[] output, int tokens, int start, int heads, int kvHeads, int headDim, int kvStride, AttentionOptions options)
    {
        _q = q;
        _keys = keys;
        _values = values;
        _output = output;
        _start = start;
        _heads = heads;
        _kvHeads = kvHeads;
        _headDim = headDim;
        _kvStride = kvStride;
        _options = options;
        pool.For(tokens * heads, this);
        _q = _keys = _values = _output = [];
    }

    /// <summary>
    /// Attends rows that belong to different sequences (a continuous-batching decode step): row t reads the keys and
    /// values of <paramref name="layer"/> in rowCaches[t] up to its own position rowPositions[t].
    /// </summary>
    public void RunRows(WorkerPool pool, float[] q, KvCache[] rowCaches, int[] rowPositions, int layer, float[] output, int tokens, int heads, int kvHeads, int headDim, int kvStride, AttentionOptions options)
    {
        _rowCaches = rowCaches;
        _rowPositions = rowPositions;
        _layer = layer;
        try
        {
            Run(pool, q, [], [], output, tokens, 0, heads, kvHeads, headDim, kvStride, options);
        }
        finally
        {
            _rowCaches = null;
            _rowPositions = null;
        }
    }

    public void Execute(int index)
    {
        int t = index / _heads, h = index % _heads;
        int headDim = _headDim, qDim = _heads * headDim, kvStride = _kvStride;
        int kvHead = h / (_heads / _kvHeads);
        float[] keys = _keys, values = _values;
        int position = _start + t;
        if (_rowCaches is { } caches)
        {
            keys = caches[t].Keys(_layer);
            values = caches[t].Values(_layer);
            position = _rowPositions![t];
        }
        int length = position + 1;
        int first = _options.Window > 0 ? Math.Max(0, position - _options.Window + 1) : 0;
        var scores = t_scores is { } buffer && buffer.Length >= length ? buffer : (t_scores = new float[Math.Max(2 * length, 256)]);

        var query = new ReadOnlySpan<float>(_q, t * qDim + h * headDim, headDim);
        int j0 = first;
        if (Vector256.IsHardwareAccelerated && headDim % Vector256<float>.Count == 0)
        {
            // Four keys at a time: each query vector is loaded once for four products.
            for (; j0 + 4 <= length; j0 += 4)
                FourDots(query, keys, j0 * kvStride + kvHead * headDim, kvStride, scores.AsSpan(j0, 4), _options.Scale);
        }
        for (int j = j0; j < length; j++)
            scores[j] = ShortDot(query, new ReadOnlySpan<float>(keys, j * kvStride + kvHead * headDim, headDim)) * _options.Scale;
        var live = scores.AsSpan(first, length - first);
        if (_options.SoftCap > 0)
            Activations.SoftCap(live, _options.SoftCap);
        if (_options.AlibiSlopes is { } slopes)
        {
            float slope = slopes[h];
            for (int j = first; j < length; j++)
                scores[j] += slope * (j - position);
        }
        Activations.Softmax(live);

        var output = new Span<float>(_output, t * qDim + h * headDim, headDim);
        output.Clear();
        j0 = first;
        if (Vector256.IsHardwareAccelerated && headDim % Vector256<float>.Count == 0)
        {
            // Four values at a time: the output is loaded and stored once for four of them.
            for (; j0 + 4 <= length; j0 += 4)
                AddFourScaled(values, j0 * kvStride + kvHead * headDim, kvStride, scores.AsSpan(j0, 4), output);
        }
        for (int j = j0; j < length; j++)
            AddScaled(new ReadOnlySpan<float>(values, j * kvStride + kvHead * headDim, headDim), scores[j], output);
    }

    /// <summary>scores[i] = scale · query · keys[at + i·stride …] for i &lt; 4; the head size is a multiple of 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FourDots(ReadOnlySpan<float> query, float[] keys, int at, int stride, Span<float> scores, float scale)
    {
        int n = query.Length;
        ref float q = ref MemoryMarshal.GetReference(query);
        ref float k0 = ref MemoryMarshal.GetReference(keys.AsSpan(at, n));
        ref float k1 = ref MemoryMarshal.GetReference(keys.AsSpan(at + stride, n));
        ref float k2 = ref MemoryMarshal.GetReference(keys.AsSpan(at + 2 * stride, n));
        ref float k3 = ref MemoryMarshal.GetReference(keys.AsSpan(at + 3 * stride, n));
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (nuint i = 0; i < (nuint)n; i += (nuint)Vector256<float>.Count)
        {
            var qv = Vector256.LoadUnsafe(ref q, i);
            a0 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k0, i), a0);
            a1 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k1, i), a1);
            a2 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k2, i), a2);
            a3 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k3, i), a3);
        }
        scores[0] = Vector256.Sum(a0) * scale;
        scores[1] = Vector256.Sum(a1) * scale;
        scores[2] = Vector256.Sum(a2) * scale;
        scores[3] = Vector256.Sum(a3) * scale;
    }

    /// <summary>output += Σᵢ weights[i] · values[at + i·stride …] for i &lt; 4; the head size is a multiple of 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddFourScaled(float[] values, int at, int stride, ReadOnlySpan<float> weights, Span<float> output)
    {
        int n = output.Length;
        ref float o = ref MemoryMarshal.GetReference(output);
        ref float v0 = ref MemoryMarshal.GetReference(values.AsSpan(at, n));
        ref float v1 = ref MemoryMarshal.GetReference(values.AsSpan(at + stride, n));
        ref float v2 = ref MemoryMarshal.GetReference(values.AsSpan(at + 2 * stride, n));
        ref float v3 = ref MemoryMarshal.GetReference(values.AsSpan(at + 3 * stride, n));
        var w0 = Vector256.Create(weights[0]);
        var w1 = Vector256.Create(weights[1]);
        var w2 = Vector256.Create(weights[2]);
        var w3 = Vector256.Create(weights[3]);
        for (nuint i = 0; i < (nuint)n; i += (nuint)Vector256<float>.Count)
        {
            var sum = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v0, i), w0, Vector256.LoadUnsafe(ref o, i));
            sum = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v1, i), w1, sum);
            sum = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v2, i), w2, sum);
            Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v3, i), w3, sum).StoreUnsafe(ref o, i);
        }
    }

    // Head vectors are short (64–128 floats) and there is one product per cached position, per head and per layer, so
    // these loops are inlined rather than paying a TensorPrimitives call (length checks and dispatch) for each.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ShortDot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int i = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated && a.Length >= Vector256<float>.Count)
        {
            var acc = Vector256<float>.Zero;
            ref float pa = ref MemoryMarshal.GetReference(a);
            ref float pb = ref MemoryMarshal.GetReference(b[..a.Length]);
            for (; i + Vector256<float>.Count <= a.Length; i += Vector256<float>.Count)
                acc = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref pa, (nuint)i), Vector256.LoadUnsafe(ref pb, (nuint)i), acc);
            sum = Vector256.Sum(acc);
        }
        for (; i < a.Length; i++)
            sum += a[i] * b[i];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddScaled(ReadOnlySpan<float> x, float scale, Span<float> y)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated && y.Length >= Vector256<float>.Count)
        {
            var s = Vector256.Create(scale);
            ref float px = ref MemoryMarshal.GetReference(x[..y.Length]);
            ref float py = ref MemoryMarshal.GetReference(y);
            for (; i + Vector256<float>.Count <= y.Length; i += Vector256<float>.Count)
                Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref px, (nuint)i), s, Vector256.LoadUnsafe(ref py, (nuint)i)).StoreUnsafe(ref py, (nuint)i);
        }
        for (; i < y.Length; i++)
            y[i] += x[i] * scale;
    }
}
