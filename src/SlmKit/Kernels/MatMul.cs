using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SlmKit.Kernels.Quantization;
using SlmKit.Tensors;

namespace SlmKit.Kernels;

/// <summary>
/// y = x · Wᵀ for a weight matrix W [rows, cols] and activations x [tokens, cols] in F32. Float weights (F32, F16,
/// BF16): in decoding each row is widened in registers as it is read (<see cref="FloatDot.Row"/>); in prefill each
/// row is widened to F32 once and used for every token, four rows against four tokens at a time
/// (<see cref="FloatDot.Tile4x4"/>), so a prefill of many tokens reads the weights once (matrix-matrix work) rather
/// than once per token. Block-quantized weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K…Q6_K) are multiplied in place
/// with integer dot products (<see cref="QuantizedMatMul"/>).
/// </summary>
public static unsafe class MatMul
{
    [ThreadStatic] private static MatMulWork? t_work;
    [ThreadStatic] private static float[]? t_rowBuffer;

    /// <summary>
    /// Computes <paramref name="output"/>[t, r] = Σₖ <paramref name="input"/>[t, k] · W[r, k] for t &lt; <paramref name="tokens"/>.
    /// </summary>
    public static void Multiply(WorkerPool pool, ReadOnlySpan<float> input, int tokens, WeightTensor weight, Span<float> output)
    {
        int rows = checked((int)weight.RowCount);
        int cols = checked((int)weight.RowLength);
        if (input.Length < tokens * cols)
            throw new ArgumentException($"input holds {input.Length} floats, {tokens}×{cols} needed", nameof(input));
        if (output.Length < tokens * rows)
            throw new ArgumentException($"output holds {output.Length} floats, {tokens}×{rows} needed", nameof(output));
        if (!GgmlTypeInfo.IsSupportedForCompute(weight.Type))
            throw new SlmKitException($"tensor '{weight.Name}' is {weight.Type}; this build computes with F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and Q2_K…Q6_K weights");
        if (BlockFormats.IsQuantized(weight.Type))
        {
            QuantizedMatMul.Multiply(pool, input, tokens, weight, output);
            return;
        }

        fixed (float* x = input)
        fixed (float* y = output)
        {
            var work = t_work ??= new MatMulWork();
            work.Set(x, tokens, weight.Data, weight.Type, rows, cols, y, RowSplit.RowsPerRange(rows, pool.ThreadCount, tokens));
            pool.For(RowSplit.RangeCount(rows, work.RowsPerRange), work);
            work.Clear();
        }
    }

    /// <summary>
    /// The products of one input with two or three matrices (Q, K and V; gate and up), each as <see cref="Multiply"/>
    /// computes it. Quantized matrices whose types share an activation layout run in one parallel region on one
    /// quantization of the input, which saves a region and a quantization per matrix in every decode step.
    /// </summary>
    public static void MultiplyShared(WorkerPool pool, ReadOnlySpan<float> input, int tokens,
        WeightTensor weight0, Span<float> output0, WeightTensor weight1, Span<float> output1, WeightTensor? weight2 = null, Span<float> output2 = default)
    {
        bool fused = QuantizedMatMul.ShareActivations(weight0.Type, weight1.Type) && weight1.RowLength == weight0.RowLength
            && (weight2 is null || (QuantizedMatMul.ShareActivations(weight0.Type, weight2.Type) && weight2.RowLength == weight0.RowLength));
        if (!fused)
        {
            Multiply(pool, input, tokens, weight0, output0);
            Multiply(pool, input, tokens, weight1, output1);
            if (weight2 is not null)
                Multiply(pool, input, tokens, weight2, output2);
            return;
        }
        int cols = checked((int)weight0.RowLength);
        if (input.Length < tokens * cols)
            throw new ArgumentException($"input holds {input.Length} floats, {tokens}×{cols} needed", nameof(input));
        foreach (var (weight, length) in (ReadOnlySpan<(WeightTensor?, int)>)[(weight0, output0.Length), (weight1, output1.Length), (weight2, output2.Length)])
        {
            if (weight is not null && length < tokens * weight.RowCount)
                throw new ArgumentException($"the output for '{weight.Name}' holds {length} floats, {tokens}×{weight.RowCount} needed");
        }
        QuantizedMatMul.Multiply(pool, input, tokens, weight0, output0, weight1, output1, weight2, output2);
    }

