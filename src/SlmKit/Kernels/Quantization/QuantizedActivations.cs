using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SlmKit.Kernels.Quantization;

/// <summary>
/// One activation row quantized to int8 for integer dot products with quantized weights. Two layouts, as in llama.cpp:
/// <list type="bullet">
/// <item>32-element blocks (for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 weights): <see cref="Quants"/>[i], one scale per block in
/// <see cref="Scales"/>, and per block the scale times the sum of its quants in <see cref="ScaledSums"/> (the term
/// that the offsets and minimums of the weight blocks multiply) and the integer sum itself in <see cref="Sums"/> (for
/// the integer offsets of Q4_0 and Q5_0, which can then enter the integer dot product), and the scales of each pair of
/// blocks spread over a 512-bit vector in <see cref="ScalePairs"/>.</item>
/// <item>256-element super-blocks (for the K types, Q8_K-style): one scale per super-block and the integer sum of each
/// 16 quants in <see cref="Sums16"/>.</item>
/// </list>
/// The layout is structure-of-arrays, so the int8 quants are contiguous and aligned for vector loads.
/// </summary>
public readonly unsafe struct ActivationRow
{
    public ActivationRow(sbyte* quants, float* scales, float* scaledSums, int* sums, short* sums16, float* scalePairs = null)
    {
        Quants = quants;
        Scales = scales;
        ScaledSums = scaledSums;
        Sums = sums;
        Sums16 = sums16;
        ScalePairs = scalePairs;
    }

    public readonly sbyte* Quants;
    public readonly float* Scales;
    public readonly float* ScaledSums;
    public readonly int* Sums;
    public readonly short* Sums16;

    /// <summary>
    /// 32-element blocks: for each pair of blocks (2k, 2k + 1), 16 floats: Scales[2k] eight times, then Scales[2k + 1]
    /// eight times, 64-byte aligned; a 512-bit kernel multiplies two blocks' weight scales by them with one load, where
    /// building the vector from the two floats took four instructions per pair. Null where there is no whole pair, and
    /// on CPUs without those kernels.
    /// </summary>
    public readonly float* ScalePairs;
}

/// <summary>Reusable buffers holding [tokens, cols] activations quantized per block; grown on demand, never shrunk.</summary>
public sealed unsafe class QuantizedActivations : IDisposable
{
    private sbyte* _quants;
    private float* _scales;
    private float* _scaledSums;
    private int* _sums;
    private short* _sums16;
    private float* _scalePairs;
    private long _capacity;

    public int Tokens { get; private set; }
    public int Columns { get; private set; }
    public bool SuperBlocks { get; private set; }

    /// <summary>The quantized row of token <paramref name="t"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ActivationRow Row(int t)
    {
        long cols = Columns;
        return SuperBlocks
            ? new ActivationRow(_quants + t * cols, _scales + t * (cols / 256), null, null, _sums16 + t * (cols / 16))
            : new ActivationRow(_quants + t * cols, _scales + t * (cols / 32), _scaledSums + t * (cols / 32), _sums + t * (cols / 32), null,
                cols >= 64 && Avx512Dot.IsSupported ? _scalePairs + t * (cols / 64 * 16) : null);
    }

    private QuantizeRows? _rows;

    /// <summary>
    /// As <see cref="Quantize(ReadOnlySpan{float}, int, int, bool)"/>, with the rows of a batch of at least
    /// <see cref="RowSplit.ParallelStepTokens"/> tokens divided among <paramref name="pool"/>'s threads: in a prefill the other
    /// threads would otherwise wait while one quantizes the input of every product.
    /// </summary>
    public void Quantize(WorkerPool pool, ReadOnlySpan<float> input, int tokens, int cols, bool superBlocks)
    {
        if (tokens < RowSplit.ParallelStepTokens || pool.ThreadCount == 1)
        {
            Quantize(input, tokens, cols, superBlocks);
            return;
        }
        Prepare(input, tokens, cols, superBlocks);
        fixed (float* x = input)
        {
            var rows = _rows ??= new QuantizeRows(this);
            rows.Input = x;
            // Four tokens per item: with two threads taking items from both ends, each quantizes one run of rows.
            pool.For((tokens + 3) / 4, rows);
            rows.Input = null;
        }
    }

    /// <summary>
    /// Quantizes <paramref name="tokens"/> rows of <paramref name="cols"/> floats: per 32 elements with
    /// <paramref name="superBlocks"/> false, per 256 (with sums of each 16) when true. cols must be a multiple of the block.
    /// </summary>
    public void Quantize(ReadOnlySpan<float> input, int tokens, int cols, bool superBlocks)
    {
        Prepare(input, tokens, cols, superBlocks);
        fixed (float* x = input)
            QuantizeTokens(x, 0, tokens);
    }

    private void Prepare(ReadOnlySpan<float> input, int tokens, int cols, bool superBlocks)
    {
        int block = superBlocks ? 256 : 32;
        if (cols % block != 0)
            throw new ArgumentException($"{cols} columns are not a whole number of {block}-element blocks", nameof(cols));
        if (input.Length < (long)tokens * cols)
            throw new ArgumentException("input too short", nameof(input));
        Ensure((long)tokens * cols);
        Tokens = tokens;
        Columns = cols;
        SuperBlocks = superBlocks;
    }

