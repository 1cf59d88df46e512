using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SlmKit.Kernels.Quantization;

/// <summary>
/// Prefill tiles. One weight row against four consecutive activation rows (every type with a tile): each weight block
/// is loaded, unpacked and its scale read once for the four tokens, and the per-call work (horizontal sums, setup) is
/// paid once per four dots; a SmolLM row is only 18 blocks long, so that overhead is a large part of a single dot.
/// Eight weight rows against up to <see cref="RowTile.MaxTokens"/> tokens (the 32-element block types): see <c>OffsetDot8xN</c>.
/// </summary>
internal static unsafe partial class Avx2Dot
{
    /// <summary>
    /// results[k] = row · activation row k for k &lt; 4, where the activation rows follow <paramref name="a"/> in the
    /// <see cref="QuantizedActivations"/> layout (quants every 32·blocks bytes, scales and sums every blocks floats).
    /// </summary>
    public static void Q8_0x4<T>(byte* w, ActivationRow a, int blocks, float* results) where T : struct, IDotFlavour
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        long stride = 32L * blocks;
        sbyte* q = a.Quants;
        float* scales = a.Scales;
        byte* x = w;
        for (int b = 0; b < blocks; b++, x += 34, q += 32, scales++)
        {
            var weights = Vector256.Load((sbyte*)x + 2);
            var magnitude = Avx2.Abs(weights);
            float d = HalfTable.Load(x);
            var p0 = DotBytes<T>(magnitude, Avx2.Sign(Vector256.Load(q), weights));
            var p1 = DotBytes<T>(magnitude, Avx2.Sign(Vector256.Load(q + stride), weights));
            var p2 = DotBytes<T>(magnitude, Avx2.Sign(Vector256.Load(q + 2 * stride), weights));
            var p3 = DotBytes<T>(magnitude, Avx2.Sign(Vector256.Load(q + 3 * stride), weights));
            acc0 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p0), Vector256.Create(d * scales[0]), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p1), Vector256.Create(d * scales[blocks]), acc1);
            acc2 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p2), Vector256.Create(d * scales[2 * blocks]), acc2);
            acc3 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p3), Vector256.Create(d * scales[3 * blocks]), acc3);
        }
        StoreSums(acc0, acc1, acc2, acc3, results);
    }

    /// <summary>The four-token tile of the offset types (Q4_0, Q4_1, Q5_0, Q5_1); layout as in <see cref="Q8_0x4{T}"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // kept whole, as OffsetDot (Avx2Dot.cs) explains
    private static void OffsetDot4<TBlock, T>(byte* w, ActivationRow a, int blocks, float* results)
        where TBlock : struct, IOffsetBlock where T : struct, IDotFlavour
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        float off0 = 0, off1 = 0, off2 = 0, off3 = 0;
        long stride = 32L * blocks;
        int size = TBlock.Bytes;
        sbyte* q = a.Quants;
        float* scales = a.Scales, sums = a.ScaledSums;
        byte* x = w;
        for (int b = 0; b < blocks; b++, x += size, q += 32, scales++, sums++)
        {
            float d = TBlock.Scale(x, out float offset);
            var quants = TBlock.Quants(x);
            var p0 = DotBytes<T>(quants, Vector256.Load(q));
            var p1 = DotBytes<T>(quants, Vector256.Load(q + stride));
            var p2 = DotBytes<T>(quants, Vector256.Load(q + 2 * stride));
            var p3 = DotBytes<T>(quants, Vector256.Load(q + 3 * stride));
            acc0 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p0), Vector256.Create(d * scales[0]), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p1), Vector256.Create(d * scales[blocks]), acc1);
            acc2 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p2), Vector256.Create(d * scales[2 * blocks]), acc2);
            acc3 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p3), Vector256.Create(d * scales[3 * blocks]), acc3);
            off0 += offset * sums[0];
            off1 += offset * sums[blocks];
            off2 += offset * sums[2 * blocks];
            off3 += offset * sums[3 * blocks];
        }
        StoreSums(acc0, acc1, acc2, acc3, results);
        results[0] += off0;
        results[1] += off1;
        results[2] += off2;
        results[3] += off3;
    }

    public static void Q4_0x4<T>(byte* w, ActivationRow a, int blocks, float* results) where T : struct, IDotFlavour => OffsetDot4<Q4_0Block, T>(w, a, blocks, results);

    public static void Q4_1x4<T>(byte* w, ActivationRow a, int blocks, float* results) where T : struct, IDotFlavour => OffsetDot4<Q4_1Block, T>(w, a, blocks, results);

    public static void Q5_0x4<T>(byte* w, ActivationRow a, int blocks, float* results) where T : struct, IDotFlavour => OffsetDot4<Q5_0Block, T>(w, a, blocks, results);

    public static void Q5_1x4<T>(byte* w, ActivationRow a, int blocks, float* results) where T : struct, IDotFlavour => OffsetDot4<Q5_1Block, T>(w, a, blocks, results);

    /// <summary>
    /// The four-token tile of Q4_K: the sub-block scales and minimums are decoded once per super-block, the minimum term
    /// is an integer vector product of the minimums with each token's sums of 16 (vpmaddwd), folded into the accumulator.
    /// </summary>
    public static void Q4_Kx4(byte* w, ActivationRow a, int blocks, float* results)
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        long quantStride = 256L * blocks, sumStride = 16L * blocks;
        var low = Vector256.Create((byte)0x0F);
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 144 * b;
            sbyte* q = a.Quants + 256L * b;
            BlockFormats.ScalesMinsK4(x + 4, out ulong packedScales, out ulong packedMins);
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int c = 0; c < 4; c++, packedScales >>= 16)
            {
                var qv = Vector256.Load(x + 16 + 32 * c);
                var u0 = qv & low;
                var u1 = Vector256.ShiftRightLogical(qv.AsUInt16(), 4).AsByte() & low;
                var scale0 = Vector256.Create((short)(byte)packedScales);
                var scale1 = Vector256.Create((short)(byte)(packedScales >> 8));
                sbyte* qc = q + 64 * c;
                s0 += ScaledDot(u0, qc, scale0) + ScaledDot(u1, qc + 32, scale1);
                s1 += ScaledDot(u0, qc + quantStride, scale0) + ScaledDot(u1, qc + quantStride + 32, scale1);
                s2 += ScaledDot(u0, qc + 2 * quantStride, scale0) + ScaledDot(u1, qc + 2 * quantStride + 32, scale1);
                s3 += ScaledDot(u0, qc + 3 * quantStride, scale0) + ScaledDot(u1, qc + 3 * quantStride + 32, scale1);
            }
            var mins = MinimaPerSum16(packedMins);
            short* sums = a.Sums16 + 16L * b;
            float d = HalfTable.Load(x), dmin = HalfTable.Load(x + 2);
            float* scales = a.Scales + b;
            acc0 = KStep(acc0, s0, mins, sums, d, dmin, scales[0]);
            acc1 = KStep(acc1, s1, mins, sums + sumStride, d, dmin, scales[blocks]);
            acc2 = KStep(acc2, s2, mins, sums + 2 * sumStride, d, dmin, scales[2 * blocks]);
            acc3 = KStep(acc3, s3, mins, sums + 3 * sumStride, d, dmin, scales[3 * blocks]);
        }
        StoreSums(acc0, acc1, acc2, acc3, results);
    }

    /// <summary>acc + d·scale·Σdots − dmin·scale·Σ(minimum × sum of 16), in vector lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> KStep(Vector256<float> acc, Vector256<int> dots, Vector256<short> mins, short* sums, float d, float dmin, float scale)
    {
        var minTerm = Avx2.MultiplyAddAdjacent(Vector256.Load(sums), mins);
        acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(dots), Vector256.Create(d * scale), acc);
        return Fma.MultiplyAdd(Vector256.ConvertToSingle(minTerm), Vector256.Create(-dmin * scale), acc);
    }

    /// <summary>
    /// The four-token tile of Q6_K: the 6-bit quants are assembled once per super-block; the −32 offset is an integer
    /// vector product of the sub-block scales with each token's sums of 16, subtracted in the integer lanes.
    /// </summary>
    public static void Q6_Kx4(byte* w, ActivationRow a, int blocks, float* results)
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        long quantStride = 256L * blocks, sumStride = 16L * blocks;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 210 * b;
            sbyte* q = a.Quants + 256L * b;
            sbyte* sc = (sbyte*)(x + 192);
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int h = 0; h < 2; h++)
            {
                UnpackQ6Half(x, h, out var u0, out var u1, out var u2, out var u3);
                int g = 8 * h;
                var scale0 = Scales16(sc[g], sc[g + 1]);
                var scale1 = Scales16(sc[g + 2], sc[g + 3]);
                var scale2 = Scales16(sc[g + 4], sc[g + 5]);
                var scale3 = Scales16(sc[g + 6], sc[g + 7]);
                sbyte* qa = q + 128 * h;
                s0 += Q6Group(u0, u1, u2, u3, qa, scale0, scale1, scale2, scale3);
                s1 += Q6Group(u0, u1, u2, u3, qa + quantStride, scale0, scale1, scale2, scale3);
                s2 += Q6Group(u0, u1, u2, u3, qa + 2 * quantStride, scale0, scale1, scale2, scale3);
                s3 += Q6Group(u0, u1, u2, u3, qa + 3 * quantStride, scale0, scale1, scale2, scale3);
            }
            // The quants went in unsigned (0..63); the format's value is quant − 32, so subtract 32 · Σ scale × sum of 16.
            var subScales = Avx2.ConvertToVector256Int16(Vector128.Load(sc));
            short* sums = a.Sums16 + 16L * b;
            float d = HalfTable.Load(x + 208);
            float* scales = a.Scales + b;
            acc0 = Q6Step(acc0, s0, subScales, sums, d * scales[0]);
            acc1 = Q6Step(acc1, s1, subScales, sums + sumStride, d * scales[blocks]);
            acc2 = Q6Step(acc2, s2, subScales, sums + 2 * sumStride, d * scales[2 * blocks]);
            acc3 = Q6Step(acc3, s3, subScales, sums + 3 * sumStride, d * scales[3 * blocks]);
        }
        StoreSums(acc0, acc1, acc2, acc3, results);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6Group(Vector256<byte> u0, Vector256<byte> u1, Vector256<byte> u2, Vector256<byte> u3, sbyte* q,
        Vector256<short> scale0, Vector256<short> scale1, Vector256<short> scale2, Vector256<short> scale3) =>
        TwoGroups.Dot(u0, q, scale0, u1, q + 32, scale1) + TwoGroups.Dot(u2, q + 64, scale2, u3, q + 96, scale3);

    /// <summary>acc + scale·(Σdots − 32·Σ(sub-block scale × sum of 16)), in vector lanes: Q6_K's −32 offset applied in integers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Q6Step(Vector256<float> acc, Vector256<int> dots, Vector256<short> subScales, short* sums, float scale)
    {
        var offset = Avx2.MultiplyAddAdjacent(Vector256.Load(sums), subScales);
        return Fma.MultiplyAdd(Vector256.ConvertToSingle(dots - Vector256.ShiftLeft(offset, 5)), Vector256.Create(scale), acc);
    }

    /// <summary>Q8_0 read as an offset block for the eight-row tile: quant + 128 unsigned, offset −128·d (VNNI only).</summary>
    internal readonly struct Q8_0AsOffsetBlock : IOffsetBlock
    {
        public static int Bytes => 34;
        public static int IntegerOffset => -128;
        public static int MaxQuant => 255;

        // vpdpbusd takes u8·s8 products into 32-bit sums, so 255·127 cannot saturate; vpmaddubsw's 16-bit pairs could,
        // which is why only the VNNI path reads Q8_0 this way.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Quants(byte* x) => Vector256.Load(x + 2) ^ Vector256.Create((byte)0x80);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(byte* x, out float offset)
        {
            float d = HalfTable.Load(x);
            offset = -128 * d;
            return d;
        }
    }

    /// <summary>
    /// Eight weight rows against up to <see cref="RowTile.MaxTokens"/> consecutive tokens (a prefill tile):
    /// y[(token k) · <paramref name="rows"/> + row i] for the eight rows starting at <paramref name="w"/>,
    /// <paramref name="rowBytes"/> apart. The eight rows' unpacked blocks are transposed into one 32-bit lane per row, so
    /// the integer dots land in row order (no horizontal adds: 22 % faster prefill than reducing eight per-row vectors)
    /// and each (block, token) costs one conversion and two FMAs for all eight rows instead of one of each per row. This
    /// is what llama.cpp gets from repacking weights into interleaved groups of rows, obtained from the file's own layout.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // kept whole, as OffsetDot (Avx2Dot.cs) explains
    private static void OffsetDot8xN<TBlock, T>(byte* w, long rowBytes, ActivationRow a, int blocks, float* y, long rows, int tokens)
        where TBlock : struct, IOffsetBlock where T : struct, IDotFlavour
    {
        // The accumulators live in L1 rather than in a helper's parameters: a helper taking the eight unpacked blocks by
        // value was not inlined by the JIT, and passing them through the stack cost more than the tile saved.
        var acc = stackalloc Vector256<float>[RowTile.MaxTokens];
        for (int k = 0; k < tokens; k++)
            acc[k] = Vector256<float>.Zero;
        long quantStride = 8L * blocks; // one token's quants, in ints
        int size = TBlock.Bytes;
        float* d = stackalloc float[8];
        float* c = stackalloc float[8];
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + (long)b * size;
            for (int i = 0; i < 8; i++)
                d[i] = TBlock.Scale(x + i * rowBytes, out c[i]);
            var scales = Vector256.Load(d);
            var offsets = Vector256.Load(c);
            // Transpose the eight rows' blocks as 8 × 8 groups of four quants: g[j] holds group j of rows 0..7, one row
            // per 32-bit lane, so vpdpbusd against group j of the activations (broadcast) adds into each row's own lane
            // and the eight row sums come out in order with no horizontal adds.
            var r01Low = Avx2.UnpackLow(TBlock.Quants(x).AsInt32(), TBlock.Quants(x + rowBytes).AsInt32());
            var r01High = Avx2.UnpackHigh(TBlock.Quants(x).AsInt32(), TBlock.Quants(x + rowBytes).AsInt32());
            var r23Low = Avx2.UnpackLow(TBlock.Quants(x + 2 * rowBytes).AsInt32(), TBlock.Quants(x + 3 * rowBytes).AsInt32());
            var r23High = Avx2.UnpackHigh(TBlock.Quants(x + 2 * rowBytes).AsInt32(), TBlock.Quants(x + 3 * rowBytes).AsInt32());
            var r45Low = Avx2.UnpackLow(TBlock.Quants(x + 4 * rowBytes).AsInt32(), TBlock.Quants(x + 5 * rowBytes).AsInt32());
            var r45High = Avx2.UnpackHigh(TBlock.Quants(x + 4 * rowBytes).AsInt32(), TBlock.Quants(x + 5 * rowBytes).AsInt32());
            var r67Low = Avx2.UnpackLow(TBlock.Quants(x + 6 * rowBytes).AsInt32(), TBlock.Quants(x + 7 * rowBytes).AsInt32());
            var r67High = Avx2.UnpackHigh(TBlock.Quants(x + 6 * rowBytes).AsInt32(), TBlock.Quants(x + 7 * rowBytes).AsInt32());
            var lo04 = Avx2.UnpackLow(r01Low.AsInt64(), r23Low.AsInt64()).AsByte();
            var lo15 = Avx2.UnpackHigh(r01Low.AsInt64(), r23Low.AsInt64()).AsByte();
            var lo26 = Avx2.UnpackLow(r01High.AsInt64(), r23High.AsInt64()).AsByte();
            var lo37 = Avx2.UnpackHigh(r01High.AsInt64(), r23High.AsInt64()).AsByte();
            var hi04 = Avx2.UnpackLow(r45Low.AsInt64(), r67Low.AsInt64()).AsByte();
            var hi15 = Avx2.UnpackHigh(r45Low.AsInt64(), r67Low.AsInt64()).AsByte();
            var hi26 = Avx2.UnpackLow(r45High.AsInt64(), r67High.AsInt64()).AsByte();
            var hi37 = Avx2.UnpackHigh(r45High.AsInt64(), r67High.AsInt64()).AsByte();
            var g0 = Avx2.Permute2x128(lo04, hi04, 0x20);
            var g4 = Avx2.Permute2x128(lo04, hi04, 0x31);
            var g1 = Avx2.Permute2x128(lo15, hi15, 0x20);
            var g5 = Avx2.Permute2x128(lo15, hi15, 0x31);
            var g2 = Avx2.Permute2x128(lo26, hi26, 0x20);
            var g6 = Avx2.Permute2x128(lo26, hi26, 0x31);
            var g3 = Avx2.Permute2x128(lo37, hi37, 0x20);
            var g7 = Avx2.Permute2x128(lo37, hi37, 0x31);
            int* q = (int*)(a.Quants + 32L * b);
            float* activationScales = a.Scales + b, sums = a.ScaledSums + b;
            for (int k = 0; k < tokens; k++, q += quantStride, activationScales += blocks, sums += blocks)
            {
                var even = AddDot<T>(AddDot<T>(Vector256<int>.Zero, g0, q[0]), g2, q[2]);
                var odd = AddDot<T>(AddDot<T>(Vector256<int>.Zero, g1, q[1]), g3, q[3]);
                even = AddDot<T>(AddDot<T>(even, g4, q[4]), g6, q[6]);
                odd = AddDot<T>(AddDot<T>(odd, g5, q[5]), g7, q[7]);
                var sum = Fma.MultiplyAdd(Vector256.ConvertToSingle(even + odd), scales * Vector256.Create(*activationScales), acc[k]);
                acc[k] = Fma.MultiplyAdd(offsets, Vector256.Create(*sums), sum);
            }
        }
        for (int k = 0; k < tokens; k++)
            acc[k].Store(y + k * rows);
    }

    /// <summary>acc + (per 32-bit lane) Σ of the four u8 · s8 products of <paramref name="u"/> and the broadcast group.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> AddDot<T>(Vector256<int> acc, Vector256<byte> u, int group) where T : struct, IDotFlavour
    {
        var s = Vector256.Create(group).AsSByte();
        return T.Vnni && AvxVnni.IsSupported
            ? AvxVnni.MultiplyWideningAndAdd(acc, u, s)
            : acc + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), s_ones16);
    }

    public static void Q8_0x8(byte* w, long rowBytes, ActivationRow a, int blocks, float* y, long rows, int tokens) => OffsetDot8xN<Q8_0AsOffsetBlock, WithAvxVnni>(w, rowBytes, a, blocks, y, rows, tokens);

    public static void Q4_0x8<T>(byte* w, long rowBytes, ActivationRow a, int blocks, float* y, long rows, int tokens) where T : struct, IDotFlavour => OffsetDot8xN<Q4_0Block, T>(w, rowBytes, a, blocks, y, rows, tokens);

    public static void Q4_1x8<T>(byte* w, long rowBytes, ActivationRow a, int blocks, float* y, long rows, int tokens) where T : struct, IDotFlavour => OffsetDot8xN<Q4_1Block, T>(w, rowBytes, a, blocks, y, rows, tokens);

    public static void Q5_0x8<T>(byte* w, long rowBytes, ActivationRow a, int blocks, float* y, long rows, int tokens) where T : struct, IDotFlavour => OffsetDot8xN<Q5_0Block, T>(w, rowBytes, a, blocks, y, rows, tokens);

    public static void Q5_1x8<T>(byte* w, long rowBytes, ActivationRow a, int blocks, float* y, long rows, int tokens) where T : struct, IDotFlavour => OffsetDot8xN<Q5_1Block, T>(w, rowBytes, a, blocks, y, rows, tokens);

    /// <summary>The horizontal sums of four accumulators, reduced together (two rounds of hadd instead of four reductions).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreSums(Vector256<float> acc0, Vector256<float> acc1, Vector256<float> acc2, Vector256<float> acc3, float* results)
    {
        var pairs01 = Avx.HorizontalAdd(acc0, acc1);
        var pairs23 = Avx.HorizontalAdd(acc2, acc3);
        var quads = Avx.HorizontalAdd(pairs01, pairs23);
        (quads.GetLower() + quads.GetUpper()).Store(results);
    }
}
