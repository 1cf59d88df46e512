using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SlmKit.Tensors;

namespace SlmKit.Kernels;

/// <summary>
/// Dot products with float weights (F32, F16, BF16). Decoding: one weight row against one activation row, the F16 and
/// BF16 weights widened in registers (no F32 copy of the row is written and read back). Prefill: four widened rows
/// against four tokens at a time, sixteen accumulators, so each loaded vector feeds four multiply-adds.
/// </summary>
/// <remarks>
/// .NET has no F16C intrinsic (vcvtph2ps), so halves are widened with integer operations: the sign-extended half shifted
/// left by 13 puts the sign at bit 31 and the exponent and mantissa below the float's exponent field; masking the
/// three bits between and multiplying by 2¹¹² rebiases the exponent (15 → 127), exactly, for normal and subnormal halves
/// alike; an all-ones exponent (infinity, NaN) is then forced to the float's all-ones exponent.
/// </remarks>
public static unsafe class FloatDot
{
    private const uint SignAndMagnitudeMask = 0x8FFF_E000;
    private const uint HalfExponentBits = 0x0F80_0000;
    private const uint SingleExponentBits = 0x7F80_0000;
    private const float Rebias = 5.192296858534828e33f; // 2^112

    /// <summary>Floats of 16 sign-extended halves (the half's bits in the low 16 bits of each lane, sign-extended).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> HalfToSingle(Vector512<int> halves)
    {
        var bits = (halves << 13).AsUInt32() & Vector512.Create(SignAndMagnitudeMask);
        var value = (bits.AsSingle() * Vector512.Create(Rebias)).AsUInt32();
        var special = Vector512.Equals(bits & Vector512.Create(HalfExponentBits), Vector512.Create(HalfExponentBits));
        return (value | (special & Vector512.Create(SingleExponentBits))).AsSingle();
    }

    /// <inheritdoc cref="HalfToSingle(Vector512{int})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> HalfToSingle(Vector256<int> halves)
    {
        var bits = (halves << 13).AsUInt32() & Vector256.Create(SignAndMagnitudeMask);
        var value = (bits.AsSingle() * Vector256.Create(Rebias)).AsUInt32();
        var special = Vector256.Equals(bits & Vector256.Create(HalfExponentBits), Vector256.Create(HalfExponentBits));
        return (value | (special & Vector256.Create(SingleExponentBits))).AsSingle();
    }

    /// <inheritdoc cref="HalfToSingle(Vector512{int})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> HalfToSingle(Vector128<int> halves)
    {
        var bits = (halves << 13).AsUInt32() & Vector128.Create(SignAndMagnitudeMask);
        var value = (bits.AsSingle() * Vector128.Create(Rebias)).AsUInt32();
        var special = Vector128.Equals(bits & Vector128.Create(HalfExponentBits), Vector128.Create(HalfExponentBits));
        return (value | (special & Vector128.Create(SingleExponentBits))).AsSingle();
    }

