using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SlmKit.Kernels.Quantization;

/// <summary>
/// 512-bit integer dot products (AVX-512 F/BW) for the 32-element block types: two blocks per vector. .NET 10 exposes
/// 512-bit VNNI only through AVX10.2/AVX-VNNI-INT8, which Zen 4 lacks, so the u8·s8 dot here is vpmaddubsw + vpmaddwd.
/// </summary>
internal static unsafe partial class Avx512Dot
{
    public static bool IsSupported => Avx512BW.IsSupported && Avx512F.IsSupported && Vector512.IsHardwareAccelerated;

    private static readonly Vector512<short> s_ones16 = Vector512.Create((short)1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> DotBytes(Vector512<byte> u, Vector512<sbyte> s) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, s), s_ones16);

    /// <summary>
    /// Two blocks' combined scales, lanes 0–7 <paramref name="first"/> and 8–15 <paramref name="second"/> (the weight
    /// scales) times the activation scales of the pair at <paramref name="scalePairs"/> (<see cref="ActivationRow.ScalePairs"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PairScale(float first, float second, float* scalePairs) =>
        Join(Vector256.Create(first), Vector256.Create(second)) * Vector512.Load(scalePairs);

    /// <summary>
    /// [<paramref name="lower"/>, <paramref name="upper"/>] in one register. Vector512.Create(lower, upper) compiles (.NET 10)
    /// to two inserts into the destination register's previous contents, which chains every loop iteration to the one
    /// before it; one insert of the upper half into the lower half's register does not. In a stand-alone copy of the Q8_0
    /// decode kernel this (with <see cref="Sum"/>) took L2-resident throughput from 32 to 39 GB/s on one thread.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<T> Join<T>(Vector256<T> lower, Vector256<T> upper) => lower.ToVector512Unsafe().WithUpper(upper);

    /// <summary>The sum of the 16 lanes: halves added down to 128 bits, then two shuffles (Vector512.Sum reduces each 128-bit quarter on its own).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Sum(Vector512<float> v)
    {
        var half = v.GetLower() + v.GetUpper();
        var quarter = half.GetLower() + half.GetUpper();
        quarter += Sse.MoveHighToLow(quarter, quarter);
        quarter += Sse.Shuffle(quarter, quarter, 0b01);
        return quarter.ToScalar();
    }

    /// <summary>The nibbles of two 16-byte quant arrays: [lo(p0) hi(p0) lo(p1) hi(p1)], each 16 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Nibbles(byte* p0, byte* p1)
    {
        var both = Join(Avx2.BroadcastVector128ToVector256(p0), Avx2.BroadcastVector128ToVector256(p1));
        var shifted = Avx512BW.ShiftRightLogicalVariable(both.AsUInt16(), Vector512.Create((ushort)0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4));
        return shifted.AsByte() & Vector512.Create((byte)0x0F);
    }

    /// <summary>0x10 in byte i (of 64) where bit i of the two 32-bit masks (first in the low half) is set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> FifthBits(uint first, uint second)
    {
        ulong bits = first | ((ulong)second << 32);
        // Byte i takes byte i/8 of the mask (vpshufb: every 128-bit lane holds all 8 mask bytes), then keeps bit i%8.
        var spread = Avx512BW.Shuffle(Vector512.Create(bits).AsByte(), s_spreadIndex);
        var select = Vector512.Create(0x8040201008040201UL).AsByte();
        return Vector512.Equals(spread & select, select) & Vector512.Create((byte)0x10);
    }

    private static readonly Vector512<byte> s_spreadIndex = BuildSpreadIndex();

    private static Vector512<byte> BuildSpreadIndex()
    {
        var index = new byte[64];
        for (int i = 0; i < 64; i++)
            index[i] = (byte)(i / 8);
        return Vector512.Create(index);
    }

    public static float Q8_0(byte* w, ActivationRow a, int blocks)
    {
        var acc = Q8_0Pairs(w, a, blocks / 2);
        int b = blocks / 2 * 2;
        float total = Sum(acc);
        if (b < blocks)
            total += ScalarDot.Q8_0(w + 34 * b, Offset(a, b), 1);
        return total;
    }

    /// <summary>The first 2 × <paramref name="pairs"/> blocks of a Q8_0 row, as 16 partial sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q8_0Pairs(byte* w, ActivationRow a, int pairs)
    {
        var acc = Vector512<float>.Zero;
        byte* x0 = w;
        sbyte* quants = a.Quants;
        float* scalePairs = a.ScalePairs;
        for (int k = 0; k < pairs; k++, x0 += 68, quants += 64, scalePairs += 16)
        {
            byte* x1 = x0 + 34;
            var wq = Join(Vector256.Load((sbyte*)x0 + 2), Vector256.Load((sbyte*)x1 + 2));
            var aq = Vector512.Load(quants);
            var signed = Vector512.ConditionalSelect(Vector512.LessThan(wq, Vector512<sbyte>.Zero), -aq, aq);
            var p = DotBytes(Avx512BW.Abs(wq), signed);
            acc = Avx512F.FusedMultiplyAdd(Vector512.ConvertToSingle(p), PairScale(HalfTable.Load(x0), HalfTable.Load(x1), scalePairs), acc);
        }
        return acc;
    }

    /// <summary>
    /// y[i] = the Q8_0 dot of row i for <paramref name="rows"/> consecutive rows (<paramref name="rowBytes"/> apart),
    /// eight at a time where the rows have an even number of blocks: each row's 16 partial sums are kept and the eight
    /// rows reduced together (six horizontal adds and two lane permutes for the eight), instead of a call and a
    /// reduction of its own per row. A SmolLM row is 612 bytes, ≈ 20 ns of reading at decode speed, so the per-row
    /// fixed cost was a large part of it. The remaining rows, and rows of odd block counts, go through <see cref="Q8_0"/>.
    /// Row groups start at the first row given: callers pass ranges that start at multiples of eight rows into their
    /// matrix, so a row's sum does not depend on how the matrix was divided among threads.
    /// </summary>
    public static void Q8_0Rows(byte* w, long rowBytes, ActivationRow a, int blocks, float* y, int rows)
    {
        int r = 0;
        if (blocks % 2 == 0)
        {
            int pairs = blocks / 2;
            var folded = stackalloc Vector256<float>[8];
            for (; r + 8 <= rows; r += 8)
            {
                // Q8_0Pairs's loop written out: measured against calling it here, alternating runs favoured this form
                // (and eight calls in a row were not all inlined with tiering off: 178 against 274 tok/s).
                for (int k = 0; k < 8; k++)
                {
                    var acc = Vector512<float>.Zero;
                    byte* x0 = w + (r + k) * rowBytes;
                    sbyte* quants = a.Quants;
                    float* scalePairs = a.ScalePairs;
                    for (int i = 0; i < pairs; i++, x0 += 68, quants += 64, scalePairs += 16)
                    {
                        var wq = Join(Vector256.Load((sbyte*)x0 + 2), Vector256.Load((sbyte*)x0 + 36));
                        var aq = Vector512.Load(quants);
                        var p = DotBytes(Avx512BW.Abs(wq), Vector512.ConditionalSelect(Vector512.LessThan(wq, Vector512<sbyte>.Zero), -aq, aq));
                        acc = Avx512F.FusedMultiplyAdd(Vector512.ConvertToSingle(p), PairScale(HalfTable.Load(x0), HalfTable.Load(x0 + 34), scalePairs), acc);
                    }
                    folded[k] = acc.GetLower() + acc.GetUpper();
                }
                // Horizontal adds pair the rows up within each 128-bit half; the halves then add across.
                var low = Avx.HorizontalAdd(Avx.HorizontalAdd(folded[0], folded[1]), Avx.HorizontalAdd(folded[2], folded[3]));
                var high = Avx.HorizontalAdd(Avx.HorizontalAdd(folded[4], folded[5]), Avx.HorizontalAdd(folded[6], folded[7]));
                (Avx.Permute2x128(low, high, 0x20) + Avx.Permute2x128(low, high, 0x31)).Store(y + r);
            }
        }
        for (; r < rows; r++)
            y[r] = Q8_0(w + r * rowBytes, a, blocks);
    }

    public static float Q4_0(byte* w, ActivationRow a, int blocks)
    {
        var acc = Vector512<float>.Zero;
        float offset = 0;
        int b = 0;
        for (; b + 1 < blocks; b += 2)
        {
            byte* x0 = w + 18 * b, x1 = x0 + 18;
            float d0 = HalfTable.Load(x0), d1 = HalfTable.Load(x1);
            var p = DotBytes(Nibbles(x0 + 2, x1 + 2), Vector512.Load(a.Quants + 32 * b));
            acc = Avx512F.FusedMultiplyAdd(Vector512.ConvertToSingle(p), PairScale(d0, d1, a.ScalePairs + 8 * b), acc);
            offset += d0 * a.ScaledSums[b] + d1 * a.ScaledSums[b + 1];
        }
        float total = Sum(acc) - 8 * offset;
        if (b < blocks)
            total += ScalarDot.Q4_0(w + 18 * b, Offset(a, b), 1);
        return total;
    }

    public static float Q4_1(byte* w, ActivationRow a, int blocks)
    {
        var acc = Vector512<float>.Zero;
        float mins = 0;
        int b = 0;
        for (; b + 1 < blocks; b += 2)
        {
            byte* x0 = w + 20 * b, x1 = x0 + 20;
            var p = DotBytes(Nibbles(x0 + 4, x1 + 4), Vector512.Load(a.Quants + 32 * b));
            acc = Avx512F.FusedMultiplyAdd(Vector512.ConvertToSingle(p), PairScale(HalfTable.Load(x0), HalfTable.Load(x1), a.ScalePairs + 8 * b), acc);
            mins += HalfTable.Load(x0 + 2) * a.ScaledSums[b] + HalfTable.Load(x1 + 2) * a.ScaledSums[b + 1];
        }
        float total = Sum(acc) + mins;
        if (b < blocks)
            total += ScalarDot.Q4_1(w + 20 * b, Offset(a, b), 1);
        return total;
    }

    public static float Q5_0(byte* w, ActivationRow a, int blocks)
    {
        var acc = Vector512<float>.Zero;
        float offset = 0;
        int b = 0;
        for (; b + 1 < blocks; b += 2)
        {
            byte* x0 = w + 22 * b, x1 = x0 + 22;
            float d0 = HalfTable.Load(x0), d1 = HalfTable.Load(x1);
            var u = Nibbles(x0 + 6, x1 + 6) | FifthBits(Unsafe.ReadUnaligned<uint>(x0 + 2), Unsafe.ReadUnaligned<uint>(x1 + 2));
            var p = DotBytes(u, Vector512.Load(a.Quants + 32 * b));
            acc = Avx512F.FusedMultiplyAdd(Vector512.ConvertToSingle(p), PairScale(d0, d1, a.ScalePairs + 8 * b), acc);
            offset += d0 * a.ScaledSums[b] + d1 * a.ScaledSums[b + 1];
        }
        float total = Sum(acc) - 16 * offset;
        if (b < blocks)
            total += ScalarDot.Q5_0(w + 22 * b, Offset(a, b), 1);
        return total;
    }

    public static float Q5_1(byte* w, ActivationRow a, int blocks)
    {
        var acc = Vector512<float>.Zero;
        float mins = 0;
        int b = 0;
        for (; b + 1 < blocks; b += 2)
        {
            byte* x0 = w + 24 * b, x1 = x0 + 24;
            var u = Nibbles(x0 + 8, x1 + 8) | FifthBits(Unsafe.ReadUnaligned<uint>(x0 + 4), Unsafe.ReadUnaligned<uint>(x1 + 4));
            var p = DotBytes(u, Vector512.Load(a.Quants + 32 * b));
            acc = Avx512F.FusedMultiplyAdd(Vector512.ConvertToSingle(p), PairScale(HalfTable.Load(x0), HalfTable.Load(x1), a.ScalePairs + 8 * b), acc);
            mins += HalfTable.Load(x0 + 2) * a.ScaledSums[b] + HalfTable.Load(x1 + 2) * a.ScaledSums[b + 1];
        }
        float total = Sum(acc) + mins;
        if (b < blocks)
            total += ScalarDot.Q5_1(w + 24 * b, Offset(a, b), 1);
        return total;
    }

    /// <summary>The activation row starting at 32-element block <paramref name="b"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ActivationRow Offset(ActivationRow a, int b) =>
        new(a.Quants + 32 * b, a.Scales + b, a.ScaledSums + b, a.Sums + b, null, b % 2 == 0 && a.ScalePairs != null ? a.ScalePairs + 8 * b : null);
}
