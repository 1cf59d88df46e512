namespace SlmKit.Kernels.Quantization;

/// <summary>
/// The reference integer dot products: Σ over a weight row's blocks of (weight block) · (int8 activation block), one
/// plain loop per type that reads each element exactly as <see cref="Dequantization"/> does. Integer sums are exact,
/// so a vector path may differ from these only in the order of the float additions.
/// </summary>
internal static unsafe class ScalarDot
{
    public static float Q8_0(byte* w, ActivationRow a, int blocks)
    {
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 34 * b;
            sbyte* q = a.Quants + 32 * b;
            int s = 0;
            for (int i = 0; i < 32; i++)
                s += (sbyte)x[2 + i] * q[i];
            total += HalfTable.Load(x) * a.Scales[b] * s;
        }
        return total;
    }

    public static float Q4_0(byte* w, ActivationRow a, int blocks)
    {
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 18 * b;
            sbyte* q = a.Quants + 32 * b;
            int s = 0;
            for (int i = 0; i < 16; i++)
                s += ((x[2 + i] & 0xF) - 8) * q[i] + ((x[2 + i] >> 4) - 8) * q[i + 16];
            total += HalfTable.Load(x) * a.Scales[b] * s;
        }
        return total;
    }

    public static float Q4_1(byte* w, ActivationRow a, int blocks)
    {
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 20 * b;
            sbyte* q = a.Quants + 32 * b;
            int s = 0;
            for (int i = 0; i < 16; i++)
                s += (x[4 + i] & 0xF) * q[i] + (x[4 + i] >> 4) * q[i + 16];
            total += HalfTable.Load(x) * a.Scales[b] * s + HalfTable.Load(x + 2) * a.ScaledSums[b];
        }
        return total;
    }

    public static float Q5_0(byte* w, ActivationRow a, int blocks)
    {
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 22 * b;
            sbyte* q = a.Quants + 32 * b;
            uint qh = *(uint*)(x + 2);
            int s = 0;
            for (int i = 0; i < 16; i++)
            {
                s += ((x[6 + i] & 0xF | (int)((qh >> i) & 1) << 4) - 16) * q[i];
                s += ((x[6 + i] >> 4 | (int)((qh >> (i + 16)) & 1) << 4) - 16) * q[i + 16];
            }
            total += HalfTable.Load(x) * a.Scales[b] * s;
        }
        return total;
    }

    public static float Q5_1(byte* w, ActivationRow a, int blocks)
    {
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 24 * b;
            sbyte* q = a.Quants + 32 * b;
            uint qh = *(uint*)(x + 4);
            int s = 0;
            for (int i = 0; i < 16; i++)
            {
                s += (x[8 + i] & 0xF | (int)((qh >> i) & 1) << 4) * q[i];
                s += (x[8 + i] >> 4 | (int)((qh >> (i + 16)) & 1) << 4) * q[i + 16];
            }
            total += HalfTable.Load(x) * a.Scales[b] * s + HalfTable.Load(x + 2) * a.ScaledSums[b];
        }
        return total;
    }

    public static float Q2_K(byte* w, ActivationRow a, int blocks)
    {
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 84 * b;
            sbyte* q = a.Quants + 256 * b;
            short* sums = a.Sums16 + 16 * b;
            byte* scales = x, qs = x + 16;
            int sumq = 0, summ = 0;
            for (int g = 0; g < 16; g++)
            {
                int s = 0;
                for (int i = 16 * g; i < 16 * g + 16; i++)
                    s += ((qs[32 * (i >> 7) + (i & 31)] >> (2 * ((i >> 5) & 3))) & 3) * q[i];
                sumq += (scales[g] & 0xF) * s;
                summ += (scales[g] >> 4) * sums[g];
            }
            total += a.Scales[b] * (HalfTable.Load(x + 80) * sumq - HalfTable.Load(x + 82) * summ);
        }
        return total;
    }

    public static float Q3_K(byte* w, ActivationRow a, int blocks)
    {
        Span<int> scales = stackalloc int[16];
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 110 * b;
            sbyte* q = a.Quants + 256 * b;
            short* sums = a.Sums16 + 16 * b;
            byte* hmask = x, qs = x + 32;
            BlockFormats.Q3KScales(x + 96, scales);
            int sumq = 0;
            for (int g = 0; g < 16; g++)
            {
                int s = 0;
                for (int i = 16 * g; i < 16 * g + 16; i++)
                {
                    int h = i >> 7, j = (i >> 5) & 3, l = i & 31;
                    int u = ((qs[32 * h + l] >> (2 * j)) & 3) | ((hmask[l] >> (4 * h + j)) & 1) << 2;
                    s += u * q[i];
                }
                sumq += scales[g] * (s - 4 * sums[g]);
            }
            total += a.Scales[b] * HalfTable.Load(x + 108) * sumq;
        }
        return total;
    }

    public static float Q4_K(byte* w, ActivationRow a, int blocks) => Q45K(w, a, blocks, five: false);

    public static float Q5_K(byte* w, ActivationRow a, int blocks) => Q45K(w, a, blocks, five: true);

    private static float Q45K(byte* w, ActivationRow a, int blocks, bool five)
    {
        int blockBytes = five ? 176 : 144;
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + blockBytes * b;
            sbyte* q = a.Quants + 256 * b;
            short* sums = a.Sums16 + 16 * b;
            byte* qh = x + 16;
            byte* qs = five ? x + 48 : x + 16;
            int sumq = 0, summ = 0;
            for (int g = 0; g < 8; g++)
            {
                BlockFormats.ScaleMinK4(g, x + 4, out int sc, out int m);
                int s = 0;
                for (int l = 0; l < 32; l++)
                {
                    int v = (g & 1) == 0 ? qs[32 * (g >> 1) + l] & 0xF : qs[32 * (g >> 1) + l] >> 4;
                    if (five)
                        v |= ((qh[l] >> g) & 1) << 4;
                    s += v * q[32 * g + l];
                }
                sumq += sc * s;
                summ += m * (sums[2 * g] + sums[2 * g + 1]);
            }
            total += a.Scales[b] * (HalfTable.Load(x) * sumq - HalfTable.Load(x + 2) * summ);
        }
        return total;
    }

    public static float Q6_K(byte* w, ActivationRow a, int blocks)
    {
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* x = w + 210 * b;
            sbyte* q = a.Quants + 256 * b;
            short* sums = a.Sums16 + 16 * b;
            byte* ql = x, qh = x + 128;
            sbyte* scales = (sbyte*)(x + 192);
            int sumq = 0;
            for (int g = 0; g < 16; g++)
            {
                int s = 0;
                for (int i = 16 * g; i < 16 * g + 16; i++)
                {
                    int h = i >> 7, j = (i >> 5) & 3, l = i & 31;
                    int low = ql[64 * h + 32 * (j & 1) + l];
                    low = j < 2 ? low & 0xF : low >> 4;
                    int u = low | ((qh[32 * h + l] >> (2 * j)) & 3) << 4;
                    s += u * q[i];
                }
                sumq += scales[g] * (s - 32 * sums[g]);
            }
            total += a.Scales[b] * HalfTable.Load(x + 208) * sumq;
        }
        return total;
    }
}
