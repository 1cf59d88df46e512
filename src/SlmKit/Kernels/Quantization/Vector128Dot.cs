using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SlmKit.Kernels.Quantization;

/// <summary>
/// Portable 128-bit integer dot products (cross-platform <see cref="Vector128"/> operations only, so the same code
/// runs on SSE and on NEON): 16 bytes at a time, widened to int16 products and then to int32 sums. Slower than the
/// x86-specific paths, which multiply-add bytes directly, but the fallback for every other CPU.
/// </summary>
internal static unsafe class Vector128Dot
{
    public static bool IsSupported => Vector128.IsHardwareAccelerated;

    /// <summary>Σ u·s of 16 byte pairs, spread over 4 int32 lanes (u may be 0..255).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Dot16(Vector128<byte> u, sbyte* s)
    {
        var (ul, uh) = Vector128.Widen(u);
        var (sl, sh) = Vector128.Widen(Vector128.Load(s));
        var (p0, p1) = Vector128.Widen(ul.AsInt16() * sl);
        var (p2, p3) = Vector128.Widen(uh.AsInt16() * sh);
        return (p0 + p1) + (p2 + p3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Dot16Signed(Vector128<sbyte> w, sbyte* s)
    {
        var (wl, wh) = Vector128.Widen(w);
        var (sl, sh) = Vector128.Widen(Vector128.Load(s));
        var (p0, p1) = Vector128.Widen(wl * sl);
        var (p2, p3) = Vector128.Widen(wh * sh);
        return (p0 + p1) + (p2 + p3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> ShiftRight(Vector128<byte> v, int bits) => Vector128.ShiftRightLogical(v.AsUInt16(), bits).AsByte();

    /// <summary>0x10 in byte i where bit (i + <paramref name="first"/>) of <paramref name="bits"/> is set, for 16 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> FifthBits(uint bits, int first)
    {
        var spread = Vector128.Create((ushort)(bits >> first)).AsByte();
        var expanded = Vector128.Shuffle(spread, Vector128.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
        var select = Vector128.Create(0x8040201008040201UL).AsByte();
        return Vector128.Equals(expanded & select, select) & Vector128.Create((byte)0x10);
    }

    private static readonly Vector128<byte> s_low = Vector128.Create((byte)0x0F);

    public static float Q8_0(byte* w, ActivationRow a, int blocks)
    {
        var acc = Vector128<float>.Zero;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 34 * b;
            sbyte* q = a.Quants + 32 * b;
            var p = Dot16Signed(Vector128.Load((sbyte*)x + 2), q) + Dot16Signed(Vector128.Load((sbyte*)x + 18), q + 16);
            acc += Vector128.ConvertToSingle(p) * Vector128.Create(HalfTable.Load(x) * a.Scales[b]);
        }
        return Vector128.Sum(acc);
    }

    public static float Q4_0(byte* w, ActivationRow a, int blocks)
    {
        var acc = Vector128<float>.Zero;
        float offset = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 18 * b;
            sbyte* q = a.Quants + 32 * b;
            var raw = Vector128.Load(x + 2);
            var p = Dot16(raw & s_low, q) + Dot16(ShiftRight(raw, 4) & s_low, q + 16);
            float d = HalfTable.Load(x);
            acc += Vector128.ConvertToSingle(p) * Vector128.Create(d * a.Scales[b]);
            offset += d * a.ScaledSums[b];
        }
        return Vector128.Sum(acc) - 8 * offset;
    }

    public static float Q4_1(byte* w, ActivationRow a, int blocks)
    {
        var acc = Vector128<float>.Zero;
        float mins = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 20 * b;
            sbyte* q = a.Quants + 32 * b;
            var raw = Vector128.Load(x + 4);
            var p = Dot16(raw & s_low, q) + Dot16(ShiftRight(raw, 4) & s_low, q + 16);
            acc += Vector128.ConvertToSingle(p) * Vector128.Create(HalfTable.Load(x) * a.Scales[b]);
            mins += HalfTable.Load(x + 2) * a.ScaledSums[b];
        }
        return Vector128.Sum(acc) + mins;
    }

    public static float Q5_0(byte* w, ActivationRow a, int blocks)
    {
        var acc = Vector128<float>.Zero;
        float offset = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 22 * b;
            sbyte* q = a.Quants + 32 * b;
            uint qh = Unsafe.ReadUnaligned<uint>(x + 2);
            var raw = Vector128.Load(x + 6);
            var p = Dot16((raw & s_low) | FifthBits(qh, 0), q) + Dot16((ShiftRight(raw, 4) & s_low) | FifthBits(qh, 16), q + 16);
            float d = HalfTable.Load(x);
            acc += Vector128.ConvertToSingle(p) * Vector128.Create(d * a.Scales[b]);
            offset += d * a.ScaledSums[b];
        }
        return Vector128.Sum(acc) - 16 * offset;
    }

    public static float Q5_1(byte* w, ActivationRow a, int blocks)
    {
        var acc = Vector128<float>.Zero;
        float mins = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 24 * b;
            sbyte* q = a.Quants + 32 * b;
            uint qh = Unsafe.ReadUnaligned<uint>(x + 4);
            var raw = Vector128.Load(x + 8);
            var p = Dot16((raw & s_low) | FifthBits(qh, 0), q) + Dot16((ShiftRight(raw, 4) & s_low) | FifthBits(qh, 16), q + 16);
            acc += Vector128.ConvertToSingle(p) * Vector128.Create(HalfTable.Load(x) * a.Scales[b]);
            mins += HalfTable.Load(x + 2) * a.ScaledSums[b];
        }
        return Vector128.Sum(acc) + mins;
    }

