using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SlmKit.Kernels.Quantization;

/// <summary>
/// 512-bit K-quant dots: the 256-bit kernels' unpacking (shared with <see cref="Avx2Dot"/>), with each pair of
/// 32-element groups multiplied in one 512-bit vpmaddubsw + vpmaddwd against its sub-block scales. Chosen only on CPUs
/// without AVX-VNNI (see <see cref="QuantizedDot.Best"/>); on Zen 4, which splits 512-bit operations in two, the
/// measured throughput is in docs/performance.md.
/// </summary>
internal static unsafe partial class Avx512Dot
{
    /// <summary>Two groups of 32 unsigned quants against their activations (each 32 bytes) and 16-bit scales, in one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> ScaledPair(Vector256<byte> first, sbyte* firstActivations, Vector256<short> firstScales,
        Vector256<byte> second, sbyte* secondActivations, Vector256<short> secondScales)
    {
        var products = Avx512BW.MultiplyAddAdjacent(Vector512.Create(first, second),
            Vector512.Create(Vector256.Load(firstActivations), Vector256.Load(secondActivations)));
        return Avx512BW.MultiplyAddAdjacent(products, Vector512.Create(firstScales, secondScales));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Halves(Vector512<int> v) => v.GetLower() + v.GetUpper();

    public static float Q2_K(byte* w, ActivationRow a, int blocks)
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
            var sumi = Vector512<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                var qv = Vector256.Load(x + 16 + 32 * h).AsUInt16();
                for (int j = 0; j < 4; j += 2)
                {
                    int g = 8 * h + 2 * j;
                    sbyte* qa = q + 128 * h + 32 * j;
                    sumi += ScaledPair(
                        Vector256.ShiftRightLogical(qv, 2 * j).AsByte() & three, qa, Avx2Dot.Scales16(x[g] & 0xF, x[g + 1] & 0xF),
                        Vector256.ShiftRightLogical(qv, 2 * j + 2).AsByte() & three, qa + 32, Avx2Dot.Scales16(x[g + 2] & 0xF, x[g + 3] & 0xF));
                }
            }
            float scale = a.Scales[b];
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(Halves(sumi)), Vector256.Create(HalfTable.Load(x + 80) * scale), acc);
            mins += HalfTable.Load(x + 82) * scale * summ;
        }
        return Vector256.Sum(acc) - mins;
    }

    public static float Q3_K(byte* w, ActivationRow a, int blocks)
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
            var sumi = Vector512<int>.Zero;
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
                    sumi += ScaledPair(u0, qa, Avx2Dot.Scales16(scales[g], scales[g + 1]), u1, qa + 32, Avx2Dot.Scales16(scales[g + 2], scales[g + 3]));
                }
            }
            float d = HalfTable.Load(x + 108) * a.Scales[b];
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(Halves(sumi)), Vector256.Create(d), acc);
            offset += d * corr;
        }
        return Vector256.Sum(acc) - 4 * offset;
    }

    public static float Q4_K(byte* w, ActivationRow a, int blocks)
    {
        var acc = Vector256<float>.Zero;
        var low = Vector256.Create((byte)0x0F);
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 144 * b;
            sbyte* q = a.Quants + 256 * b;
            BlockFormats.ScalesMinsK4(x + 4, out ulong scales, out ulong mins);
            var sumi = Vector512<int>.Zero;
            for (int c = 0; c < 4; c++, scales >>= 16)
            {
                var qv = Vector256.Load(x + 16 + 32 * c);
                sumi += ScaledPair(
                    qv & low, q + 64 * c, Vector256.Create((short)(byte)scales),
                    Vector256.ShiftRightLogical(qv.AsUInt16(), 4).AsByte() & low, q + 64 * c + 32, Vector256.Create((short)(byte)(scales >> 8)));
            }
            var minTerm = Avx2.MultiplyAddAdjacent(Vector256.Load(a.Sums16 + 16 * b), Avx2Dot.MinimaPerSum16(mins));
            float scale = a.Scales[b];
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(Halves(sumi)), Vector256.Create(HalfTable.Load(x) * scale), acc);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(minTerm), Vector256.Create(-HalfTable.Load(x + 2) * scale), acc);
        }
        return Vector256.Sum(acc);
    }

    public static float Q5_K(byte* w, ActivationRow a, int blocks)
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
            var sumi = Vector512<int>.Zero;
            for (int c = 0; c < 4; c++, scales >>= 16)
            {
                var qv = Vector256.Load(x + 48 + 32 * c);
                var bit0 = Vector256.Create((byte)(1 << (2 * c)));
                var bit1 = Vector256.Create((byte)(2 << (2 * c)));
                var u0 = (qv & low) | (Vector256.Equals(hb & bit0, bit0) & sixteen);
                var u1 = (Vector256.ShiftRightLogical(qv.AsUInt16(), 4).AsByte() & low) | (Vector256.Equals(hb & bit1, bit1) & sixteen);
                sumi += ScaledPair(u0, q + 64 * c, Vector256.Create((short)(byte)scales), u1, q + 64 * c + 32, Vector256.Create((short)(byte)(scales >> 8)));
            }
            var minTerm = Avx2.MultiplyAddAdjacent(Vector256.Load(a.Sums16 + 16 * b), Avx2Dot.MinimaPerSum16(mins));
            float scale = a.Scales[b];
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(Halves(sumi)), Vector256.Create(HalfTable.Load(x) * scale), acc);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(minTerm), Vector256.Create(-HalfTable.Load(x + 2) * scale), acc);
        }
        return Vector256.Sum(acc);
    }

    public static float Q6_K(byte* w, ActivationRow a, int blocks)
    {
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 210 * b;
            sbyte* q = a.Quants + 256 * b;
            sbyte* sc = (sbyte*)(x + 192);
            var sumi = Vector512<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                Avx2Dot.UnpackQ6Half(x, h, out var u0, out var u1, out var u2, out var u3);
                int g = 8 * h;
                sbyte* qa = q + 128 * h;
                sumi += ScaledPair(u0, qa, Avx2Dot.Scales16(sc[g], sc[g + 1]), u1, qa + 32, Avx2Dot.Scales16(sc[g + 2], sc[g + 3]));
                sumi += ScaledPair(u2, qa + 64, Avx2Dot.Scales16(sc[g + 4], sc[g + 5]), u3, qa + 96, Avx2Dot.Scales16(sc[g + 6], sc[g + 7]));
            }
            // The quants went in unsigned (0..63); the value is quant − 32: subtract 32 · Σ scale × sum of 16, in the lanes.
            var offset = Avx2.MultiplyAddAdjacent(Vector256.Load(a.Sums16 + 16 * b), Avx2.ConvertToVector256Int16(Vector128.Load(sc)));
            float d = HalfTable.Load(x + 208) * a.Scales[b];
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(Halves(sumi) - Vector256.ShiftLeft(offset, 5)), Vector256.Create(d), acc);
        }
        return Vector256.Sum(acc);
    }
}
