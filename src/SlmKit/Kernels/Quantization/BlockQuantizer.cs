using SlmKit.Tensors;

namespace SlmKit.Kernels.Quantization;

/// <summary>
/// float32 → quantized blocks, byte-compatible with ggml. The 32-element types use the format's plain rounding rules; the
/// K types search for their sub-block scales the way llama.cpp's reference quantizers do (a weighted least-squares fit
/// over a small grid of candidate scales, then 6- or 4-bit quantized scales and a final re-rounding of every element
/// against the stored scales), so files quantized here have the same quality as llama-quantize's without an imatrix.
/// </summary>
public static unsafe class BlockQuantizer
{
    /// <summary>Quantizes <paramref name="x"/> (whole blocks) into <paramref name="destination"/> (exactly its byte size).</summary>
    public static void QuantizeRow(GgmlType type, ReadOnlySpan<float> x, Span<byte> destination)
    {
        if (!GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out int blockBytes) || !BlockFormats.IsQuantized(type))
            throw new SlmKitException($"{type} is not a block-quantized type this build can produce");
        if (x.Length % blockSize != 0 || destination.Length != x.Length / blockSize * blockBytes)
            throw new ArgumentException($"{x.Length} values do not fill {destination.Length} bytes of whole {type} blocks");
        destination.Clear();
        fixed (float* source = x)
        fixed (byte* target = destination)
        {
            int blocks = x.Length / blockSize;
            for (int b = 0; b < blocks; b++)
                Block(type, source + (long)b * blockSize, target + (long)b * blockBytes);
        }
    }

    private static void Block(GgmlType type, float* x, byte* y)
    {
        switch (type)
        {
            case GgmlType.Q8_0: Q8_0(x, y); break;
            case GgmlType.Q4_0: Q4_0(x, y); break;
            case GgmlType.Q4_1: Q4_1(x, y); break;
            case GgmlType.Q5_0: Q5_0(x, y); break;
            case GgmlType.Q5_1: Q5_1(x, y); break;
            case GgmlType.Q2_K: Q2_K(x, y); break;
            case GgmlType.Q3_K: Q3_K(x, y); break;
            case GgmlType.Q4_K: Q45K(x, y, five: false); break;
            case GgmlType.Q5_K: Q45K(x, y, five: true); break;
            case GgmlType.Q6_K: Q6_K(x, y); break;
            default: throw new SlmKitException($"{type} cannot be produced");
        }
    }

    private static void PutHalf(byte* p, float value) => *(ushort*)p = HalfTable.FromSingle(value);

    /// <summary>Round half to even, as ggml's nearest_int.</summary>
    private static int Nearest(float v) => (int)MathF.Round(v);

    private static void Q8_0(float* x, byte* y)
    {
        float amax = 0;
        for (int i = 0; i < 32; i++)
            amax = MathF.Max(amax, MathF.Abs(x[i]));
        float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
        PutHalf(y, d);
        for (int i = 0; i < 32; i++)
            y[2 + i] = (byte)(sbyte)MathF.Round(x[i] * id, MidpointRounding.AwayFromZero);
    }

    /// <summary>The element of largest magnitude, with its sign.</summary>
    private static float SignedMax(float* x, int n)
    {
        float amax = 0, max = 0;
        for (int i = 0; i < n; i++)
        {
            if (MathF.Abs(x[i]) > amax)
            {
                amax = MathF.Abs(x[i]);
                max = x[i];
            }
        }
        return max;
    }

    private static void Q4_0(float* x, byte* y)
    {
        // The largest-magnitude element maps to −8 exactly, so the full signed range is used.
        float d = SignedMax(x, 32) / -8f, id = d != 0 ? 1f / d : 0f;
        PutHalf(y, d);
        for (int i = 0; i < 16; i++)
        {
            int a = Math.Min(15, (int)(x[i] * id + 8.5f));
            int b = Math.Min(15, (int)(x[i + 16] * id + 8.5f));
            y[2 + i] = (byte)(a | b << 4);
        }
    }

    private static void Q4_1(float* x, byte* y)
    {
        MinMax(x, 32, out float min, out float max);
        float d = (max - min) / 15f, id = d != 0 ? 1f / d : 0f;
        PutHalf(y, d);
        PutHalf(y + 2, min);
        for (int i = 0; i < 16; i++)
        {
            int a = Math.Min(15, (int)((x[i] - min) * id + 0.5f));
            int b = Math.Min(15, (int)((x[i + 16] - min) * id + 0.5f));
            y[4 + i] = (byte)(a | b << 4);
        }
    }

    private static void Q5_0(float* x, byte* y)
    {
        float d = SignedMax(x, 32) / -16f, id = d != 0 ? 1f / d : 0f;
        PutHalf(y, d);
        uint qh = 0;
        for (int i = 0; i < 16; i++)
        {
            int a = Math.Min(31, (int)(x[i] * id + 16.5f));
            int b = Math.Min(31, (int)(x[i + 16] * id + 16.5f));
            y[6 + i] = (byte)((a & 15) | (b & 15) << 4);
            qh |= (uint)(a >> 4) << i | (uint)(b >> 4) << (i + 16);
        }
        *(uint*)(y + 2) = qh;
    }

    private static void Q5_1(float* x, byte* y)
    {
        MinMax(x, 32, out float min, out float max);
        float d = (max - min) / 31f, id = d != 0 ? 1f / d : 0f;
        PutHalf(y, d);
        PutHalf(y + 2, min);
        uint qh = 0;
        for (int i = 0; i < 16; i++)
        {
            int a = Math.Min(31, (int)((x[i] - min) * id + 0.5f));
            int b = Math.Min(31, (int)((x[i + 16] - min) * id + 0.5f));
            y[8 + i] = (byte)((a & 15) | (b & 15) << 4);
            qh |= (uint)(a >> 4) << i | (uint)(b >> 4) << (i + 16);
        }
        *(uint*)(y + 4) = qh;
    }

    private static void MinMax(float* x, int n, out float min, out float max)
    {
        min = float.MaxValue;
        max = float.MinValue;
        for (int i = 0; i < n; i++)
        {
            min = MathF.Min(min, x[i]);
            max = MathF.Max(max, x[i]);
        }
    }

    /// <summary>
    /// Fits x ≈ scale·L − min with L in [0, nmax] and min ≥ 0, minimising Σ w·err (absolute error when
    /// <paramref name="absolute"/>, squared otherwise): starts from the min/max grid, then tries nstep+1 scales
    /// (nmax + rmin + rdelta·k)/(max − min), solving the weighted least-squares scale and offset for each.
    /// Returns the scale; <paramref name="negativeMin"/> receives −offset (the value subtracted).
    /// </summary>
    private static float FitScaleAndMin(int n, int nmax, float* x, float* w, byte* levels, out float negativeMin,
        float rmin, float rdelta, int nstep, bool absolute)
    {
        byte* trial = stackalloc byte[n];
        float min = x[0], max = x[0], sumW = w[0], sumX = w[0] * x[0];
        for (int i = 1; i < n; i++)
        {
            min = MathF.Min(min, x[i]);
            max = MathF.Max(max, x[i]);
            sumW += w[i];
            sumX += w[i] * x[i];
        }
        if (min > 0)
            min = 0;
        if (max == min)
        {
            for (int i = 0; i < n; i++)
                levels[i] = 0;
            negativeMin = -min;
            return 0;
        }

        float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(Nearest(iscale * (x[i] - min)), 0, nmax);
            levels[i] = (byte)l;
            float diff = scale * l + min - x[i];
            best += w[i] * (absolute ? MathF.Abs(diff) : diff * diff);
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(Nearest(iscale * (x[i] - min)), 0, nmax);
                trial[i] = (byte)l;
                sumL += w[i] * l;
                sumL2 += w[i] * l * l;
                sumXL += w[i] * l * x[i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det <= 0)
                continue;
            float thisScale = (sumW * sumXL - sumX * sumL) / det;
            float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
            if (thisMin > 0)
            {
                thisMin = 0;
                thisScale = sumXL / sumL2;
            }
            float error = 0;
            for (int i = 0; i < n; i++)
            {
                float diff = thisScale * trial[i] + thisMin - x[i];
                error += w[i] * (absolute ? MathF.Abs(diff) : diff * diff);
            }
            if (error < best)
            {
                for (int i = 0; i < n; i++)
                    levels[i] = trial[i];
                best = error;
                scale = thisScale;
                min = thisMin;
            }
        }
        negativeMin = -min;
        return scale;
    }

    /// <summary>
    /// Symmetric fit x ≈ scale·(L − nmax), L in [0, 2·nmax): starts where the largest-magnitude element maps to −nmax,
    /// then (weights x², as llama.cpp's rmse_type 1) tries 18 nearby scales and keeps the best least-squares one.
    /// </summary>
    private static float FitSymmetric(int n, int nmax, float* x, sbyte* levels)
    {
        float max = SignedMax(x, n);
        if (MathF.Abs(max) < 1e-30f)
        {
            for (int i = 0; i < n; i++)
                levels[i] = 0;
            return 0;
        }
        float iscale = -nmax / max, sumLX = 0, sumL2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(Nearest(iscale * x[i]), -nmax, nmax - 1);
            levels[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i];
            sumLX += w * x[i] * l;
            sumL2 += w * l * l;
        }
        float scale = sumLX / sumL2, best = scale * sumLX;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0)
                continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumLX = sumL2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(Nearest(iscale * x[i]), -nmax, nmax - 1);
                float w = x[i] * x[i];
                sumLX += w * x[i] * l;
                sumL2 += w * l * l;
            }
            if (sumL2 > 0 && sumLX * sumLX > best * sumL2)
            {
                for (int i = 0; i < n; i++)
                    levels[i] = (sbyte)(Math.Clamp(Nearest(iscale * x[i]), -nmax, nmax - 1) + nmax);
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }
        return scale;
    }

    /// <summary>
    /// Q3_K's per-16 fit: L in [−nmax, nmax), start from the max-magnitude grid, then up to 5 passes that move single
    /// elements to the level that improves the weighted (x²) least-squares fit.
    /// </summary>
    private static float FitQ3(int n, int nmax, float* x, sbyte* levels)
    {
        float max = SignedMax(x, n);
        if (max == 0)
        {
            for (int i = 0; i < n; i++)
                levels[i] = 0;
            return 0;
        }
        float iscale = -nmax / max, sumLX = 0, sumL2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(Nearest(iscale * x[i]), -nmax, nmax - 1);
            levels[i] = (sbyte)l;
            float w = x[i] * x[i];
            sumLX += w * x[i] * l;
            sumL2 += w * l * l;
        }
        for (int pass = 0; pass < 5; pass++)
        {
            int changed = 0;
            for (int i = 0; i < n; i++)
            {
                float w = x[i] * x[i];
                float slx = sumLX - w * x[i] * levels[i];
                if (slx <= 0)
                    continue;
                float sl2 = sumL2 - w * levels[i] * levels[i];
                int l = Math.Clamp(Nearest(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (l == levels[i])
                    continue;
                slx += w * x[i] * l;
                sl2 += w * l * l;
                if (sl2 > 0 && slx * slx * sumL2 > sumLX * sumLX * sl2)
                {
                    levels[i] = (sbyte)l;
                    sumLX = slx;
                    sumL2 = sl2;
                    changed++;
                }
            }
            if (changed == 0)
                break;
        }
        for (int i = 0; i < n; i++)
            levels[i] += (sbyte)nmax;
        return sumLX / sumL2;
    }

    private static void Q2_K(float* x, byte* y)
    {
        byte* levels = stackalloc byte[256];
        float* weights = stackalloc float[16];
        float* scales = stackalloc float[16];
        float* mins = stackalloc float[16];
        float maxScale = 0, maxMin = 0;
        for (int g = 0; g < 16; g++)
        {
            for (int l = 0; l < 16; l++)
                weights[l] = MathF.Abs(x[16 * g + l]);
            scales[g] = FitScaleAndMin(16, 3, x + 16 * g, weights, levels + 16 * g, out mins[g], -0.5f, 0.1f, 15, absolute: true);
            maxScale = MathF.Max(maxScale, scales[g]);
            maxMin = MathF.Max(maxMin, mins[g]);
        }
        byte* packed = y;
        if (maxScale > 0)
        {
            float iscale = 15f / maxScale;
            for (int g = 0; g < 16; g++)
                packed[g] = (byte)Nearest(iscale * scales[g]);
            PutHalf(y + 80, maxScale / 15f);
        }
        if (maxMin > 0)
        {
            float iscale = 15f / maxMin;
            for (int g = 0; g < 16; g++)
                packed[g] |= (byte)(Nearest(iscale * mins[g]) << 4);
            PutHalf(y + 82, maxMin / 15f);
        }
        float d = HalfTable.Load(y + 80), dmin = HalfTable.Load(y + 82);
        for (int g = 0; g < 16; g++)
        {
            float dg = d * (packed[g] & 0xF);
            if (dg == 0)
                continue;
            float mg = dmin * (packed[g] >> 4);
            for (int l = 0; l < 16; l++)
                levels[16 * g + l] = (byte)Math.Clamp(Nearest((x[16 * g + l] + mg) / dg), 0, 3);
        }
        for (int i = 0; i < 256; i++)
            y[16 + 32 * (i >> 7) + (i & 31)] |= (byte)(levels[i] << (2 * ((i >> 5) & 3)));
    }

    private static void Q3_K(float* x, byte* y)
    {
        sbyte* levels = stackalloc sbyte[256];
        float* scales = stackalloc float[16];
        float maxScale = 0, amax = 0;
        for (int g = 0; g < 16; g++)
        {
            scales[g] = FitQ3(16, 4, x + 16 * g, levels + 16 * g);
            if (MathF.Abs(scales[g]) > amax)
            {
                amax = MathF.Abs(scales[g]);
                maxScale = scales[g];
            }
        }
        byte* packed = y + 96;
        if (maxScale != 0)
        {
            float iscale = -32f / maxScale;
            for (int g = 0; g < 16; g++)
            {
                int l = Math.Clamp(Nearest(iscale * scales[g]), -32, 31) + 32;
                if (g < 8)
                    packed[g] |= (byte)(l & 0xF);
                else
                    packed[g - 8] |= (byte)((l & 0xF) << 4);
                packed[8 + (g & 3)] |= (byte)((l >> 4) << (2 * (g >> 2)));
            }
            PutHalf(y + 108, 1 / iscale);
        }
        Span<int> stored = stackalloc int[16];
        BlockFormats.Q3KScales(packed, stored);
        float d = HalfTable.Load(y + 108);
        for (int g = 0; g < 16; g++)
        {
            float dg = d * stored[g];
            if (dg == 0)
                continue;
            for (int l = 0; l < 16; l++)
                levels[16 * g + l] = (sbyte)(Math.Clamp(Nearest(x[16 * g + l] / dg), -4, 3) + 4);
        }
        for (int i = 0; i < 256; i++)
        {
            int h = i >> 7, j = (i >> 5) & 3, l = i & 31;
            int u = levels[i];
            if (u > 3)
            {
                y[l] |= (byte)(1 << (4 * h + j));
                u -= 4;
            }
            y[32 + 32 * h + l] |= (byte)(u << (2 * j));
        }
    }

    private static void Q45K(float* x, byte* y, bool five)
    {
        int nmax = five ? 31 : 15;
        byte* levels = stackalloc byte[256];
        float* weights = stackalloc float[32];
        float* scales = stackalloc float[8];
        float* mins = stackalloc float[8];
        float maxScale = 0, maxMin = 0;
        for (int g = 0; g < 8; g++)
        {
            float sumX2 = 0;
            for (int l = 0; l < 32; l++)
                sumX2 += x[32 * g + l] * x[32 * g + l];
            float average = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++)
                weights[l] = average + MathF.Abs(x[32 * g + l]);
            scales[g] = five
                ? FitScaleAndMin(32, nmax, x + 32 * g, weights, levels + 32 * g, out mins[g], -0.5f, 0.1f, 15, absolute: false)
                : FitScaleAndMin(32, nmax, x + 32 * g, weights, levels + 32 * g, out mins[g], -1f, 0.1f, 20, absolute: false);
            maxScale = MathF.Max(maxScale, scales[g]);
            maxMin = MathF.Max(maxMin, mins[g]);
        }
        float inverseScale = maxScale > 0 ? 63f / maxScale : 0f;
        float inverseMin = maxMin > 0 ? 63f / maxMin : 0f;
        byte* packed = y + 4;
        for (int g = 0; g < 8; g++)
        {
            int ls = Math.Min(63, Nearest(inverseScale * scales[g]));
            int lm = Math.Min(63, Nearest(inverseMin * mins[g]));
            if (g < 4)
            {
                packed[g] = (byte)ls;
                packed[g + 4] = (byte)lm;
            }
            else
            {
                packed[g + 4] = (byte)((ls & 0xF) | (lm & 0xF) << 4);
                packed[g - 4] |= (byte)((ls >> 4) << 6);
                packed[g] |= (byte)((lm >> 4) << 6);
            }
        }
        PutHalf(y, maxScale / 63f);
        PutHalf(y + 2, maxMin / 63f);
        float d = HalfTable.Load(y), dmin = HalfTable.Load(y + 2);
        for (int g = 0; g < 8; g++)
        {
            BlockFormats.ScaleMinK4(g, packed, out int sc, out int m);
            float dg = d * sc;
            if (dg == 0)
                continue;
            float mg = dmin * m;
            for (int l = 0; l < 32; l++)
                levels[32 * g + l] = (byte)Math.Clamp(Nearest((x[32 * g + l] + mg) / dg), 0, nmax);
        }
        byte* qh = y + 16;
        byte* qs = five ? y + 48 : y + 16;
        for (int i = 0; i < 256; i++)
        {
            int g = i >> 5, l = i & 31;
            qs[32 * (g >> 1) + l] |= (byte)((levels[i] & 0xF) << (4 * (g & 1)));
            if (five && levels[i] > 15)
                qh[l] |= (byte)(1 << g);
        }
    }

    private static void Q6_K(float* x, byte* y)
    {
        sbyte* levels = stackalloc sbyte[256];
        float* scales = stackalloc float[16];
        float maxScale = 0, amax = 0;
        for (int g = 0; g < 16; g++)
        {
            scales[g] = FitSymmetric(16, 32, x + 16 * g, levels + 16 * g);
            if (MathF.Abs(scales[g]) > amax)
            {
                amax = MathF.Abs(scales[g]);
                maxScale = scales[g];
            }
        }
        if (amax == 0)
            return; // an all-zero block: every byte zero
        float iscale = -128f / maxScale;
        PutHalf(y + 208, 1 / iscale);
        sbyte* stored = (sbyte*)(y + 192);
        for (int g = 0; g < 16; g++)
            stored[g] = (sbyte)Math.Min(127, Nearest(iscale * scales[g]));
        float d = HalfTable.Load(y + 208);
        for (int g = 0; g < 16; g++)
        {
            float dg = d * stored[g];
            if (dg == 0)
                continue;
            for (int l = 0; l < 16; l++)
                levels[16 * g + l] = (sbyte)(Math.Clamp(Nearest(x[16 * g + l] / dg), -32, 31) + 32);
        }
        for (int i = 0; i < 256; i++)
        {
            int h = i >> 7, j = (i >> 5) & 3, l = i & 31;
            int u = levels[i];
            y[64 * h + 32 * (j & 1) + l] |= (byte)((u & 15) << (j < 2 ? 0 : 4));
            y[128 + 32 * h + l] |= (byte)((u >> 4) << (2 * j));
        }
    }
}