    /// <summary>Quantizes the rows of tokens [<paramref name="first"/>, <paramref name="last"/>) of <paramref name="x"/>.</summary>
    private void QuantizeTokens(float* x, int first, int last)
    {
        int block = SuperBlocks ? 256 : 32;
        long perRow = Columns / block;
        for (long b = first * perRow; b < last * perRow; b++)
        {
            float* source = x + b * block;
            sbyte* q = _quants + b * block;
            if (SuperBlocks)
                _scales[b] = QuantizeBlock(source, q, 256, out _, _sums16 + b * 16);
            else
            {
                _scales[b] = QuantizeBlock(source, q, 32, out int sum, null);
                _scaledSums[b] = _scales[b] * sum;
                _sums[b] = sum;
            }
        }
        // Only the 512-bit kernels read the spread pairs: elsewhere they are neither written nor handed out.
        if (!SuperBlocks && Avx512Dot.IsSupported)
        {
            long pairsPerRow = Columns / 64;
            for (long t = first; t < last; t++)
            {
                float* scales = _scales + t * perRow, pairs = _scalePairs + t * pairsPerRow * 16;
                for (long k = 0; k < pairsPerRow; k++)
                {
                    Vector256.Create(scales[2 * k]).Store(pairs + 16 * k);
                    Vector256.Create(scales[2 * k + 1]).Store(pairs + 16 * k + 8);
                }
            }
        }
    }

    /// <summary>Four tokens' rows per item of a parallel quantization.</summary>
    private sealed class QuantizeRows(QuantizedActivations owner) : IParallelWork
    {
        public float* Input;

        public void Execute(int index) => owner.QuantizeTokens(Input, 4 * index, Math.Min(4 * index + 4, owner.Tokens));
    }

    /// <summary>
    /// Symmetric int8 quantization of <paramref name="n"/> values: d = max|x| / 127, q = round-to-even(x / d). Returns d;
    /// gives the sum of the quants, and the sum of each 16 when <paramref name="sums16"/> is not null.
    /// </summary>
    internal static float QuantizeBlock(float* x, sbyte* q, int n, out int sum, short* sums16)
    {
        float amax = 0;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var max = Vector256<float>.Zero;
            for (; i < n; i += 8)
                max = Vector256.Max(max, Vector256.Abs(Vector256.Load(x + i)));
            amax = Max(max);
        }
        else
        {
            for (; i < n; i++)
                amax = MathF.Max(amax, MathF.Abs(x[i]));
        }

        float d = amax / 127f;
        float id = amax != 0 ? 127f / amax : 0f;
        sum = 0;
        i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var scale = Vector256.Create(id);
            var total = Vector256<int>.Zero;
            for (; i < n; i += 16)
            {
                var a = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + i) * scale));
                var b = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + i + 8) * scale));
                var packed = Vector256.Narrow(a, b); // 16 shorts
                var bytes = Vector128.Narrow(packed.GetLower(), packed.GetUpper());
                bytes.Store(q + i);
                var pair = a + b;
                total += pair;
                if (sums16 != null)
                    sums16[i >> 4] = (short)Vector256.Sum(pair);
            }
            sum = Vector256.Sum(total);
        }
        else
        {
            for (; i < n; i++)
            {
                int v = (int)MathF.Round(x[i] * id);
                q[i] = (sbyte)v;
                sum += v;
                if (sums16 != null)
                {
                    if ((i & 15) == 0)
                        sums16[i >> 4] = 0;
                    sums16[i >> 4] += (short)v;
                }
            }
        }
        return d;
    }

    private static float Max(Vector256<float> v)
    {
        var m = Vector128.Max(v.GetLower(), v.GetUpper());
        float r = 0;
        for (int k = 0; k < 4; k++)
            r = MathF.Max(r, m.GetElement(k));
        return r;
    }

    private void Ensure(long elements)
    {
        if (elements <= _capacity)
            return;
        Free();
        long capacity = Math.Max(elements, 4096);
        _quants = (sbyte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)capacity, 64);
        _scales = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(capacity / 32 * sizeof(float)), 64);
        _scaledSums = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(capacity / 32 * sizeof(float)), 64);
        _sums = (int*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(capacity / 32 * sizeof(int)), 64);
        _sums16 = (short*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(capacity / 16 * sizeof(short)), 64);
        _scalePairs = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(capacity / 64 * 16 * sizeof(float)), 64);
        _capacity = capacity;
    }

    private void Free()
    {
        System.Runtime.InteropServices.NativeMemory.AlignedFree(_quants);
        System.Runtime.InteropServices.NativeMemory.AlignedFree(_scales);
        System.Runtime.InteropServices.NativeMemory.AlignedFree(_scaledSums);
        System.Runtime.InteropServices.NativeMemory.AlignedFree(_sums);
        System.Runtime.InteropServices.NativeMemory.AlignedFree(_sums16);
        System.Runtime.InteropServices.NativeMemory.AlignedFree(_scalePairs);
        _quants = null;
        _scales = null;
        _scaledSums = null;
        _sums = null;
        _sums16 = null;
        _scalePairs = null;
        _capacity = 0;
    }

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    ~QuantizedActivations() => Free();
}
