using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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
/// h / (heads / kvHeads). One parallel item per (token, KV head, part of the keys), in which the query heads sharing
/// that KV head run one after another while its keys and values are in L1 (SmolLM-135M on two threads: six items per
/// token, three KV heads in two parts, rather than eighteen; each item claim is an atomic whose cache line crosses
/// between the cores). When the KV heads do not divide evenly among the threads (three on two threads would leave one
/// thread idle for a third of a decoding step), each head's keys are split in parts whose partial softmax sums are
/// merged afterwards, as flash-decoding does. Whether and where a token's keys are split depends only on the head and
/// thread counts and on that token's own context, never on the other tokens of the batch, so a sequence gets the same
/// attention alone, batched with others, or in a prefill.
/// </summary>
internal sealed class CausalAttention : IParallelWork
{
    /// <summary>Fewest keys worth a part of their own: below that the merge costs more than the balance saves.</summary>
    private const int MinKeysPerPart = 32;

    [ThreadStatic] private static float[]? t_scores;

    private float[] _q = [], _keys = [], _values = [], _output = [];
    private int _start, _heads, _kvHeads, _headDim, _headStride, _parts;
    private AttentionOptions _options;
    private KvCache[]? _rowCaches;
    private int[]? _rowPositions;
    private int _layer;

    // Per (token, head, part) when the keys are split: the part's unnormalised output Σ exp(s − max)·v, its max score and
    // its Σ exp(s − max).
    private float[] _partOutputs = [], _partMaxima = [], _partSums = [];

    /// <summary>
    /// Attends tokens start…start+tokens−1 (queries in <paramref name="q"/>, [tokens, heads·headDim]) over cached keys and
    /// values laid out as <see cref="KvCache"/> holds them: head by head, <paramref name="headStride"/> floats apart,
    /// each head's positions <paramref name="headDim"/> floats apart.
    /// </summary>
    public void Run(WorkerPool pool, float[] q, float[] keys, float[] values, int headStride, float[] output, int tokens, int start, int heads, int kvHeads, int headDim, AttentionOptions options)
    {
        _q = q;
        _keys = keys;
        _values = values;
        _output = output;
        _start = start;
        _heads = heads;
        _kvHeads = kvHeads;
        _headDim = headDim;
        _headStride = headStride;
        _options = options;
        _parts = PartsPerHead(kvHeads, pool.ThreadCount);
        if (_parts > 1)
            EnsureParts(tokens * heads * _parts, headDim);
        pool.For(tokens * kvHeads * _parts, this);
        if (_parts > 1)
            MergeParts(tokens * heads);
        _q = _keys = _values = _output = [];
    }

    /// <summary>
    /// Attends rows that belong to different sequences (a continuous-batching decode step): row t reads the keys and
    /// values of <paramref name="layer"/> in rowCaches[t] up to its own position rowPositions[t].
    /// </summary>
    public void RunRows(WorkerPool pool, float[] q, KvCache[] rowCaches, int[] rowPositions, int layer, float[] output, int tokens, int heads, int kvHeads, int headDim, AttentionOptions options)
    {
        _rowCaches = rowCaches;
        _rowPositions = rowPositions;
        _layer = layer;
        try
        {
            Run(pool, q, [], [], 0, output, tokens, 0, heads, kvHeads, headDim, options);
        }
        finally
        {
            _rowCaches = null;
            _rowPositions = null;
        }
    }

    /// <summary>
    /// Parts per head for <paramref name="heads"/> items per token (the KV heads): 1 when they already divide evenly
    /// among the threads or are many; else the fewest parts (up to 4) that make the item count of one token a multiple
    /// of the threads. A token whose context is shorter than <see cref="MinKeysPerPart"/> keys per part is not split
    /// (its first part takes every key).
    /// </summary>
    internal static int PartsPerHead(int heads, int threads)
    {
        if (threads <= 1 || heads % threads == 0 || heads >= 8 * threads)
            return 1;
        for (int parts = 2; parts <= 4; parts++)
        {
            if (heads * parts % threads == 0 || heads * parts >= 8 * threads)
                return parts;
        }
        return 1;
    }

