using SlmKit.Tensors;

namespace SlmKit.Kernels.Quantization;

/// <summary>
/// Block → float32, one plain loop per type written from the layouts in <see cref="BlockFormats"/>. This is the
/// reference every faster path is checked against, and what embedding lookups and small vectors use.
/// </summary>
public static unsafe class Dequantization
{
    /// <summary>Dequantizes <paramref name="destination"/>.Length elements (whole blocks) starting at <paramref name="blocks"/>.</summary>
    public static void Row(GgmlType type, byte* blocks, Span<float> destination)
    {
        if (!GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out int blockBytes) || !BlockFormats.IsQuantized(type))
            throw new SlmKitException($"{type} is not a block-quantized type this build can dequantize");
        if (destination.Length % blockSize != 0)
            throw new ArgumentException($"{destination.Length} elements are not a whole number of {blockSize}-element {type} blocks", nameof(destination));
        fixed (float* y = destination)
        {
            int count = destination.Length / blockSize;
            for (int b = 0; b < count; b++)
                Block(type, blocks + (long)b * blockBytes, y + (long)b * blockSize);
        }
    }

    private static void Block(GgmlType type, byte* x, float* y)
    {
        switch (type)
        {
            case GgmlType.Q8_0:
            {
                float d = HalfTable.Load(x);
                for (int i = 0; i < 32; i++)
                    y[i] = d * (sbyte)x[2 + i];
                break;
            }
            case GgmlType.Q4_0:
            {
                float d = HalfTable.Load(x);
                for (int i = 0; i < 16; i++)
                {
                    y[i] = d * ((x[2 + i] & 0xF) - 8);
                    y[i + 16] = d * ((x[2 + i] >> 4) - 8);
                }
                break;
            }
            case GgmlType.Q4_1:
            {
                float d = HalfTable.Load(x), m = HalfTable.Load(x + 2);
                for (int i = 0; i < 16; i++)
                {
                    y[i] = d * (x[4 + i] & 0xF) + m;
                    y[i + 16] = d * (x[4 + i] >> 4) + m;
                }
                break;
            }
            case GgmlType.Q5_0:
            {
                float d = HalfTable.Load(x);
                uint qh = *(uint*)(x + 2);
                for (int i = 0; i < 16; i++)
                {
                    y[i] = d * ((x[6 + i] & 0xF | (int)((qh >> i) & 1) << 4) - 16);
                    y[i + 16] = d * ((x[6 + i] >> 4 | (int)((qh >> (i + 16)) & 1) << 4) - 16);
                }
                break;
            }
            case GgmlType.Q5_1:
            {
                float d = HalfTable.Load(x), m = HalfTable.Load(x + 2);
                uint qh = *(uint*)(x + 4);
                for (int i = 0; i < 16; i++)
                {
                    y[i] = d * (x[8 + i] & 0xF | (int)((qh >> i) & 1) << 4) + m;
                    y[i + 16] = d * (x[8 + i] >> 4 | (int)((qh >> (i + 16)) & 1) << 4) + m;
                }
                break;
            }
            case GgmlType.Q2_K:
            {
                byte* scales = x, qs = x + 16;
                float d = HalfTable.Load(x + 80), dmin = HalfTable.Load(x + 82);
                for (int i = 0; i < 256; i++)
                {
                    int h = i >> 7, j = (i >> 5) & 3, l = i & 31;
                    int q = (qs[32 * h + l] >> (2 * j)) & 3;
                    int sc = scales[i >> 4];
                    y[i] = d * (sc & 0xF) * q - dmin * (sc >> 4);
                }
                break;
            }
            case GgmlType.Q3_K:
            {
                byte* hmask = x, qs = x + 32;
                Span<int> scales = stackalloc int[16];
                BlockFormats.Q3KScales(x + 96, scales);
                float d = HalfTable.Load(x + 108);
                for (int i = 0; i < 256; i++)
                {
                    int h = i >> 7, j = (i >> 5) & 3, l = i & 31;
                    int q = (qs[32 * h + l] >> (2 * j)) & 3;
                    int high = (hmask[l] >> (4 * h + j)) & 1;
                    y[i] = d * scales[i >> 4] * (q + 4 * high - 4);
                }
                break;
            }
            case GgmlType.Q4_K:
            case GgmlType.Q5_K:
            {
                bool five = type == GgmlType.Q5_K;
                float d = HalfTable.Load(x), dmin = HalfTable.Load(x + 2);
                byte* packed = x + 4;
                byte* qh = x + 16;
                byte* qs = five ? x + 48 : x + 16;
                for (int i = 0; i < 256; i++)
                {
                    int group = i >> 5, chunk = i >> 6, l = i & 31;
                    BlockFormats.ScaleMinK4(group, packed, out int sc, out int m);
                    int q = (group & 1) == 0 ? qs[32 * chunk + l] & 0xF : qs[32 * chunk + l] >> 4;
                    if (five)
                        q |= ((qh[l] >> group) & 1) << 4;
                    y[i] = d * sc * q - dmin * m;
                }
                break;
            }
            case GgmlType.Q6_K:
            {
                byte* ql = x, qh = x + 128;
                sbyte* scales = (sbyte*)(x + 192);
                float d = HalfTable.Load(x + 208);
                for (int i = 0; i < 256; i++)
                {
                    int h = i >> 7, j = (i >> 5) & 3, l = i & 31;
                    int low = ql[64 * h + 32 * (j & 1) + l];
                    low = j < 2 ? low & 0xF : low >> 4;
                    int high = (qh[32 * h + l] >> (2 * j)) & 3;
                    y[i] = d * scales[i >> 4] * ((low | high << 4) - 32);
                }
                break;
            }
            default:
                throw new SlmKitException($"{type} cannot be dequantized");
        }
    }
}
