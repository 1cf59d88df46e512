using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SlmKit.Kernels.Quantization;

/// <summary>Compile-time switch between AVX-VNNI (vpdpbusd) and plain AVX2 (vpmaddubsw + vpmaddwd) for the u8·s8 dot.</summary>
internal interface IDotFlavour
{
    static abstract bool Vnni { get; }
}

internal readonly struct PlainAvx2 : IDotFlavour
{
    public static bool Vnni => false;
}

internal readonly struct WithAvxVnni : IDotFlavour
{
    public static bool Vnni => true;
}

/// <summary>
/// How the K-quant kernels multiply a pair of 32-element groups (unsigned quants · int8 activations · 16-bit sub-block
/// scales) into 8 int32 lanes: <see cref="Avx2Dot.TwoGroups"/> at 256 bits, <see cref="Avx512Dot.OneVector"/> in one
/// 512-bit vector. The kernels are written once over this choice.
/// </summary>
internal unsafe interface IGroupPairDot
{
    static abstract Vector256<int> Dot(Vector256<byte> first, sbyte* firstActivations, Vector256<short> firstScales,
        Vector256<byte> second, sbyte* secondActivations, Vector256<short> secondScales);
}

/// <summary>
/// 256-bit integer dot products (AVX2; AVX-VNNI where present). One weight block per 32-byte vector; a block's int32
/// partial sums are scaled in float (FMA) and reduced horizontally once per row. K types follow llama.cpp's scheme:
/// unsigned quants · int8 activations with vpmaddubsw, then vpmaddwd with the 16-element sub-block scales, and the
/// offsets/minimums applied through the activation sums of each 16.
/// </summary>
internal static unsafe partial class Avx2Dot
{
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    private static readonly Vector256<short> s_ones16 = Vector256.Create((short)1);