    private void EnsureParts(int count, int headDim)
    {
        if (_partMaxima.Length < count)
        {
            _partMaxima = new float[count];
            _partSums = new float[count];
        }
        if (_partOutputs.Length < count * headDim)
            _partOutputs = new float[count * headDim];
    }

    public void Execute(int index)
    {
        int part = index % _parts, unit = index / _parts;
        int t = unit / _kvHeads, kvHead = unit % _kvHeads;
        float[] keys = _keys, values = _values;
        int position = _start + t, headStride = _headStride;
        if (_rowCaches is { } caches)
        {
            keys = caches[t].Keys(_layer);
            values = caches[t].Values(_layer);
            headStride = caches[t].HeadStride;
            position = _rowPositions![t];
        }
        int length = position + 1;
        int first = _options.Window > 0 ? Math.Max(0, position - _options.Window + 1) : 0;
        // Whether this token's keys are split depends on its own key count only (see the class summary). An unsplit
        // token's first part writes the final, normalised output; its other parts have nothing to do.
        bool split = false;
        if (_parts > 1)
        {
            int keyCount = length - first;
            split = keyCount >= _parts * MinKeysPerPart;
            if (!split && part > 0)
                return;
            if (split)
            {
                int share = (keyCount + _parts - 1) / _parts;
                first += part * share;
                length = Math.Min(length, first + share);
            }
        }
        // The query heads that share this KV head one after another, while its keys and values are in L1.
        int group = _heads / _kvHeads;
        for (int h = kvHead * group; h < (kvHead + 1) * group; h++)
            AttendHead(t, h, part, keys, values, kvHead * headStride, first, length, position, split);
    }

    /// <summary>Query head <paramref name="h"/> of token <paramref name="t"/> over keys [first, length) of its KV head.</summary>
    private void AttendHead(int t, int h, int part, float[] keys, float[] values, int offset, int first, int length, int position, bool split)
    {
        int headDim = _headDim, qDim = _heads * headDim;
        int slot = (t * _heads + h) * _parts + part;
        var output = split
            ? new Span<float>(_partOutputs, slot * headDim, headDim)
            : new Span<float>(_output, t * qDim + h * headDim, headDim);

        var scores = t_scores is { } buffer && buffer.Length >= length ? buffer : (t_scores = new float[Math.Max(2 * length, 256)]);
        var query = new ReadOnlySpan<float>(_q, t * qDim + h * headDim, headDim);
        bool vectors = Vector256.IsHardwareAccelerated && headDim % Vector256<float>.Count == 0;
        bool wide = Vector512.IsHardwareAccelerated && headDim % Vector512<float>.Count == 0;
        int j0 = first;
        if (vectors)
        {
            // Eight keys at a time: the query is loaded once for eight products, and their eight horizontal sums
            // are reduced together.
            for (; j0 + 8 <= length; j0 += 8)
            {
                if (wide)
                    EightDots512(query, keys, offset + j0 * headDim, scores.AsSpan(j0, 8), _options.Scale);
                else
                    EightDots(query, keys, offset + j0 * headDim, scores.AsSpan(j0, 8), _options.Scale);
            }
        }
        for (int j = j0; j < length; j++)
            scores[j] = ShortDot(query, new ReadOnlySpan<float>(keys, offset + j * headDim, headDim)) * _options.Scale;

        var live = scores.AsSpan(first, length - first);
        if (_options.SoftCap > 0)
            Activations.SoftCap(live, _options.SoftCap);
        if (_options.AlibiSlopes is { } slopes)
        {
            float slope = slopes[h];
            for (int j = first; j < length; j++)
                scores[j] += slope * (j - position);
        }
        // Unnormalised weights exp(s − max); the output is divided by their sum once at the end (or by the merge).
        float max = TensorPrimitives.Max(live);
        TensorPrimitives.Subtract(live, max, live);
        TensorPrimitives.Exp(live, live);
        float sum = TensorPrimitives.Sum(live);

        if (vectors)
        {
            if (wide)
                WeightedSum512(values, offset + first * headDim, live, output);
            else
                WeightedSum(values, offset + first * headDim, live, output);
        }
        else
        {
            output.Clear();
            for (int j = first; j < length; j++)
                AddScaled(new ReadOnlySpan<float>(values, offset + j * headDim, headDim), scores[j], output);
        }

        if (split)
        {
            _partMaxima[slot] = max;
            _partSums[slot] = sum;
        }
        else
        {
            TensorPrimitives.Multiply(output, 1f / sum, output);
            if (_parts > 1)
                _partSums[slot] = float.NaN; // marks the item final for MergeParts
        }
    }