    /// <summary>
    /// Widens halves to floats with the vector conversion above at <paramref name="bits"/> (512, 256 or 128) bits where
    /// that width is accelerated, one by one otherwise: tests compare every width with <see cref="Half"/>.
    /// </summary>
    internal static void HalvesToSingles(ReadOnlySpan<ushort> source, Span<float> destination, int bits)
    {
        if (destination.Length < source.Length)
            throw new ArgumentException("destination too short", nameof(destination));
        int i = 0;
        if (bits == 512 && Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= source.Length; i += 32)
            {
                var (low, high) = Vector512.Widen(Vector512.Create(source.Slice(i, 32)).AsInt16());
                HalfToSingle(low).CopyTo(destination.Slice(i));
                HalfToSingle(high).CopyTo(destination.Slice(i + 16));
            }
        }
        else if (bits == 256 && Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= source.Length; i += 16)
            {
                var (low, high) = Vector256.Widen(Vector256.Create(source.Slice(i, 16)).AsInt16());
                HalfToSingle(low).CopyTo(destination.Slice(i));
                HalfToSingle(high).CopyTo(destination.Slice(i + 8));
            }
        }
        else if (bits == 128 && Vector128.IsHardwareAccelerated)
        {
            for (; i + 8 <= source.Length; i += 8)
            {
                var (low, high) = Vector128.Widen(Vector128.Create(source.Slice(i, 8)).AsInt16());
                HalfToSingle(low).CopyTo(destination.Slice(i));
                HalfToSingle(high).CopyTo(destination.Slice(i + 4));
            }
        }
        for (; i < source.Length; i++)
            destination[i] = (float)BitConverter.UInt16BitsToHalf(source[i]);
    }

    /// <summary>Σ w[i]·x[i] over <paramref name="n"/> elements of a weight row of <paramref name="type"/> (F32, F16 or BF16).</summary>
    public static float Row(GgmlType type, byte* w, float* x, int n) => type switch
    {
        GgmlType.F16 => WidenedRow<HalfWidening>((short*)w, x, n),
        GgmlType.BF16 => WidenedRow<Bf16Widening>((short*)w, x, n),
        GgmlType.F32 => Singles((float*)w, x, n),
        _ => throw new SlmKitException($"{type} is not a float weight type"),
    };

    /// <summary>
    /// Elements per vector in the one summation order every float product follows for rows of <paramref name="n"/>:
    /// one accumulator of this width over the row, its lanes summed, then the scalar tail. The decode dots and the
    /// prefill tile add in this same order, so a token's logits do not depend on how many tokens share its forward pass
    /// (continuous batching returns exactly what a request gets alone).
    /// </summary>
    private static int Width(int n) =>
        Vector512.IsHardwareAccelerated && n % Vector512<float>.Count == 0 ? Vector512<float>.Count
        : Vector256.IsHardwareAccelerated ? Vector256<float>.Count
        : Vector128.IsHardwareAccelerated ? Vector128<float>.Count // NEON
        : 1;

    /// <summary>Σ a[i]·b[i] in the order of <see cref="Width"/>.</summary>
    public static float Singles(float* a, float* b, int n)
    {
        int i = 0;
        float sum = 0;
        int width = Width(n);
        if (width == Vector512<float>.Count)
        {
            var acc = Vector512<float>.Zero;
            for (; i < n; i += Vector512<float>.Count)
                acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), acc);
            sum = Vector512.Sum(acc);
        }
        else if (width == Vector256<float>.Count)
        {
            var acc = Vector256<float>.Zero;
            for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
                acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc);
            sum = Vector256.Sum(acc);
        }
        else if (width == Vector128<float>.Count)
        {
            var acc = Vector128<float>.Zero;
            for (; i + Vector128<float>.Count <= n; i += Vector128<float>.Count)
                acc = Vector128.FusedMultiplyAdd(Vector128.Load(a + i), Vector128.Load(b + i), acc);
            sum = Vector128.Sum(acc);
        }
        for (; i < n; i++)
            sum = MathF.FusedMultiplyAdd(a[i], b[i], sum);
        return sum;
    }

    /// <summary>How 16-bit float weights become floats: each lane holds the weight's 16 bits, sign-extended.</summary>
    private interface IWidening
    {
        static abstract Vector512<float> ToSingle(Vector512<int> bits);

        static abstract Vector256<float> ToSingle(Vector256<int> bits);

        static abstract Vector128<float> ToSingle(Vector128<int> bits);

        static abstract float ToSingle(short bits);
    }

    private readonly struct HalfWidening : IWidening
    {
        public static Vector512<float> ToSingle(Vector512<int> bits) => HalfToSingle(bits);

        public static Vector256<float> ToSingle(Vector256<int> bits) => HalfToSingle(bits);

        public static Vector128<float> ToSingle(Vector128<int> bits) => HalfToSingle(bits);

        public static float ToSingle(short bits) => (float)BitConverter.Int16BitsToHalf(bits);
    }

    /// <summary>A bfloat16 is the upper half of a float's bits (the sign extension is shifted out).</summary>
    private readonly struct Bf16Widening : IWidening
    {
        public static Vector512<float> ToSingle(Vector512<int> bits) => (bits << 16).AsSingle();

        public static Vector256<float> ToSingle(Vector256<int> bits) => (bits << 16).AsSingle();

        public static Vector128<float> ToSingle(Vector128<int> bits) => (bits << 16).AsSingle();

        public static float ToSingle(short bits) => BitConverter.Int32BitsToSingle(bits << 16);
    }

    /// <summary>Σ w[i]·x[i] for a row of 16-bit float weights, widened in registers, in the order of <see cref="Width"/>.</summary>
    /// <remarks>
    /// Compiled fully optimised at once and never inlined: tiered compilation's tier-1 code for this loop (inlined into
    /// <see cref="Row"/> or not) stored the accumulator to the stack and reloaded it every iteration, which put a
    /// store-forwarding delay into the chain of FMAs. SmolLM-360M F16 decoded at 12-25 tok/s with tiering on (the
    /// benchmark program keeps the runtime's default) against 30-38 with it off.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float WidenedRow<TWidening>(short* w, float* x, int n) where TWidening : struct, IWidening
    {
        int i = 0;
        float sum = 0;
        int width = Width(n);
        if (width == Vector512<float>.Count)
        {
            var acc = Vector512<float>.Zero;
            for (; i + 32 <= n; i += 32)
            {
                var (low, high) = Vector512.Widen(Vector512.Load(w + i));
                acc = Vector512.FusedMultiplyAdd(TWidening.ToSingle(low), Vector512.Load(x + i), acc);
                acc = Vector512.FusedMultiplyAdd(TWidening.ToSingle(high), Vector512.Load(x + i + 16), acc);
            }
            if (i < n)
            {
                // n is a multiple of 16: the last 16 weights.
                var last = Vector512.WidenLower(Vector512.Create(Vector256.Load(w + i), Vector256<short>.Zero));
                acc = Vector512.FusedMultiplyAdd(TWidening.ToSingle(last), Vector512.Load(x + i), acc);
                i += 16;
            }
            sum = Vector512.Sum(acc);
        }
        else if (width == Vector256<float>.Count)
        {
            var acc = Vector256<float>.Zero;
            for (; i + 16 <= n; i += 16)
            {
                var (low, high) = Vector256.Widen(Vector256.Load(w + i));
                acc = Vector256.FusedMultiplyAdd(TWidening.ToSingle(low), Vector256.Load(x + i), acc);
                acc = Vector256.FusedMultiplyAdd(TWidening.ToSingle(high), Vector256.Load(x + i + 8), acc);
            }
            if (i + 8 <= n)
            {
                var last = Vector256.WidenLower(Vector256.Create(Vector128.Load(w + i), Vector128<short>.Zero));
                acc = Vector256.FusedMultiplyAdd(TWidening.ToSingle(last), Vector256.Load(x + i), acc);
                i += 8;
            }
            sum = Vector256.Sum(acc);
        }
        else if (width == Vector128<float>.Count)
        {
            var acc = Vector128<float>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                var (low, high) = Vector128.Widen(Vector128.Load(w + i));
                acc = Vector128.FusedMultiplyAdd(TWidening.ToSingle(low), Vector128.Load(x + i), acc);
                acc = Vector128.FusedMultiplyAdd(TWidening.ToSingle(high), Vector128.Load(x + i + 4), acc);
            }
            if (i + 4 <= n)
            {
                var last = Vector128.WidenLower(Vector128.Create(Vector64.Load(w + i), Vector64<short>.Zero));
                acc = Vector128.FusedMultiplyAdd(TWidening.ToSingle(last), Vector128.Load(x + i), acc);
                i += 4;
            }
            sum = Vector128.Sum(acc);
        }
        for (; i < n; i++)
            sum = MathF.FusedMultiplyAdd(TWidening.ToSingle(w[i]), x[i], sum);
        return sum;
    }

    /// <summary>True when <see cref="Tile4x4"/> runs vectorised for rows of <paramref name="n"/> floats.</summary>
    public static bool HasTile(int n) => Width(n) >= Vector256<float>.Count && n % Width(n) == 0;

    /// <summary>
    /// results[t·4 + r] = Σ rows[r·n + i]·x[t·xStride + i] for four F32 rows and four activation rows; n a multiple of the
    /// vector width (<see cref="HasTile"/>).
    /// </summary>
    public static void Tile4x4(float* rows, int n, float* x, long xStride, float* results)
    {
        float* r1 = rows + n, r2 = rows + 2 * n, r3 = rows + 3 * n;
        float* x1 = x + xStride, x2 = x + 2 * xStride, x3 = x + 3 * xStride;
        if (Width(n) == Vector512<float>.Count)
            Wide.Run(rows, r1, r2, r3, x, x1, x2, x3, n, results);
        else
            Narrow.Run(rows, r1, r2, r3, x, x1, x2, x3, n, results);
    }

    // The same tile at two vector widths: .NET 10 keeps ISimdVector internal, so a kernel cannot be written once over
    // Vector256 and Vector512. Prefill is bound by multiply-adds, and a full-width 512-bit unit does twice as many.
    private static class Wide
    {
        public static void Run(float* r0, float* r1, float* r2, float* r3, float* x0, float* x1, float* x2, float* x3, int n, float* results)
        {
            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
            for (int i = 0; i < n; i += Vector512<float>.Count)
            {
                var w0 = Vector512.Load(r0 + i);
                var w1 = Vector512.Load(r1 + i);
                var w2 = Vector512.Load(r2 + i);
                var w3 = Vector512.Load(r3 + i);
                var v = Vector512.Load(x0 + i);
                a00 = Vector512.FusedMultiplyAdd(w0, v, a00);
                a01 = Vector512.FusedMultiplyAdd(w1, v, a01);
                a02 = Vector512.FusedMultiplyAdd(w2, v, a02);
                a03 = Vector512.FusedMultiplyAdd(w3, v, a03);
                v = Vector512.Load(x1 + i);
                a10 = Vector512.FusedMultiplyAdd(w0, v, a10);
                a11 = Vector512.FusedMultiplyAdd(w1, v, a11);
                a12 = Vector512.FusedMultiplyAdd(w2, v, a12);
                a13 = Vector512.FusedMultiplyAdd(w3, v, a13);
                v = Vector512.Load(x2 + i);
                a20 = Vector512.FusedMultiplyAdd(w0, v, a20);
                a21 = Vector512.FusedMultiplyAdd(w1, v, a21);
                a22 = Vector512.FusedMultiplyAdd(w2, v, a22);
                a23 = Vector512.FusedMultiplyAdd(w3, v, a23);
                v = Vector512.Load(x3 + i);
                a30 = Vector512.FusedMultiplyAdd(w0, v, a30);
                a31 = Vector512.FusedMultiplyAdd(w1, v, a31);
                a32 = Vector512.FusedMultiplyAdd(w2, v, a32);
                a33 = Vector512.FusedMultiplyAdd(w3, v, a33);
            }
            results[0] = Vector512.Sum(a00);
            results[1] = Vector512.Sum(a01);
            results[2] = Vector512.Sum(a02);
            results[3] = Vector512.Sum(a03);
            results[4] = Vector512.Sum(a10);
            results[5] = Vector512.Sum(a11);
            results[6] = Vector512.Sum(a12);
            results[7] = Vector512.Sum(a13);
            results[8] = Vector512.Sum(a20);
            results[9] = Vector512.Sum(a21);
            results[10] = Vector512.Sum(a22);
            results[11] = Vector512.Sum(a23);
            results[12] = Vector512.Sum(a30);
            results[13] = Vector512.Sum(a31);
            results[14] = Vector512.Sum(a32);
            results[15] = Vector512.Sum(a33);
        }
    }

    private static class Narrow
    {
        public static void Run(float* r0, float* r1, float* r2, float* r3, float* x0, float* x1, float* x2, float* x3, int n, float* results)
        {
            Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
            Vector256<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
            for (int i = 0; i < n; i += Vector256<float>.Count)
            {
                var w0 = Vector256.Load(r0 + i);
                var w1 = Vector256.Load(r1 + i);
                var w2 = Vector256.Load(r2 + i);
                var w3 = Vector256.Load(r3 + i);
                var v = Vector256.Load(x0 + i);
                a00 = Vector256.FusedMultiplyAdd(w0, v, a00);
                a01 = Vector256.FusedMultiplyAdd(w1, v, a01);
                a02 = Vector256.FusedMultiplyAdd(w2, v, a02);
                a03 = Vector256.FusedMultiplyAdd(w3, v, a03);
                v = Vector256.Load(x1 + i);
                a10 = Vector256.FusedMultiplyAdd(w0, v, a10);
                a11 = Vector256.FusedMultiplyAdd(w1, v, a11);
                a12 = Vector256.FusedMultiplyAdd(w2, v, a12);
                a13 = Vector256.FusedMultiplyAdd(w3, v, a13);
                v = Vector256.Load(x2 + i);
                a20 = Vector256.FusedMultiplyAdd(w0, v, a20);
                a21 = Vector256.FusedMultiplyAdd(w1, v, a21);
                a22 = Vector256.FusedMultiplyAdd(w2, v, a22);
                a23 = Vector256.FusedMultiplyAdd(w3, v, a23);
                v = Vector256.Load(x3 + i);
                a30 = Vector256.FusedMultiplyAdd(w0, v, a30);
                a31 = Vector256.FusedMultiplyAdd(w1, v, a31);
                a32 = Vector256.FusedMultiplyAdd(w2, v, a32);
                a33 = Vector256.FusedMultiplyAdd(w3, v, a33);
            }
            results[0] = Vector256.Sum(a00);
            results[1] = Vector256.Sum(a01);
            results[2] = Vector256.Sum(a02);
            results[3] = Vector256.Sum(a03);
            results[4] = Vector256.Sum(a10);
            results[5] = Vector256.Sum(a11);
            results[6] = Vector256.Sum(a12);
            results[7] = Vector256.Sum(a13);
            results[8] = Vector256.Sum(a20);
            results[9] = Vector256.Sum(a21);
            results[10] = Vector256.Sum(a22);
            results[11] = Vector256.Sum(a23);
            results[12] = Vector256.Sum(a30);
            results[13] = Vector256.Sum(a31);
            results[14] = Vector256.Sum(a32);
            results[15] = Vector256.Sum(a33);
        }
    }
}
