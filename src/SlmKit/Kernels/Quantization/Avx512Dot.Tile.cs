using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SlmKit.Kernels.Quantization;

internal static unsafe partial class Avx512Dot
{
    /// <summary>
    /// Sixteen weight rows of a 4- or 5-bit offset type (Q4_0, Q4_1, Q5_0, Q5_1) against up to
    /// <see cref="RowTile.MaxTokens"/> tokens: y[(token k) · <paramref name="rows"/> + row i] for the sixteen rows
    /// starting at <paramref name="w"/>, <paramref name="rowBytes"/> apart. The layout of <c>Avx2Dot.OffsetDot8xN</c>
    /// (one 32-bit lane per row, broadcast groups of four activations) twice as wide. Without 512-bit VNNI in .NET the
    /// u8·s8 products go through vpmaddubsw; small quants make that cheap: a pair of 4-bit products is at most
    /// 2·15·128 = 3840 in magnitude, so the eight groups of a block add up in 16-bit lanes (30720 &lt; 32767) and one
    /// vpmaddwd widens the sum, where 5-bit quants (7936 a pair) add four groups at a time. Per block and token that is
    /// about as many instructions for sixteen rows as the 256-bit VNNI tile spends on eight.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // kept whole, as OffsetDot (Avx2Dot.cs) explains
    private static void OffsetDot16xN<TBlock>(byte* w, long rowBytes, ActivationRow a, int blocks, float* y, long rows, int tokens)
        where TBlock : struct, Avx2Dot.IOffsetBlock
    {
        var acc = stackalloc Vector512<float>[RowTile.MaxTokens];
        for (int k = 0; k < tokens; k++)
            acc[k] = Vector512<float>.Zero;
        long quantStride = 8L * blocks; // one token's quants, in ints
        int size = TBlock.Bytes;
        float* d = stackalloc float[16];
        float* c = stackalloc float[16];
        var ones = Vector512.Create((short)1);
        // Quadwords of two vectors of four 128-bit lanes [A0 A1 A2 A3], [B0 B1 B2 B3]: [A0 B0 A2 B2] and [A1 B1 A3 B3].
        var evenLanes = Vector512.Create(0L, 1, 8, 9, 4, 5, 12, 13);
        var oddLanes = Vector512.Create(2L, 3, 10, 11, 6, 7, 14, 15);
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + (long)b * size;
            for (int i = 0; i < 16; i++)
                d[i] = TBlock.Scale(x + i * rowBytes, out c[i]);
            var scales = Vector512.Load(d);
            var offsets = Vector512.Load(c);
            // Row i in the low half, row i + 8 in the high half; then the eight-row transpose of OffsetDot8xN runs on
            // both halves at once (the unpacks work within 128-bit lanes), and the last step gathers lanes with vpermt2q:
            // g[j] holds group j (quants 4j…4j+3) of rows 0..15, one row per 32-bit lane.
            var z0 = Vector512.Create(TBlock.Quants(x), TBlock.Quants(x + 8 * rowBytes)).AsInt32();
            var z1 = Vector512.Create(TBlock.Quants(x + rowBytes), TBlock.Quants(x + 9 * rowBytes)).AsInt32();
            var z2 = Vector512.Create(TBlock.Quants(x + 2 * rowBytes), TBlock.Quants(x + 10 * rowBytes)).AsInt32();
            var z3 = Vector512.Create(TBlock.Quants(x + 3 * rowBytes), TBlock.Quants(x + 11 * rowBytes)).AsInt32();
            var z4 = Vector512.Create(TBlock.Quants(x + 4 * rowBytes), TBlock.Quants(x + 12 * rowBytes)).AsInt32();
            var z5 = Vector512.Create(TBlock.Quants(x + 5 * rowBytes), TBlock.Quants(x + 13 * rowBytes)).AsInt32();
            var z6 = Vector512.Create(TBlock.Quants(x + 6 * rowBytes), TBlock.Quants(x + 14 * rowBytes)).AsInt32();
            var z7 = Vector512.Create(TBlock.Quants(x + 7 * rowBytes), TBlock.Quants(x + 15 * rowBytes)).AsInt32();
            var r01Low = Avx512F.UnpackLow(z0, z1).AsInt64();
            var r01High = Avx512F.UnpackHigh(z0, z1).AsInt64();
            var r23Low = Avx512F.UnpackLow(z2, z3).AsInt64();
            var r23High = Avx512F.UnpackHigh(z2, z3).AsInt64();
            var r45Low = Avx512F.UnpackLow(z4, z5).AsInt64();
            var r45High = Avx512F.UnpackHigh(z4, z5).AsInt64();
            var r67Low = Avx512F.UnpackLow(z6, z7).AsInt64();
            var r67High = Avx512F.UnpackHigh(z6, z7).AsInt64();
            var lo04 = Avx512F.UnpackLow(r01Low, r23Low);
            var lo15 = Avx512F.UnpackHigh(r01Low, r23Low);
            var lo26 = Avx512F.UnpackLow(r01High, r23High);
            var lo37 = Avx512F.UnpackHigh(r01High, r23High);
            var hi04 = Avx512F.UnpackLow(r45Low, r67Low);
            var hi15 = Avx512F.UnpackHigh(r45Low, r67Low);
            var hi26 = Avx512F.UnpackLow(r45High, r67High);
            var hi37 = Avx512F.UnpackHigh(r45High, r67High);
            var g0 = Avx512F.PermuteVar8x64x2(lo04, evenLanes, hi04).AsByte();
            var g4 = Avx512F.PermuteVar8x64x2(lo04, oddLanes, hi04).AsByte();
            var g1 = Avx512F.PermuteVar8x64x2(lo15, evenLanes, hi15).AsByte();
            var g5 = Avx512F.PermuteVar8x64x2(lo15, oddLanes, hi15).AsByte();
            var g2 = Avx512F.PermuteVar8x64x2(lo26, evenLanes, hi26).AsByte();
            var g6 = Avx512F.PermuteVar8x64x2(lo26, oddLanes, hi26).AsByte();
            var g3 = Avx512F.PermuteVar8x64x2(lo37, evenLanes, hi37).AsByte();
            var g7 = Avx512F.PermuteVar8x64x2(lo37, oddLanes, hi37).AsByte();
            int* q = (int*)(a.Quants + 32L * b);
            float* activationScales = a.Scales + b, sums = a.ScaledSums + b;
            for (int k = 0; k < tokens; k++, q += quantStride, activationScales += blocks, sums += blocks)
            {
                var p01 = Pair(g0, q[0]) + Pair(g1, q[1]);
                var p23 = Pair(g2, q[2]) + Pair(g3, q[3]);
                var p45 = Pair(g4, q[4]) + Pair(g5, q[5]);
                var p67 = Pair(g6, q[6]) + Pair(g7, q[7]);
                var dots = TBlock.MaxQuant <= 15
                    ? Avx512BW.MultiplyAddAdjacent((p01 + p23) + (p45 + p67), ones)
                    : Avx512BW.MultiplyAddAdjacent(p01 + p23, ones) + Avx512BW.MultiplyAddAdjacent(p45 + p67, ones);
                var sum = Avx512F.FusedMultiplyAdd(Vector512.ConvertToSingle(dots), scales * Vector512.Create(*activationScales), acc[k]);
                acc[k] = Avx512F.FusedMultiplyAdd(offsets, Vector512.Create(*sums), sum);
            }
        }
        for (int k = 0; k < tokens; k++)
            acc[k].Store(y + k * rows);
    }

    /// <summary>Per 16-bit lane: the sum of two u8 · s8 products of <paramref name="u"/> and the broadcast group of four.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Pair(Vector512<byte> u, int group) =>
        Avx512BW.MultiplyAddAdjacent(u, Vector512.Create(group).AsSByte());

    public static void Q4_0x16(byte* w, long rowBytes, ActivationRow a, int blocks, float* y, long rows, int tokens) => OffsetDot16xN<Avx2Dot.Q4_0Block>(w, rowBytes, a, blocks, y, rows, tokens);

    public static void Q4_1x16(byte* w, long rowBytes, ActivationRow a, int blocks, float* y, long rows, int tokens) => OffsetDot16xN<Avx2Dot.Q4_1Block>(w, rowBytes, a, blocks, y, rows, tokens);

    public static void Q5_0x16(byte* w, long rowBytes, ActivationRow a, int blocks, float* y, long rows, int tokens) => OffsetDot16xN<Avx2Dot.Q5_0Block>(w, rowBytes, a, blocks, y, rows, tokens);

    public static void Q5_1x16(byte* w, long rowBytes, ActivationRow a, int blocks, float* y, long rows, int tokens) => OffsetDot16xN<Avx2Dot.Q5_1Block>(w, rowBytes, a, blocks, y, rows, tokens);
}