    public static float Q2_K(byte* w, ActivationRow a, int blocks)
    {
        float total = 0;
        var three = Vector128.Create((byte)3);
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 84 * b;
            sbyte* q = a.Quants + 256 * b;
            short* sums = a.Sums16 + 16 * b;
            int summ = 0;
            for (int g = 0; g < 16; g++)
                summ += (x[g] >> 4) * sums[g];
            var sumi = Vector128<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                var q0 = Vector128.Load(x + 16 + 32 * h);
                var q1 = Vector128.Load(x + 32 + 32 * h);
                for (int j = 0; j < 4; j++)
                {
                    int g = 8 * h + 2 * j;
                    sbyte* qa = q + 128 * h + 32 * j;
                    sumi += Dot16(ShiftRight(q0, 2 * j) & three, qa) * Vector128.Create(x[g] & 0xF);
                    sumi += Dot16(ShiftRight(q1, 2 * j) & three, qa + 16) * Vector128.Create(x[g + 1] & 0xF);
                }
            }
            total += a.Scales[b] * (HalfTable.Load(x + 80) * Vector128.Sum(sumi) - HalfTable.Load(x + 82) * summ);
        }
        return total;
    }

    public static float Q3_K(byte* w, ActivationRow a, int blocks)
    {
        Span<int> scales = stackalloc int[16];
        float total = 0;
        var three = Vector128.Create((byte)3);
        var four = Vector128.Create((byte)4);
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 110 * b;
            sbyte* q = a.Quants + 256 * b;
            short* sums = a.Sums16 + 16 * b;
            BlockFormats.Q3KScales(x + 96, scales);
            int corr = 0;
            for (int g = 0; g < 16; g++)
                corr += scales[g] * sums[g];
            var hm0 = Vector128.Load(x);
            var hm1 = Vector128.Load(x + 16);
            var sumi = Vector128<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                var q0 = Vector128.Load(x + 32 + 32 * h);
                var q1 = Vector128.Load(x + 48 + 32 * h);
                for (int j = 0; j < 4; j++)
                {
                    var bit = Vector128.Create((byte)(1 << (4 * h + j)));
                    int g = 8 * h + 2 * j;
                    sbyte* qa = q + 128 * h + 32 * j;
                    var u0 = (ShiftRight(q0, 2 * j) & three) | (Vector128.Equals(hm0 & bit, bit) & four);
                    var u1 = (ShiftRight(q1, 2 * j) & three) | (Vector128.Equals(hm1 & bit, bit) & four);
                    sumi += Dot16(u0, qa) * Vector128.Create(scales[g]);
                    sumi += Dot16(u1, qa + 16) * Vector128.Create(scales[g + 1]);
                }
            }
            total += a.Scales[b] * HalfTable.Load(x + 108) * (Vector128.Sum(sumi) - 4 * corr);
        }
        return total;
    }

    public static float Q4_K(byte* w, ActivationRow a, int blocks) => Q45K(w, a, blocks, five: false);

    public static float Q5_K(byte* w, ActivationRow a, int blocks) => Q45K(w, a, blocks, five: true);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Q45K(byte* w, ActivationRow a, int blocks, bool five)
    {
        float total = 0;
        int blockBytes = five ? 176 : 144;
        var sixteen = Vector128.Create((byte)0x10);
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + blockBytes * b;
            sbyte* q = a.Quants + 256 * b;
            short* sums = a.Sums16 + 16 * b;
            byte* qs = five ? x + 48 : x + 16;
            var hb0 = five ? Vector128.Load(x + 16) : default;
            var hb1 = five ? Vector128.Load(x + 32) : default;
            var sumi = Vector128<int>.Zero;
            int summ = 0;
            for (int c = 0; c < 4; c++)
            {
                BlockFormats.ScaleMinK4(2 * c, x + 4, out int sc0, out int m0);
                BlockFormats.ScaleMinK4(2 * c + 1, x + 4, out int sc1, out int m1);
                summ += m0 * (sums[4 * c] + sums[4 * c + 1]) + m1 * (sums[4 * c + 2] + sums[4 * c + 3]);
                var r0 = Vector128.Load(qs + 32 * c);
                var r1 = Vector128.Load(qs + 32 * c + 16);
                var l0 = r0 & s_low;
                var l1 = r1 & s_low;
                var h0 = ShiftRight(r0, 4) & s_low;
                var h1 = ShiftRight(r1, 4) & s_low;
                if (five)
                {
                    var bit0 = Vector128.Create((byte)(1 << (2 * c)));
                    var bit1 = Vector128.Create((byte)(2 << (2 * c)));
                    l0 |= Vector128.Equals(hb0 & bit0, bit0) & sixteen;
                    l1 |= Vector128.Equals(hb1 & bit0, bit0) & sixteen;
                    h0 |= Vector128.Equals(hb0 & bit1, bit1) & sixteen;
                    h1 |= Vector128.Equals(hb1 & bit1, bit1) & sixteen;
                }
                sbyte* qa = q + 64 * c;
                sumi += (Dot16(l0, qa) + Dot16(l1, qa + 16)) * Vector128.Create(sc0);
                sumi += (Dot16(h0, qa + 32) + Dot16(h1, qa + 48)) * Vector128.Create(sc1);
            }
            total += a.Scales[b] * (HalfTable.Load(x) * Vector128.Sum(sumi) - HalfTable.Load(x + 2) * summ);
        }
        return total;
    }

    public static float Q6_K(byte* w, ActivationRow a, int blocks)
    {
        float total = 0;
        var bits45 = Vector128.Create((byte)0x30);
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 210 * b;
            sbyte* q = a.Quants + 256 * b;
            short* sums = a.Sums16 + 16 * b;
            sbyte* sc = (sbyte*)(x + 192);
            int corr = 0;
            for (int g = 0; g < 16; g++)
                corr += sc[g] * sums[g];
            var sumi = Vector128<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                for (int half = 0; half < 2; half++)
                {
                    int o = 16 * half;
                    var q0 = Vector128.Load(x + 64 * h + o);
                    var q1 = Vector128.Load(x + 64 * h + 32 + o);
                    var hh = Vector128.Load(x + 128 + 32 * h + o);
                    var u0 = (q0 & s_low) | (Vector128.ShiftLeft(hh.AsUInt16(), 4).AsByte() & bits45);
                    var u1 = (q1 & s_low) | (Vector128.ShiftLeft(hh.AsUInt16(), 2).AsByte() & bits45);
                    var u2 = (ShiftRight(q0, 4) & s_low) | (hh & bits45);
                    var u3 = (ShiftRight(q1, 4) & s_low) | (ShiftRight(hh, 2) & bits45);
                    int g = 8 * h + half;
                    sbyte* qa = q + 128 * h + o;
                    sumi += Dot16(u0, qa) * Vector128.Create((int)sc[g]);
                    sumi += Dot16(u1, qa + 32) * Vector128.Create((int)sc[g + 2]);
                    sumi += Dot16(u2, qa + 64) * Vector128.Create((int)sc[g + 4]);
                    sumi += Dot16(u3, qa + 96) * Vector128.Create((int)sc[g + 6]);
                }
            }
            total += a.Scales[b] * HalfTable.Load(x + 208) * (Vector128.Sum(sumi) - 32 * corr);
        }
        return total;
    }
}