    /// <summary>Σ of each 4 adjacent u8·s8 products into 8 int32 lanes; u ≤ 128 (or small) so vpmaddubsw cannot saturate.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> DotBytes<T>(Vector256<byte> u, Vector256<sbyte> s) where T : struct, IDotFlavour =>
        T.Vnni && AvxVnni.IsSupported
            ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, u, s)
            : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), s_ones16);

    /// <summary>u8·s8 pairs to 16 int16, then times the 16-bit sub-block scales into 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> ScaledDot(Vector256<byte> u, sbyte* a, Vector256<short> scales) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, Vector256.Load(a)), scales);

    /// <summary>The 256-bit way to multiply a pair of 32-element groups: two vpmaddubsw + vpmaddwd, summed.</summary>
    internal readonly struct TwoGroups : IGroupPairDot
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(Vector256<byte> first, sbyte* firstActivations, Vector256<short> firstScales,
            Vector256<byte> second, sbyte* secondActivations, Vector256<short> secondScales) =>
            ScaledDot(first, firstActivations, firstScales) + ScaledDot(second, secondActivations, secondScales);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<short> Scales16(int first, int second) =>
        Vector256.Create(Vector128.Create((short)first), Vector128.Create((short)second));

    /// <summary>
    /// The 32 nibbles of 16 bytes, low nibbles first: the bytes broadcast to both halves (one load) and the upper half
    /// shifted by 4 with a per-lane shift, one instruction fewer than shifting a copy and inserting it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Nibbles(byte* p)
    {
        var raw = Avx2.BroadcastVector128ToVector256(p).AsUInt32();
        return Avx2.ShiftRightLogicalVariable(raw, Vector256.Create(0u, 0, 0, 0, 4, 4, 4, 4)).AsByte() & Vector256.Create((byte)0x0F);
    }

    /// <summary>The same dot as the two-argument DotBytes, added to <paramref name="start"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> DotBytes<T>(Vector256<int> start, Vector256<byte> u, Vector256<sbyte> s) where T : struct, IDotFlavour =>
        T.Vnni && AvxVnni.IsSupported
            ? AvxVnni.MultiplyWideningAndAdd(start, u, s)
            : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), s_ones16) + start;

    /// <summary>0x10 in byte i where bit i of <paramref name="bits"/> is set (the fifth bit of Q5_0/Q5_1 quants).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> FifthBits(uint bits)
    {
        var spread = Avx2.Shuffle(Vector256.Create(bits).AsByte(),
            Vector256.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
        var select = Vector256.Create(0x8040201008040201UL).AsByte();
        return Vector256.Equals(spread & select, select) & Vector256.Create((byte)0x10);
    }

    public static float Q8_0<T>(byte* w, ActivationRow a, int blocks) where T : struct, IDotFlavour
    {
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        int b = 0;
        for (; b + 1 < blocks; b += 2)
        {
            byte* x0 = w + 34 * b, x1 = x0 + 34;
            var w0 = Vector256.Load((sbyte*)x0 + 2);
            var w1 = Vector256.Load((sbyte*)x1 + 2);
            var p0 = DotBytes<T>(Avx2.Abs(w0), Avx2.Sign(Vector256.Load(a.Quants + 32 * b), w0));
            var p1 = DotBytes<T>(Avx2.Abs(w1), Avx2.Sign(Vector256.Load(a.Quants + 32 * b + 32), w1));
            acc0 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p0), Vector256.Create(HalfTable.Load(x0) * a.Scales[b]), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p1), Vector256.Create(HalfTable.Load(x1) * a.Scales[b + 1]), acc1);
        }
        if (b < blocks)
        {
            byte* x0 = w + 34 * b;
            var w0 = Vector256.Load((sbyte*)x0 + 2);
            var p0 = DotBytes<T>(Avx2.Abs(w0), Avx2.Sign(Vector256.Load(a.Quants + 32 * b), w0));
            acc0 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p0), Vector256.Create(HalfTable.Load(x0) * a.Scales[b]), acc0);
        }
        return Vector256.Sum(acc0 + acc1);
    }

    /// <summary>How a 32-element block with an offset or minimum term is laid out (Q4_0, Q4_1, Q5_0, Q5_1).</summary>
    internal interface IOffsetBlock
    {
        static abstract int Bytes { get; }

        /// <summary>The 32 unsigned quants, in element order.</summary>
        static abstract Vector256<byte> Quants(byte* x);

        /// <summary>value = d·quant + c: returns d, and c as a multiple of the block's activation sum.</summary>
        static abstract float Scale(byte* x, out float offset);

        /// <summary>
        /// k when c = k·d for a fixed integer k (Q4_0 −8, Q5_0 −16), so the offset can enter the integer dot product
        /// as k·Σ activation quants; 0 when c is a stored minimum.
        /// </summary>
        static abstract int IntegerOffset { get; }

        /// <summary>The largest unsigned quant (15 for 4-bit, 31 for 5-bit, 255 for Q8_0 read unsigned): bounds 16-bit sums.</summary>
        static abstract int MaxQuant { get; }
    }

    internal readonly struct Q4_0Block : IOffsetBlock
    {
        public static int MaxQuant => 15;
        public static int IntegerOffset => -8;
        public static int Bytes => 18;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Quants(byte* x) => Nibbles(x + 2);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(byte* x, out float offset)
        {
            float d = HalfTable.Load(x);
            offset = -8 * d;
            return d;
        }
    }

    internal readonly struct Q4_1Block : IOffsetBlock
    {
        public static int MaxQuant => 15;
        public static int IntegerOffset => 0;
        public static int Bytes => 20;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Quants(byte* x) => Nibbles(x + 4);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(byte* x, out float offset)
        {
            offset = HalfTable.Load(x + 2);
            return HalfTable.Load(x);
        }
    }

    internal readonly struct Q5_0Block : IOffsetBlock
    {
        public static int MaxQuant => 31;
        public static int IntegerOffset => -16;
        public static int Bytes => 22;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Quants(byte* x) => Nibbles(x + 6) | FifthBits(Unsafe.ReadUnaligned<uint>(x + 2));
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(byte* x, out float offset)
        {
            float d = HalfTable.Load(x);
            offset = -16 * d;
            return d;
        }
    }

    internal readonly struct Q5_1Block : IOffsetBlock
    {
        public static int MaxQuant => 31;
        public static int IntegerOffset => 0;
        public static int Bytes => 24;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Quants(byte* x) => Nibbles(x + 8) | FifthBits(Unsafe.ReadUnaligned<uint>(x + 4));
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(byte* x, out float offset)
        {
            offset = HalfTable.Load(x + 2);
            return HalfTable.Load(x);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OffsetStep<TBlock, T>(byte* x, sbyte* q, float scale, float sum, int integerSum, ref Vector256<float> acc, ref float offsets)
        where TBlock : struct, IOffsetBlock where T : struct, IDotFlavour
    {
        float d = TBlock.Scale(x, out float offset);
        if (TBlock.IntegerOffset != 0)
        {
            // Σ (q + k)·a = Σ q·a + k·Σa, exact in integers: the offset costs one scalar load into the dot's start
            // instead of a float multiply-add per block.
            var p = DotBytes<T>(Vector256.CreateScalar(TBlock.IntegerOffset * integerSum), TBlock.Quants(x), Vector256.Load(q));
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(d * scale), acc);
        }
        else
        {
            var p = DotBytes<T>(TBlock.Quants(x), Vector256.Load(q));
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(d * scale), acc);
            offsets += offset * sum;
        }
    }

    /// <summary>
    /// Σ (d·q + c)·a over the blocks: the unsigned quants go into the integer dot, c through the activation sums (in
    /// integers where c is a fixed multiple of d). Four independent accumulators and pointers that advance (no index
    /// arithmetic): a block is only ~10–15 instructions.
    /// </summary>
    // NoInlining: the one-line wrappers below are what the dispatch tables point at. With dynamic PGO the JIT inlined
    // this body into them and then ran out of inlining budget for the four OffsetSteps, which became calls: decode of
    // SmolLM-360M Q4_0 ran ≈ 30 % slower than with PGO off. Compiled on its own, the steps inline.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float OffsetDot<TBlock, T>(byte* w, ActivationRow a, int blocks) where TBlock : struct, IOffsetBlock where T : struct, IDotFlavour
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        float off0 = 0, off1 = 0, off2 = 0, off3 = 0;
        int size = TBlock.Bytes;
        byte* x = w;
        sbyte* q = a.Quants;
        float* scales = a.Scales, sums = a.ScaledSums, end = a.Scales + blocks;
        int* integerSums = a.Sums;
        for (; scales + 4 <= end; x += 4 * size, q += 128, scales += 4, sums += 4, integerSums += 4)
        {
            OffsetStep<TBlock, T>(x, q, scales[0], sums[0], integerSums[0], ref acc0, ref off0);
            OffsetStep<TBlock, T>(x + size, q + 32, scales[1], sums[1], integerSums[1], ref acc1, ref off1);
            OffsetStep<TBlock, T>(x + 2 * size, q + 64, scales[2], sums[2], integerSums[2], ref acc2, ref off2);
            OffsetStep<TBlock, T>(x + 3 * size, q + 96, scales[3], sums[3], integerSums[3], ref acc3, ref off3);
        }
        for (; scales < end; x += size, q += 32, scales++, sums++, integerSums++)
            OffsetStep<TBlock, T>(x, q, scales[0], sums[0], integerSums[0], ref acc0, ref off0);
        return Vector256.Sum((acc0 + acc1) + (acc2 + acc3)) + ((off0 + off1) + (off2 + off3));
    }

    public static float Q4_0<T>(byte* w, ActivationRow a, int blocks) where T : struct, IDotFlavour => OffsetDot<Q4_0Block, T>(w, a, blocks);

    public static float Q4_1<T>(byte* w, ActivationRow a, int blocks) where T : struct, IDotFlavour => OffsetDot<Q4_1Block, T>(w, a, blocks);

    public static float Q5_0<T>(byte* w, ActivationRow a, int blocks) where T : struct, IDotFlavour => OffsetDot<Q5_0Block, T>(w, a, blocks);

    public static float Q5_1<T>(byte* w, ActivationRow a, int blocks) where T : struct, IDotFlavour => OffsetDot<Q5_1Block, T>(w, a, blocks);

    public static float Q2_K<TPair>(byte* w, ActivationRow a, int blocks) where TPair : struct, IGroupPairDot
    {
        var acc = Vector256<float>.Zero;
        float mins = 0;
        var three = Vector256.Create((byte)3);
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 84 * b;
            sbyte* q = a.Quants + 256 * b;
            short* sums = a.Sums16 + 16 * b;
            int summ = 0;
            for (int g = 0; g < 16; g++)
                summ += (x[g] >> 4) * sums[g];
            var sumi = Vector256<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                var qv = Vector256.Load(x + 16 + 32 * h).AsUInt16();
                for (int j = 0; j < 4; j += 2)
                {
                    int g = 8 * h + 2 * j;
                    sbyte* qa = q + 128 * h + 32 * j;
                    sumi += TPair.Dot(
                        Vector256.ShiftRightLogical(qv, 2 * j).AsByte() & three, qa, Scales16(x[g] & 0xF, x[g + 1] & 0xF),
                        Vector256.ShiftRightLogical(qv, 2 * j + 2).AsByte() & three, qa + 32, Scales16(x[g + 2] & 0xF, x[g + 3] & 0xF));
                }
            }
            float scale = a.Scales[b];
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(sumi), Vector256.Create(HalfTable.Load(x + 80) * scale), acc);
            mins += HalfTable.Load(x + 82) * scale * summ;
        }
        return Vector256.Sum(acc) - mins;
    }

    public static float Q3_K<TPair>(byte* w, ActivationRow a, int blocks) where TPair : struct, IGroupPairDot
    {
        Span<int> scales = stackalloc int[16];
        var acc = Vector256<float>.Zero;
        float offset = 0;
        var three = Vector256.Create((byte)3);
        var four = Vector256.Create((byte)4);
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 110 * b;
            sbyte* q = a.Quants + 256 * b;
            short* sums = a.Sums16 + 16 * b;
            BlockFormats.Q3KScales(x + 96, scales);
            int corr = 0;
            for (int g = 0; g < 16; g++)
                corr += scales[g] * sums[g];
            var hm = Vector256.Load(x);
            var sumi = Vector256<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                var qv = Vector256.Load(x + 32 + 32 * h).AsUInt16();
                for (int j = 0; j < 4; j += 2)
                {
                    var bit0 = Vector256.Create((byte)(1 << (4 * h + j)));
                    var bit1 = Vector256.Create((byte)(1 << (4 * h + j + 1)));
                    var u0 = (Vector256.ShiftRightLogical(qv, 2 * j).AsByte() & three) | (Vector256.Equals(hm & bit0, bit0) & four);
                    var u1 = (Vector256.ShiftRightLogical(qv, 2 * j + 2).AsByte() & three) | (Vector256.Equals(hm & bit1, bit1) & four);
                    int g = 8 * h + 2 * j;
                    sbyte* qa = q + 128 * h + 32 * j;
                    sumi += TPair.Dot(u0, qa, Scales16(scales[g], scales[g + 1]), u1, qa + 32, Scales16(scales[g + 2], scales[g + 3]));
                }
            }
            float d = HalfTable.Load(x + 108) * a.Scales[b];
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(sumi), Vector256.Create(d), acc);
            offset += d * corr;
        }
        return Vector256.Sum(acc) - 4 * offset;
    }

    /// <summary>
    /// The eight minimums of a Q4_K/Q5_K super-block, each repeated for the two sums of 16 that its 32 elements span, as
    /// 16 int16 lanes: one vpmaddwd with the activation's sums of 16 gives the whole minimum term.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<short> MinimaPerSum16(ulong mins) =>
        Avx2.ConvertToVector256Int16(Ssse3.Shuffle(Vector128.CreateScalar(mins).AsByte(),
            Vector128.Create((byte)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7)));

    public static float Q4_K<TPair>(byte* w, ActivationRow a, int blocks) where TPair : struct, IGroupPairDot
    {
        var acc = Vector256<float>.Zero;
        var low = Vector256.Create((byte)0x0F);
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 144 * b;
            sbyte* q = a.Quants + 256 * b;
            BlockFormats.ScalesMinsK4(x + 4, out ulong scales, out ulong mins);
            var sumi = Vector256<int>.Zero;
            for (int c = 0; c < 4; c++, scales >>= 16)
            {
                var qv = Vector256.Load(x + 16 + 32 * c);
                sumi += TPair.Dot(
                    qv & low, q + 64 * c, Vector256.Create((short)(byte)scales),
                    Vector256.ShiftRightLogical(qv.AsUInt16(), 4).AsByte() & low, q + 64 * c + 32, Vector256.Create((short)(byte)(scales >> 8)));
            }
            acc = KStep(acc, sumi, MinimaPerSum16(mins), a.Sums16 + 16 * b, HalfTable.Load(x), HalfTable.Load(x + 2), a.Scales[b]);
        }
        return Vector256.Sum(acc);
    }

    public static float Q5_K<TPair>(byte* w, ActivationRow a, int blocks) where TPair : struct, IGroupPairDot
    {
        var acc = Vector256<float>.Zero;
        var low = Vector256.Create((byte)0x0F);
        var sixteen = Vector256.Create((byte)0x10);
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 176 * b;
            sbyte* q = a.Quants + 256 * b;
            BlockFormats.ScalesMinsK4(x + 4, out ulong scales, out ulong mins);
            var hb = Vector256.Load(x + 16);
            var sumi = Vector256<int>.Zero;
            for (int c = 0; c < 4; c++, scales >>= 16)
            {
                var qv = Vector256.Load(x + 48 + 32 * c);
                var bit0 = Vector256.Create((byte)(1 << (2 * c)));
                var bit1 = Vector256.Create((byte)(2 << (2 * c)));
                var u0 = (qv & low) | (Vector256.Equals(hb & bit0, bit0) & sixteen);
                var u1 = (Vector256.ShiftRightLogical(qv.AsUInt16(), 4).AsByte() & low) | (Vector256.Equals(hb & bit1, bit1) & sixteen);
                sumi += TPair.Dot(u0, q + 64 * c, Vector256.Create((short)(byte)scales), u1, q + 64 * c + 32, Vector256.Create((short)(byte)(scales >> 8)));
            }
            acc = KStep(acc, sumi, MinimaPerSum16(mins), a.Sums16 + 16 * b, HalfTable.Load(x), HalfTable.Load(x + 2), a.Scales[b]);
        }
        return Vector256.Sum(acc);
    }

    /// <summary>
    /// The 6-bit quants (0..63) of half <paramref name="h"/> of a Q6_K super-block, as four vectors of 32: low nibbles
    /// from ql, the two high bits from qh.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackQ6Half(byte* x, int h, out Vector256<byte> u0, out Vector256<byte> u1, out Vector256<byte> u2, out Vector256<byte> u3)
    {
        var low = Vector256.Create((byte)0x0F);
        var bits45 = Vector256.Create((byte)0x30);
        var q0 = Vector256.Load(x + 64 * h);
        var q1 = Vector256.Load(x + 64 * h + 32);
        var hh = Vector256.Load(x + 128 + 32 * h).AsUInt16();
        u0 = (q0 & low) | (Vector256.ShiftLeft(hh, 4).AsByte() & bits45);
        u1 = (q1 & low) | (Vector256.ShiftLeft(hh, 2).AsByte() & bits45);
        u2 = (Vector256.ShiftRightLogical(q0.AsUInt16(), 4).AsByte() & low) | (hh.AsByte() & bits45);
        u3 = (Vector256.ShiftRightLogical(q1.AsUInt16(), 4).AsByte() & low) | (Vector256.ShiftRightLogical(hh, 2).AsByte() & bits45);
    }

    public static float Q6_K<TPair>(byte* w, ActivationRow a, int blocks) where TPair : struct, IGroupPairDot
    {
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 210 * b;
            sbyte* q = a.Quants + 256 * b;
            sbyte* sc = (sbyte*)(x + 192);
            var sumi = Vector256<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                UnpackQ6Half(x, h, out var u0, out var u1, out var u2, out var u3);
                int g = 8 * h;
                sbyte* qa = q + 128 * h;
                sumi += TPair.Dot(u0, qa, Scales16(sc[g], sc[g + 1]), u1, qa + 32, Scales16(sc[g + 2], sc[g + 3]));
                sumi += TPair.Dot(u2, qa + 64, Scales16(sc[g + 4], sc[g + 5]), u3, qa + 96, Scales16(sc[g + 6], sc[g + 7]));
            }
            // The quants went in unsigned (0..63); the value is quant − 32: subtract 32 · Σ scale × sum of 16, in the lanes.
            acc = Q6Step(acc, sumi, Avx2.ConvertToVector256Int16(Vector128.Load(sc)), a.Sums16 + 16 * b, HalfTable.Load(x + 208) * a.Scales[b]);
        }
        return Vector256.Sum(acc);
    }
}
