using System.Runtime.CompilerServices;
using SlmKit.Tensors;

namespace SlmKit.Kernels.Quantization;

/// <summary>
/// Byte layouts of ggml's quantized blocks (little-endian, no padding), written down from the GGUF/ggml format
/// definition. "h" is an IEEE half, "value" is what element i of the block stands for.
/// <code>
/// Q8_0  (32 el, 34 B): h d; i8 qs[32]                         value = d·qs[i]
/// Q4_0  (32 el, 18 B): h d; u8 qs[16]                         value = d·(n(i) − 8);  n(i) = low nibble of qs[i] for i &lt; 16, high nibble of qs[i−16] otherwise
/// Q4_1  (32 el, 20 B): h d; h m; u8 qs[16]                    value = d·n(i) + m
/// Q5_0  (32 el, 22 B): h d; u8 qh[4]; u8 qs[16]               value = d·(n(i) + 16·bit i of qh − 16)
/// Q5_1  (32 el, 24 B): h d; h m; u8 qh[4]; u8 qs[16]          value = d·(n(i) + 16·bit i of qh) + m
/// Q2_K (256 el, 84 B): u8 scales[16]; u8 qs[64]; h d; h dmin  value = d·(scales[i/16] &amp; 15)·q2 − dmin·(scales[i/16] >> 4)
/// Q3_K (256 el,110 B): u8 hmask[32]; u8 qs[64]; u8 scales[12]; h d        value = d·(s6[i/16] − 32)·(q2 + 4·hbit − 4)
/// Q4_K (256 el,144 B): h d; h dmin; u8 scales[12]; u8 qs[128]             value = d·sc[i/32]·q4 − dmin·m[i/32]  (6-bit sc, m)
/// Q5_K (256 el,176 B): h d; h dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]  value = d·sc[i/32]·(q4 + 16·hbit) − dmin·m[i/32]
/// Q6_K (256 el,210 B): u8 ql[128]; u8 qh[64]; i8 scales[16]; h d         value = d·scales[i/16]·(q4 + 16·q2hi − 32)
/// </code>
/// In the K types element i = 128·h + 32·j + l (h the half, j the 32-group, l &lt; 32): Q2_K/Q3_K take 2 bits at shift
/// 2j of qs[32h + l] and Q3_K's high bit is bit 4h + j of hmask[l]; Q4_K/Q5_K take nibble (j odd) of
/// qs[32·(2h + j/2) + l] and Q5_K's high bit is bit 2·(2h + j/2) + (j &amp; 1) of qh[l]; Q6_K takes the low (j &lt; 2) or high
/// nibble of ql[64h + 32·(j &amp; 1) + l] and bits 2j..2j+1 of qh[32h + l].
/// </summary>
public static class BlockFormats
{
    /// <summary>Elements in a K-quant super-block.</summary>
    public const int SuperBlock = 256;

    /// <summary>True for the block-quantized types SlmKit computes with directly.</summary>
    public static bool IsQuantized(GgmlType type) => type is GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1
        or GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>True for the types whose activations are quantized in 256-element super-blocks (Q8_K-style).</summary>
    public static bool IsKQuant(GgmlType type) => type is GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>
    /// All eight 6-bit scales and minimums of a Q4_K/Q5_K super-block at once (byte j of <paramref name="scales"/> and
    /// <paramref name="mins"/> is sub-block j), unpacked with 32-bit masks instead of eight <see cref="ScaleMinK4"/> calls.
    /// </summary>
    public static unsafe void ScalesMinsK4(byte* packed, out ulong scales, out ulong mins)
    {
        uint u0 = Unsafe.ReadUnaligned<uint>(packed), u1 = Unsafe.ReadUnaligned<uint>(packed + 4), u2 = Unsafe.ReadUnaligned<uint>(packed + 8);
        // Sub-blocks 0–3 keep their six bits in bytes 0–3 (scales) and 4–7 (mins); sub-blocks 4–7 have four low bits in
        // bytes 8–11 (scale low nibble, min high nibble) and their top two bits in the spare top bits of bytes 0–7.
        uint scalesLow = u0 & 0x3F3F3F3F;
        uint minsLow = u1 & 0x3F3F3F3F;
        uint scalesHigh = (u2 & 0x0F0F0F0F) | (((u0 >> 6) & 0x03030303) << 4);
        uint minsHigh = ((u2 >> 4) & 0x0F0F0F0F) | (((u1 >> 6) & 0x03030303) << 4);
        scales = scalesLow | (ulong)scalesHigh << 32;
        mins = minsLow | (ulong)minsHigh << 32;
    }

    /// <summary>The 6-bit scale and min of sub-block <paramref name="j"/> (0..7) packed in 12 bytes, as Q4_K and Q5_K store them.</summary>
    public static unsafe void ScaleMinK4(int j, byte* packed, out int scale, out int min)
    {
        if (j < 4)
        {
            scale = packed[j] & 63;
            min = packed[j + 4] & 63;
        }
        else
        {
            scale = (packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4);
            min = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
        }
    }

    /// <summary>Q3_K's 16 signed 6-bit scales (already minus 32) from their 12 packed bytes.</summary>
    public static unsafe void Q3KScales(byte* packed, Span<int> scales)
    {
        for (int i = 0; i < 16; i++)
        {
            int low = i < 8 ? packed[i] & 0xF : packed[i - 8] >> 4;
            int high = (packed[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
            scales[i] = (low | (high << 4)) - 32;
        }
    }
}