    /// <summary>Widens weight row <paramref name="row"/> to F32 in <paramref name="destination"/> (length = columns).</summary>
    public static void WidenRow(byte* weights, GgmlType type, int cols, int row, Span<float> destination)
    {
        switch (type)
        {
            case GgmlType.F32:
                new ReadOnlySpan<float>((float*)weights + (long)row * cols, cols).CopyTo(destination);
                break;
            case GgmlType.F16:
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)weights + (long)row * cols, cols), destination);
                break;
            case GgmlType.BF16:
                Bf16.ToSingle(new ReadOnlySpan<ushort>((ushort*)weights + (long)row * cols, cols), destination);
                break;
            default:
                if (!BlockFormats.IsQuantized(type) || !GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out int blockBytes) || cols % blockSize != 0)
                    throw new SlmKitException($"{type} weights cannot be widened to F32 here");
                Dequantization.Row(type, weights + (long)row * (cols / blockSize) * blockBytes, destination[..cols]);
                break;
        }
    }

    private sealed class MatMulWork : IParallelWork
    {
        private float* _x;
        private int _tokens;
        private byte* _w;
        private GgmlType _type;
        private int _rows;
        private int _cols;
        private float* _y;

        public int RowsPerRange { get; private set; }

        public void Set(float* x, int tokens, byte* w, GgmlType type, int rows, int cols, float* y, int rowsPerRange)
        {
            RowsPerRange = rowsPerRange;
            _x = x;
            _tokens = tokens;
            _w = w;
            _type = type;
            _rows = rows;
            _cols = cols;
            _y = y;
        }

        public void Clear()
        {
            _x = null;
            _y = null;
            _w = null;
        }

        public void Execute(int index)
        {
            int first = index * RowsPerRange;
            int last = Math.Min(first + RowsPerRange, _rows);
            int cols = _cols, rows = _rows;
            long rowBytes = (long)cols * (_type == GgmlType.F32 ? sizeof(float) : sizeof(ushort));
            if (_tokens < RowSplit.PrefillTokens)
            {
                // Decoding reads each row once from memory: widen it in registers, no F32 copy.
                for (int r = first; r < last; r++)
                {
                    for (int t = 0; t < _tokens; t++)
                        _y[(long)t * rows + r] = FloatDot.Row(_type, _w + r * rowBytes, _x + (long)t * cols, cols);
                }
                return;
            }

            // Prefill: rows widened to F32 once (F32 rows are read in place) and used for every token, four rows
            // against four tokens at a time.
            var buffer = t_rowBuffer is { } existing && existing.Length >= 4 * cols ? existing : (t_rowBuffer = new float[4 * cols]);
            float* results = stackalloc float[16];
            fixed (float* widened = buffer)
            {
                int r = first;
                if (FloatDot.HasTile(cols))
                {
                    for (; r + 4 <= last; r += 4)
                    {
                        float* four = RowsAsSingles(r, 4, widened);
                        int t = 0;
                        for (; t + 4 <= _tokens; t += 4)
                        {
                            FloatDot.Tile4x4(four, cols, _x + (long)t * cols, cols, results);
                            for (int k = 0; k < 16; k++)
                                _y[(long)(t + k / 4) * rows + r + k % 4] = results[k];
                        }
                        for (; t < _tokens; t++)
                        {
                            for (int i = 0; i < 4; i++)
                                _y[(long)t * rows + r + i] = FloatDot.Singles(four + i * cols, _x + (long)t * cols, cols);
                        }
                    }
                }
                for (; r < last; r++)
                {
                    float* row = RowsAsSingles(r, 1, widened);
                    for (int t = 0; t < _tokens; t++)
                        _y[(long)t * rows + r] = FloatDot.Singles(row, _x + (long)t * cols, cols);
                }
            }
        }

        /// <summary>Rows r…r+count−1 as F32: in place for F32 weights, else widened into <paramref name="buffer"/>.</summary>
        private float* RowsAsSingles(int r, int count, float* buffer)
        {
            if (_type == GgmlType.F32)
                return (float*)_w + (long)r * _cols;
            for (int i = 0; i < count; i++)
                WidenRow(_w, _type, _cols, r + i, new Span<float>(buffer + i * _cols, _cols));
            return buffer;
        }
    }
}

/// <summary>bfloat16 ⇄ float32: a bfloat16 is the upper half of a float32's bits.</summary>
public static class Bf16
{
    public static void ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        Span<uint> bits = MemoryMarshal.Cast<float, uint>(destination);
        int i = 0;
        if (Vector128.IsHardwareAccelerated)
        {
            for (; i + Vector128<ushort>.Count <= source.Length; i += Vector128<ushort>.Count)
            {
                var packed = Vector128.Create(source.Slice(i, Vector128<ushort>.Count));
                var (lower, upper) = Vector128.Widen(packed);
                (Vector128.ShiftLeft(lower, 16)).CopyTo(bits.Slice(i));
                (Vector128.ShiftLeft(upper, 16)).CopyTo(bits.Slice(i + Vector128<uint>.Count));
            }
        }
        for (; i < source.Length; i++)
            bits[i] = (uint)source[i] << 16;
    }

    /// <summary>Rounds to nearest even, keeping NaN a NaN.</summary>
    public static ushort FromSingle(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFF_FFFF) > 0x7F80_0000)
            return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }
}