    /// <summary>
    /// output[item] = Σₚ e^(maxₚ − M)·outₚ / Σₚ e^(maxₚ − M)·sumₚ over the parts of each split (token, head), M the
    /// largest maxₚ; items that were not split already hold their output.
    /// </summary>
    private void MergeParts(int items)
    {
        int headDim = _headDim, parts = _parts;
        for (int item = 0; item < items; item++)
        {
            int firstPart = item * parts;
            if (float.IsNaN(_partSums[firstPart]))
                continue;
            float max = float.NegativeInfinity;
            for (int p = 0; p < parts; p++)
                max = MathF.Max(max, _partMaxima[firstPart + p]);
            var output = new Span<float>(_output, item * headDim, headDim);
            output.Clear();
            float total = 0;
            for (int p = 0; p < parts; p++)
            {
                float factor = MathF.Exp(_partMaxima[firstPart + p] - max);
                total += factor * _partSums[firstPart + p];
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(_partOutputs, (firstPart + p) * headDim, headDim), factor, output, output);
            }
            TensorPrimitives.Multiply(output, 1f / total, output);
        }
    }

    /// <summary>
    /// scores[i] = scale · query · keys[at + i·n …] for i &lt; 8, n the head size (a multiple of 8). Eight
    /// accumulators, then one transposing reduction (six hadds, two lane permutes) instead of eight horizontal sums.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EightDots(ReadOnlySpan<float> query, float[] keys, int at, Span<float> scores, float scale)
    {
        int n = query.Length;
        ref float q = ref MemoryMarshal.GetReference(query);
        ref float k0 = ref MemoryMarshal.GetReference(keys.AsSpan(at, 8 * n));
        nuint s = (nuint)n;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (nuint i = 0; i < (nuint)n; i += (nuint)Vector256<float>.Count)
        {
            var qv = Vector256.LoadUnsafe(ref q, i);
            a0 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k0, i), a0);
            a1 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k0, s + i), a1);
            a2 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k0, 2 * s + i), a2);
            a3 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k0, 3 * s + i), a3);
            a4 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k0, 4 * s + i), a4);
            a5 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k0, 5 * s + i), a5);
            a6 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k0, 6 * s + i), a6);
            a7 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k0, 7 * s + i), a7);
        }
        (Sums(a0, a1, a2, a3, a4, a5, a6, a7) * scale).StoreUnsafe(ref MemoryMarshal.GetReference(scores));
    }

    /// <summary>
    /// <see cref="EightDots"/> with 512-bit products (the head size a multiple of 16): half the multiply-adds, and
    /// each accumulator's two halves added before the same reduction.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EightDots512(ReadOnlySpan<float> query, float[] keys, int at, Span<float> scores, float scale)
    {
        int n = query.Length;
        ref float q = ref MemoryMarshal.GetReference(query);
        ref float k0 = ref MemoryMarshal.GetReference(keys.AsSpan(at, 8 * n));
        nuint s = (nuint)n;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (nuint i = 0; i < (nuint)n; i += (nuint)Vector512<float>.Count)
        {
            var qv = Vector512.LoadUnsafe(ref q, i);
            a0 = Vector512.FusedMultiplyAdd(qv, Vector512.LoadUnsafe(ref k0, i), a0);
            a1 = Vector512.FusedMultiplyAdd(qv, Vector512.LoadUnsafe(ref k0, s + i), a1);
            a2 = Vector512.FusedMultiplyAdd(qv, Vector512.LoadUnsafe(ref k0, 2 * s + i), a2);
            a3 = Vector512.FusedMultiplyAdd(qv, Vector512.LoadUnsafe(ref k0, 3 * s + i), a3);
            a4 = Vector512.FusedMultiplyAdd(qv, Vector512.LoadUnsafe(ref k0, 4 * s + i), a4);
            a5 = Vector512.FusedMultiplyAdd(qv, Vector512.LoadUnsafe(ref k0, 5 * s + i), a5);
            a6 = Vector512.FusedMultiplyAdd(qv, Vector512.LoadUnsafe(ref k0, 6 * s + i), a6);
            a7 = Vector512.FusedMultiplyAdd(qv, Vector512.LoadUnsafe(ref k0, 7 * s + i), a7);
        }
        var sums = Sums(a0.GetLower() + a0.GetUpper(), a1.GetLower() + a1.GetUpper(), a2.GetLower() + a2.GetUpper(),
            a3.GetLower() + a3.GetUpper(), a4.GetLower() + a4.GetUpper(), a5.GetLower() + a5.GetUpper(),
            a6.GetLower() + a6.GetUpper(), a7.GetLower() + a7.GetUpper());
        (sums * scale).StoreUnsafe(ref MemoryMarshal.GetReference(scores));
    }

    /// <summary>The eight accumulators' horizontal sums, in order, in one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Sums(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3,
        Vector256<float> a4, Vector256<float> a5, Vector256<float> a6, Vector256<float> a7)
    {
        if (!Avx.IsSupported)
        {
            return Vector256.Create(Vector256.Sum(a0), Vector256.Sum(a1), Vector256.Sum(a2), Vector256.Sum(a3),
                Vector256.Sum(a4), Vector256.Sum(a5), Vector256.Sum(a6), Vector256.Sum(a7));
        }
        // Per 128-bit lane, hadd(hadd(a0, a1), hadd(a2, a3)) holds the four keys' sums of that lane's elements.
        var low = Avx.HorizontalAdd(Avx.HorizontalAdd(a0, a1), Avx.HorizontalAdd(a2, a3));
        var high = Avx.HorizontalAdd(Avx.HorizontalAdd(a4, a5), Avx.HorizontalAdd(a6, a7));
        return Avx.Permute2x128(low, high, 0x20) + Avx.Permute2x128(low, high, 0x31);
    }

    /// <summary>
    /// output = Σⱼ weights[j] · values[at + j·n …], n the head size (a multiple of 8). Sixty-four dimensions at a
    /// time stay in eight registers across all the keys, so the output is stored once rather than once per key.
    /// </summary>
    private static void WeightedSum(float[] values, int at, ReadOnlySpan<float> weights, Span<float> output)
    {
        int n = output.Length, count = weights.Length, stride = n;
        ref float o = ref MemoryMarshal.GetReference(output);
        ref float w = ref MemoryMarshal.GetReference(weights);
        ref float v0 = ref MemoryMarshal.GetReference(values.AsSpan(at, count * n));
        int d = 0;
        for (; d + 64 <= n; d += 64)
        {
            Vector256<float> o0 = default, o1 = default, o2 = default, o3 = default, o4 = default, o5 = default, o6 = default, o7 = default;
            ref float v = ref Unsafe.Add(ref v0, d);
            for (int j = 0; j < count; j++)
            {
                var weight = Vector256.Create(Unsafe.Add(ref w, j));
                nuint row = (nuint)j * (nuint)stride;
                o0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v, row), weight, o0);
                o1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v, row + 8), weight, o1);
                o2 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v, row + 16), weight, o2);
                o3 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v, row + 24), weight, o3);
                o4 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v, row + 32), weight, o4);
                o5 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v, row + 40), weight, o5);
                o6 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v, row + 48), weight, o6);
                o7 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v, row + 56), weight, o7);
            }
            ref float target = ref Unsafe.Add(ref o, d);
            o0.StoreUnsafe(ref target);
            o1.StoreUnsafe(ref target, 8);
            o2.StoreUnsafe(ref target, 16);
            o3.StoreUnsafe(ref target, 24);
            o4.StoreUnsafe(ref target, 32);
            o5.StoreUnsafe(ref target, 40);
            o6.StoreUnsafe(ref target, 48);
            o7.StoreUnsafe(ref target, 56);
        }
        // Head sizes that are not a multiple of 64 (80, 96…): the rest eight dimensions at a time.
        for (; d < n; d += 8)
        {
            var sum = Vector256<float>.Zero;
            ref float v = ref Unsafe.Add(ref v0, d);
            for (int j = 0; j < count; j++)
                sum = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref v, (nuint)j * (nuint)stride), Vector256.Create(Unsafe.Add(ref w, j)), sum);
            sum.StoreUnsafe(ref o, (nuint)d);
        }
    }

    /// <summary>
    /// <see cref="WeightedSum"/> with 512-bit multiply-adds (the head size a multiple of 16). Sixty-four dimensions fill
    /// four registers; even and odd keys go to separate ones, so eight chains of multiply-adds are in flight, as in the
    /// 256-bit version.
    /// </summary>
    private static void WeightedSum512(float[] values, int at, ReadOnlySpan<float> weights, Span<float> output)
    {
        int n = output.Length, count = weights.Length;
        ref float o = ref MemoryMarshal.GetReference(output);
        ref float w = ref MemoryMarshal.GetReference(weights);
        ref float v0 = ref MemoryMarshal.GetReference(values.AsSpan(at, count * n));
        nuint stride = (nuint)n;
        int d = 0;
        for (; d + 64 <= n; d += 64)
        {
            Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default, o0 = default, o1 = default, o2 = default, o3 = default;
            ref float v = ref Unsafe.Add(ref v0, d);
            int j = 0;
            for (; j + 2 <= count; j += 2)
            {
                var even = Vector512.Create(Unsafe.Add(ref w, j));
                var odd = Vector512.Create(Unsafe.Add(ref w, j + 1));
                nuint row = (nuint)j * stride;
                e0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, row), even, e0);
                e1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, row + 16), even, e1);
                e2 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, row + 32), even, e2);
                e3 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, row + 48), even, e3);
                o0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, row + stride), odd, o0);
                o1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, row + stride + 16), odd, o1);
                o2 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, row + stride + 32), odd, o2);
                o3 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, row + stride + 48), odd, o3);
            }
            if (j < count)
            {
                var last = Vector512.Create(Unsafe.Add(ref w, j));
                nuint row = (nuint)j * stride;
                e0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, row), last, e0);
                e1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, row + 16), last, e1);
                e2 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, row + 32), last, e2);
                e3 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, row + 48), last, e3);
            }
            ref float target = ref Unsafe.Add(ref o, d);
            (e0 + o0).StoreUnsafe(ref target);
            (e1 + o1).StoreUnsafe(ref target, 16);
            (e2 + o2).StoreUnsafe(ref target, 32);
            (e3 + o3).StoreUnsafe(ref target, 48);
        }
        // Head sizes that are not a multiple of 64 (80, 96…): the rest sixteen dimensions at a time.
        for (; d < n; d += 16)
        {
            var sum = Vector512<float>.Zero;
            ref float v = ref Unsafe.Add(ref v0, d);
            for (int j = 0; j < count; j++)
                sum = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref v, (nuint)j * stride), Vector512.Create(Unsafe.Add(ref w, j)), sum);
            sum.StoreUnsafe(ref o, (nuint)d);
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
        for (int i = 0; i < y.Length; i++)
            y[i] += x[i] * scale;
    }
}
