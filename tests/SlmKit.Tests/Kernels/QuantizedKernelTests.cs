using System.Buffers.Binary;
using SlmKit.Kernels;
using SlmKit.Kernels.Quantization;
using SlmKit.Tensors;

namespace SlmKit.Tests.Kernels;

/// <summary>
/// Quantized blocks: dequantization against blocks packed here by hand from the format definition, every SIMD dot
/// product path against the scalar one on random blocks (odd block counts exercise the tails), the scalar integer dot
/// against a double-precision dot of the dequantized values, and the matrix multiply against dequantized weights.
/// </summary>
public sealed unsafe class QuantizedKernelTests
{
    public static readonly GgmlType[] Types =
        [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];

    public static TheoryData<GgmlType> AllTypes => new(Types);

    public static TheoryData<GgmlType, QuantizedKernelPath> TypesAndPaths()
    {
        var data = new TheoryData<GgmlType, QuantizedKernelPath>();
        foreach (var type in Types)
        {
            foreach (var path in Enum.GetValues<QuantizedKernelPath>())
            {
                if (path != QuantizedKernelPath.Scalar)
                    data.Add(type, path);
            }
        }
        return data;
    }

    private static ushort H(float v) => BitConverter.HalfToUInt16Bits((Half)v);

    private static void PutHalf(byte[] b, int at, float v) => BitConverter.TryWriteBytes(b.AsSpan(at, 2), H(v));

    private static float[] Dequantize(GgmlType type, byte[] bytes, int n)
    {
        var y = new float[n];
        fixed (byte* p = bytes)
            Dequantization.Row(type, p, y);
        return y;
    }

    [Fact]
    public void Q8_0_block_is_scale_times_signed_bytes()
    {
        var b = new byte[34];
        PutHalf(b, 0, 0.25f);
        for (int i = 0; i < 32; i++)
            b[2 + i] = (byte)(sbyte)(i * 8 - 128);
        var y = Dequantize(GgmlType.Q8_0, b, 32);
        for (int i = 0; i < 32; i++)
            Assert.Equal(0.25f * (i * 8 - 128), y[i]);
    }

    [Fact]
    public void Q4_0_and_Q4_1_blocks_put_low_nibbles_first()
    {
        var q = new int[32];
        for (int i = 0; i < 32; i++)
            q[i] = (i * 7 + 3) % 16;
        var b0 = new byte[18];
        PutHalf(b0, 0, 0.5f);
        var b1 = new byte[20];
        PutHalf(b1, 0, 0.5f);
        PutHalf(b1, 2, -3f);
        for (int i = 0; i < 16; i++)
        {
            b0[2 + i] = (byte)(q[i] | q[i + 16] << 4);
            b1[4 + i] = (byte)(q[i] | q[i + 16] << 4);
        }
        var y0 = Dequantize(GgmlType.Q4_0, b0, 32);
        var y1 = Dequantize(GgmlType.Q4_1, b1, 32);
        for (int i = 0; i < 32; i++)
        {
            Assert.Equal(0.5f * (q[i] - 8), y0[i]);
            Assert.Equal(0.5f * q[i] - 3f, y1[i]);
        }
    }

    [Fact]
    public void Q5_0_and_Q5_1_blocks_take_the_fifth_bit_from_qh()
    {
        var q = new int[32];
        for (int i = 0; i < 32; i++)
            q[i] = (i * 13 + 5) % 32;
        uint qh = 0;
        for (int i = 0; i < 32; i++)
            qh |= (uint)(q[i] >> 4) << i;
        var b0 = new byte[22];
        PutHalf(b0, 0, 2f);
        BitConverter.TryWriteBytes(b0.AsSpan(2, 4), qh);
        var b1 = new byte[24];
        PutHalf(b1, 0, 2f);
        PutHalf(b1, 2, 1.5f);
        BitConverter.TryWriteBytes(b1.AsSpan(4, 4), qh);
        for (int i = 0; i < 16; i++)
        {
            b0[6 + i] = (byte)((q[i] & 15) | (q[i + 16] & 15) << 4);
            b1[8 + i] = (byte)((q[i] & 15) | (q[i + 16] & 15) << 4);
        }
        var y0 = Dequantize(GgmlType.Q5_0, b0, 32);
        var y1 = Dequantize(GgmlType.Q5_1, b1, 32);
        for (int i = 0; i < 32; i++)
        {
            Assert.Equal(2f * (q[i] - 16), y0[i]);
            Assert.Equal(2f * q[i] + 1.5f, y1[i]);
        }
    }

    // K-quant packers, element by element from the layout in BlockFormats (i = 128h + 32j + l).
    private static byte[] PackQ2K(int[] q, int[] scales, int[] mins, float d, float dmin)
    {
        var b = new byte[84];
        for (int g = 0; g < 16; g++)
            b[g] = (byte)(scales[g] | mins[g] << 4);
        for (int i = 0; i < 256; i++)
        {
            int h = i / 128, j = i / 32 % 4, l = i % 32;
            b[16 + 32 * h + l] |= (byte)(q[i] << (2 * j));
        }
        PutHalf(b, 80, d);
        PutHalf(b, 82, dmin);
        return b;
    }

    private static byte[] PackQ3K(int[] q, int[] scales, float d)
    {
        var b = new byte[110];
        for (int i = 0; i < 256; i++)
        {
            int h = i / 128, j = i / 32 % 4, l = i % 32;
            int u = q[i] + 4;
            b[32 + 32 * h + l] |= (byte)((u & 3) << (2 * j));
            if (u >= 4)
                b[l] |= (byte)(1 << (4 * h + j));
        }
        for (int g = 0; g < 16; g++)
        {
            int s = scales[g] + 32;
            if (g < 8)
                b[96 + g] |= (byte)(s & 15);
            else
                b[96 + g - 8] |= (byte)((s & 15) << 4);
            b[96 + 8 + g % 4] |= (byte)((s >> 4) << (2 * (g / 4)));
        }
        PutHalf(b, 108, d);
        return b;
    }

    private static void PackScaleMin(byte[] b, int at, int[] sc, int[] m)
    {
        for (int g = 0; g < 8; g++)
        {
            if (g < 4)
            {
                b[at + g] = (byte)(sc[g] | (sc[g + 4] >> 4) << 6);
                b[at + g + 4] = (byte)(m[g] | (m[g + 4] >> 4) << 6);
            }
            else
            {
                b[at + g + 4] = (byte)((sc[g] & 15) | (m[g] & 15) << 4);
            }
        }
    }

    private static byte[] PackQ45K(int[] q, int[] sc, int[] m, float d, float dmin, bool five)
    {
        var b = new byte[five ? 176 : 144];
        PutHalf(b, 0, d);
        PutHalf(b, 2, dmin);
        PackScaleMin(b, 4, sc, m);
        int qs = five ? 48 : 16;
        for (int i = 0; i < 256; i++)
        {
            int g = i / 32, l = i % 32;
            b[qs + 32 * (g / 2) + l] |= (byte)((q[i] & 15) << (4 * (g & 1)));
            if (five && q[i] >= 16)
                b[16 + l] |= (byte)(1 << g);
        }
        return b;
    }

    private static byte[] PackQ6K(int[] q, int[] scales, float d)
    {
        var b = new byte[210];
        for (int i = 0; i < 256; i++)
        {
            int h = i / 128, j = i / 32 % 4, l = i % 32;
            int u = q[i] + 32;
            b[64 * h + 32 * (j & 1) + l] |= (byte)((u & 15) << (j < 2 ? 0 : 4));
            b[128 + 32 * h + l] |= (byte)((u >> 4) << (2 * j));
        }
        for (int g = 0; g < 16; g++)
            b[192 + g] = (byte)(sbyte)scales[g];
        PutHalf(b, 208, d);
        return b;
    }

    [Fact]
    public void K_quant_blocks_dequantize_as_the_format_defines()
    {
        var r = new Random(17);
        int[] Ints(int n, int lo, int hi)
        {
            var v = new int[n];
            for (int i = 0; i < n; i++)
                v[i] = r.Next(lo, hi);
            return v;
        }
        const float d = 0.125f, dmin = 0.0625f;

        var q2 = Ints(256, 0, 4);
        var s2 = Ints(16, 0, 16);
        var m2 = Ints(16, 0, 16);
        var y = Dequantize(GgmlType.Q2_K, PackQ2K(q2, s2, m2, d, dmin), 256);
        for (int i = 0; i < 256; i++)
            Assert.Equal(d * s2[i / 16] * q2[i] - dmin * m2[i / 16], y[i]);

        var q3 = Ints(256, -4, 4);
        var s3 = Ints(16, -32, 32);
        y = Dequantize(GgmlType.Q3_K, PackQ3K(q3, s3, d), 256);
        for (int i = 0; i < 256; i++)
            Assert.Equal(d * s3[i / 16] * q3[i], y[i]);

        var sc = Ints(8, 0, 64);
        var m = Ints(8, 0, 64);
        var q4 = Ints(256, 0, 16);
        y = Dequantize(GgmlType.Q4_K, PackQ45K(q4, sc, m, d, dmin, five: false), 256);
        for (int i = 0; i < 256; i++)
            Assert.Equal(d * sc[i / 32] * q4[i] - dmin * m[i / 32], y[i]);

        var q5 = Ints(256, 0, 32);
        y = Dequantize(GgmlType.Q5_K, PackQ45K(q5, sc, m, d, dmin, five: true), 256);
        for (int i = 0; i < 256; i++)
            Assert.Equal(d * sc[i / 32] * q5[i] - dmin * m[i / 32], y[i]);

        var q6 = Ints(256, -32, 32);
        var s6 = Ints(16, -128, 128);
        y = Dequantize(GgmlType.Q6_K, PackQ6K(q6, s6, d), 256);
        for (int i = 0; i < 256; i++)
            Assert.Equal(d * s6[i / 16] * q6[i], y[i]);
    }

    /// <summary>Random bytes for the quants, sane random halves for the scales.</summary>
    internal static byte[] RandomBlocks(GgmlType type, int blocks, Random random)
    {
        GgmlTypeInfo.TryGetBlockLayout(type, out _, out int size);
        var bytes = new byte[blocks * size];
        random.NextBytes(bytes);
        int[] halves = type switch
        {
            GgmlType.Q8_0 or GgmlType.Q4_0 => [0],
            GgmlType.Q4_1 => [0, 2],
            GgmlType.Q5_0 => [0],
            GgmlType.Q5_1 => [0, 2],
            GgmlType.Q2_K => [80, 82],
            GgmlType.Q3_K => [108],
            GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
            GgmlType.Q6_K => [208],
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
        for (int b = 0; b < blocks; b++)
        {
            foreach (int at in halves)
                PutHalf(bytes, b * size + at, (float)(random.NextDouble() * 2 - 1) * 0.05f);
        }
        return bytes;
    }

    private static float[] RandomFloats(int n, Random random, float scale = 1f)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++)
            v[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return v;
    }

    [Theory]
    [MemberData(nameof(TypesAndPaths))]
    public void Every_vector_path_equals_the_scalar_path_on_random_blocks(GgmlType type, QuantizedKernelPath path)
    {
        if (!QuantizedDot.IsAvailable(type, path))
            Assert.Skip($"no {path} kernel for {type}: this CPU lacks the instructions of that path");
        GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out _);
        var random = new Random((int)type * 100 + (int)path);
        foreach (int blocks in new[] { 1, 2, 3, 5, 7, 18, 33 })
        {
            int n = blocks * blockSize;
            byte[] w = RandomBlocks(type, blocks, random);
            using var activations = new QuantizedActivations();
            activations.Quantize(RandomFloats(n, random), 1, n, BlockFormats.IsKQuant(type));
            float[] deq = Dequantize(type, w, n);
            double bound = 0;
            fixed (byte* p = w)
            {
                var row = activations.Row(0);
                for (int i = 0; i < n; i++)
                {
                    double scale = BlockFormats.IsKQuant(type) ? row.Scales[i / 256] : row.Scales[i / 32];
                    bound += Math.Abs(deq[i] * row.Quants[i] * scale);
                }
                float expected = QuantizedDot.Dot(type, QuantizedKernelPath.Scalar, p, row, blocks);
                float actual = QuantizedDot.Dot(type, path, p, row, blocks);
                Assert.True(Math.Abs(expected - actual) <= 1e-5 * bound + 1e-6, $"{type} {path} blocks={blocks}: {actual} vs scalar {expected} (bound {bound})");
            }
        }
    }

    [Theory]
    [InlineData(18, 19)] // two groups of eight rows and a tail of three
    [InlineData(30, 8)]
    [InlineData(5, 11)] // an odd block count: every row through the single-row kernel
    [InlineData(2, 3)]
    public void The_eight_row_Q8_0_decode_kernel_equals_the_scalar_dot_on_every_row(int blocks, int rows)
    {
        if (!Avx512Dot.IsSupported)
            Assert.Skip("no AVX-512 on this CPU: the eight-row Q8_0 kernel is not used here");
        var random = new Random(blocks * 100 + rows);
        int n = blocks * 32, rowBytes = blocks * 34;
        byte[] w = RandomBlocks(GgmlType.Q8_0, blocks * rows, random);
        using var activations = new QuantizedActivations();
        activations.Quantize(RandomFloats(n, random), 1, n, superBlocks: false);
        float[] deq = Dequantize(GgmlType.Q8_0, w, n * rows);
        var y = new float[rows];
        fixed (byte* p = w)
        fixed (float* py = y)
        {
            var row = activations.Row(0);
            Avx512Dot.Q8_0Rows(p, rowBytes, row, blocks, py, rows);
            for (int r = 0; r < rows; r++)
            {
                double bound = 0;
                for (int i = 0; i < n; i++)
                    bound += Math.Abs(deq[r * n + i] * row.Quants[i] * row.Scales[i / 32]);
                float expected = QuantizedDot.Dot(GgmlType.Q8_0, QuantizedKernelPath.Scalar, p + r * rowBytes, row, blocks);
                Assert.True(Math.Abs(expected - y[r]) <= 1e-5 * bound + 1e-6, $"row {r}: {y[r]} vs scalar {expected} (bound {bound})");
            }
        }
    }

    /// <summary>Each type with the two AVX2 paths, the ones the prefill tiles exist for.</summary>
    private static TheoryData<GgmlType, QuantizedKernelPath> WithAvx2Paths(params GgmlType[] types)
    {
        var data = new TheoryData<GgmlType, QuantizedKernelPath>();
        foreach (var type in types)
        {
            data.Add(type, QuantizedKernelPath.Vector256);
            data.Add(type, QuantizedKernelPath.Vector256Vnni);
        }
        return data;
    }

    public static TheoryData<GgmlType, QuantizedKernelPath> RowTilesAndPaths()
    {
        var data = WithAvx2Paths(GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1);
        // Q8_0's eight-row tile exists on the VNNI path only: its quants go in as unsigned (+128), and 255 · 127 pairs
        // would saturate the 16-bit sums of plain AVX2's vpmaddubsw.
        data.Add(GgmlType.Q8_0, QuantizedKernelPath.Vector256Vnni);
        foreach (var type in (GgmlType[])[GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1])
            data.Add(type, QuantizedKernelPath.Vector512);
        return data;
    }

    [Theory]
    [MemberData(nameof(RowTilesAndPaths))]
    public void A_row_prefill_tile_equals_the_scalar_dots_for_every_token_count(GgmlType type, QuantizedKernelPath path)
    {
        int rows = RowTileRowsOrSkip(type, path);
        GgmlTypeInfo.TryGetBlockLayout(type, out _, out int blockBytes);
        var random = new Random((int)type * 37 + (int)path);
        foreach (int blocks in new[] { 1, 2, 3, 5, 7, 18, 33, 8, 15 })
        {
            int n = blocks * 32;
            // One row and one token more than the tile reads on each side: it reads rows 1..rows and tokens from 1, so
            // what is around them must not leak in. Token counts cover 1…64 across the block counts.
            int tokens = blocks * 7 % 64 + 1;
            byte[] w = RandomBlocks(type, (rows + 1) * blocks, random);
            using var activations = new QuantizedActivations();
            activations.Quantize(RandomFloats((tokens + 2) * n, random), tokens + 2, n, superBlocks: false);
            AssertRowTileEqualsScalar(type, path, rows, w, activations, blocks, tokens);
        }
    }

    [Theory]
    [MemberData(nameof(RowTilesAndPaths))]
    public void A_row_prefill_tile_does_not_saturate_at_the_largest_quants_and_activations(GgmlType type, QuantizedKernelPath path)
    {
        // Every quant at its maximum and every activation at ±127: the largest sums the tiles' 16-bit lanes see.
        int rows = RowTileRowsOrSkip(type, path);
        GgmlTypeInfo.TryGetBlockLayout(type, out _, out int blockBytes);
        const int blocks = 3, tokens = 2;
        // Every quant bit set (Q8_0: +127), scales and minimums 1.0.
        var w = new byte[(rows + 1) * blocks * blockBytes];
        Array.Fill(w, type == GgmlType.Q8_0 ? (byte)0x7F : (byte)0xFF);
        int halves = type is GgmlType.Q4_1 or GgmlType.Q5_1 ? 2 : 1;
        for (int b = 0; b < w.Length / blockBytes; b++)
        {
            for (int h = 0; h < halves; h++)
                BinaryPrimitives.WriteUInt16LittleEndian(w.AsSpan(b * blockBytes + 2 * h), BitConverter.HalfToUInt16Bits((Half)1f));
        }
        foreach (float sign in new[] { 1f, -1f })
        {
            var x = new float[(tokens + 2) * blocks * 32];
            Array.Fill(x, sign * 3f);
            using var activations = new QuantizedActivations();
            activations.Quantize(x, tokens + 2, blocks * 32, superBlocks: false);
            AssertRowTileEqualsScalar(type, path, rows, w, activations, blocks, tokens);
        }
    }

    private static int RowTileRowsOrSkip(GgmlType type, QuantizedKernelPath path)
    {
        int rows = QuantizedDot.RowTileRows(type, path);
        if (rows == 0)
            Assert.Skip($"this CPU lacks the instructions of the {path} path");
        return rows;
    }

    private static void AssertRowTileEqualsScalar(GgmlType type, QuantizedKernelPath path, int rows, byte[] w, QuantizedActivations activations, int blocks, int tokens)
    {
        GgmlTypeInfo.TryGetBlockLayout(type, out _, out int blockBytes);
        int n = blocks * 32;
        long rowBytes = (long)blocks * blockBytes;
        var results = new float[rows * tokens];
        fixed (byte* p = w)
        {
            QuantizedDot.DotRows(type, path, p + rowBytes, rowBytes, activations.Row(1), blocks, tokens, results);
            for (int i = 0; i < rows; i++)
            {
                byte* row = p + (1 + i) * rowBytes;
                float[] deq = Dequantize(type, w.AsSpan((int)((1 + i) * rowBytes), (int)rowBytes).ToArray(), n);
                for (int k = 0; k < tokens; k++)
                {
                    var activation = activations.Row(1 + k);
                    double bound = 0;
                    for (int j = 0; j < n; j++)
                        bound += Math.Abs(deq[j] * activation.Quants[j] * activation.Scales[j / 32]);
                    float expected = QuantizedDot.Dot(type, QuantizedKernelPath.Scalar, row, activation, blocks);
                    Assert.True(Math.Abs(expected - results[k * rows + i]) <= 1e-5 * bound + 1e-6,
                        $"{type} {path} blocks={blocks} row {i} token {k}: {results[k * rows + i]} vs scalar {expected} (bound {bound})");
                }
            }
        }
    }

    [Fact]
    public void Unpacking_all_K4_scales_at_once_equals_unpacking_each_sub_block()
    {
        var random = new Random(12);
        var packed = new byte[12];
        for (int trial = 0; trial < 1000; trial++)
        {
            random.NextBytes(packed);
            fixed (byte* p = packed)
            {
                BlockFormats.ScalesMinsK4(p, out ulong scales, out ulong mins);
                for (int j = 0; j < 8; j++)
                {
                    BlockFormats.ScaleMinK4(j, p, out int scale, out int min);
                    Assert.Equal(scale, (int)(byte)(scales >> (8 * j)));
                    Assert.Equal(min, (int)(byte)(mins >> (8 * j)));
                }
            }
        }
    }

    public static TheoryData<GgmlType, QuantizedKernelPath> TilesAndPaths() =>
        WithAvx2Paths(GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q6_K);

    [Theory]
    [MemberData(nameof(TilesAndPaths))]
    public void A_four_token_prefill_tile_equals_four_scalar_dots(GgmlType type, QuantizedKernelPath path)
    {
        if (QuantizedDot.TilePointer(type, path) == null)
            Assert.Skip($"this CPU lacks the instructions of the {path} path");
        var random = new Random((int)type * 31 + (int)path);
        GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out _);
        bool super = BlockFormats.IsKQuant(type);
        foreach (int blocks in new[] { 1, 2, 3, 18, 33 })
        {
            int n = blocks * blockSize;
            byte[] w = RandomBlocks(type, blocks, random);
            using var activations = new QuantizedActivations();
            // Six tokens: the tile reads rows 1..4, so the rows around it must not leak in.
            activations.Quantize(RandomFloats(6 * n, random), 6, n, super);
            var results = new float[4];
            fixed (byte* p = w)
            {
                QuantizedDot.Dot4(type, path, p, activations.Row(1), blocks, results);
                for (int k = 0; k < 4; k++)
                {
                    var row = activations.Row(1 + k);
                    double bound = 0;
                    float[] deq = Dequantize(type, w, n);
                    for (int i = 0; i < n; i++)
                        bound += Math.Abs(deq[i] * row.Quants[i] * row.Scales[i / (super ? 256 : 32)]);
                    float expected = QuantizedDot.Dot(type, QuantizedKernelPath.Scalar, p, row, blocks);
                    Assert.True(Math.Abs(expected - results[k]) <= 1e-5 * bound + 1e-6,
                        $"{type} {path} blocks={blocks} token {k}: {results[k]} vs scalar {expected} (bound {bound})");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(AllTypes))]
    public void Scalar_integer_dot_equals_the_dot_of_the_dequantized_values(GgmlType type)
    {
        GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out _);
        var random = new Random((int)type);
        int blocks = 5, n = blocks * blockSize;
        byte[] w = RandomBlocks(type, blocks, random);
        using var activations = new QuantizedActivations();
        activations.Quantize(RandomFloats(n, random), 1, n, BlockFormats.IsKQuant(type));
        float[] deq = Dequantize(type, w, n);
        var row = activations.Row(0);
        double expected = 0, bound = 0;
        for (int i = 0; i < n; i++)
        {
            double a = row.Quants[i] * (double)(BlockFormats.IsKQuant(type) ? row.Scales[i / 256] : row.Scales[i / 32]);
            expected += deq[i] * a;
            bound += Math.Abs(deq[i] * a);
        }
        fixed (byte* p = w)
        {
            float actual = QuantizedDot.Dot(type, QuantizedKernelPath.Scalar, p, row, blocks);
            Assert.True(Math.Abs(expected - actual) <= 1e-5 * bound, $"{type}: {actual} vs {expected}");
        }
    }

    [Theory]
    [InlineData(16, false)]
    [InlineData(17, false)]
    [InlineData(64, false)]
    [InlineData(19, true)]
    public void A_batch_quantized_across_the_pool_equals_one_quantized_on_one_thread(int tokens, bool superBlocks)
    {
        var random = new Random(tokens);
        int cols = superBlocks ? 512 : 96;
        float[] x = RandomFloats(tokens * cols, random);
        using var alone = new QuantizedActivations();
        using var spread = new QuantizedActivations();
        using var pool = new WorkerPool(2);
        alone.Quantize(x, tokens, cols, superBlocks);
        spread.Quantize(pool, x, tokens, cols, superBlocks);
        int blocks = cols / (superBlocks ? 256 : 32);
        for (int t = 0; t < tokens; t++)
        {
            ActivationRow a = alone.Row(t), b = spread.Row(t);
            Assert.Equal(new ReadOnlySpan<sbyte>(a.Quants, cols).ToArray(), new ReadOnlySpan<sbyte>(b.Quants, cols).ToArray());
            Assert.Equal(new ReadOnlySpan<float>(a.Scales, blocks).ToArray(), new ReadOnlySpan<float>(b.Scales, blocks).ToArray());
            if (superBlocks)
                Assert.Equal(new ReadOnlySpan<short>(a.Sums16, cols / 16).ToArray(), new ReadOnlySpan<short>(b.Sums16, cols / 16).ToArray());
            else
            {
                Assert.Equal(new ReadOnlySpan<int>(a.Sums, blocks).ToArray(), new ReadOnlySpan<int>(b.Sums, blocks).ToArray());
                Assert.Equal(new ReadOnlySpan<float>(a.ScaledSums, blocks).ToArray(), new ReadOnlySpan<float>(b.ScaledSums, blocks).ToArray());
            }
        }
    }

    [Fact]
    public void Activations_round_to_the_nearest_step_and_keep_their_sums()
    {
        var random = new Random(3);
        foreach (bool super in new[] { false, true })
        {
            int block = super ? 256 : 32, tokens = 3, cols = block * 3;
            float[] x = RandomFloats(tokens * cols, random, 4f);
            x[5] = 0;
            using var activations = new QuantizedActivations();
            activations.Quantize(x, tokens, cols, super);
            for (int t = 0; t < tokens; t++)
            {
                var row = activations.Row(t);
                for (int b = 0; b < cols / block; b++)
                {
                    float d = row.Scales[b];
                    int sum = 0;
                    for (int i = b * block; i < (b + 1) * block; i++)
                    {
                        Assert.True(Math.Abs(x[t * cols + i] - row.Quants[i] * d) <= d * 0.5001f);
                        Assert.InRange(row.Quants[i], -127, 127);
                        sum += row.Quants[i];
                    }
                    if (super)
                    {
                        for (int g = 0; g < 16; g++)
                        {
                            int s16 = 0;
                            for (int i = 0; i < 16; i++)
                                s16 += row.Quants[b * 256 + g * 16 + i];
                            Assert.Equal(s16, row.Sums16[b * 16 + g]);
                        }
                    }
                    else
                    {
                        Assert.Equal(d * sum, row.ScaledSums[b], 1e-4f);
                        Assert.Equal(sum, row.Sums[b]);
                    }
                }
            }
        }
    }

    [Fact]
    public void Activation_blocks_of_32_are_quantized_exactly_as_the_definition_says()
    {
        // d = max|x| / 127, q = round-half-even(x · 127 / max|x|), whatever path the CPU takes. Blocks: random, all zero,
        // one value only, ties at x·id = k + 0.5 (which must go to the even k), and values at ±max.
        var random = new Random(11);
        var blocks = new List<float[]>();
        for (int i = 0; i < 40; i++)
            blocks.Add(RandomFloats(32, random, (float)Math.Pow(10, random.Next(-6, 4))));
        blocks.Add(new float[32]);
        var single = new float[32];
        single[17] = -3.5f;
        blocks.Add(single);
        var ties = new float[32];
        ties[0] = 127f; // id = 1: every other value is its own quant times 1
        for (int i = 1; i < 32; i++)
            ties[i] = (i % 2 == 0 ? 1 : -1) * (i + 0.5f);
        blocks.Add(ties);
        float[] x = blocks.SelectMany(b => b).ToArray();

        using var activations = new QuantizedActivations();
        activations.Quantize(x, 1, x.Length, superBlocks: false);
        var row = activations.Row(0);
        for (int b = 0; b < blocks.Count; b++)
        {
            float amax = blocks[b].Max(MathF.Abs), id = amax != 0 ? 127f / amax : 0f;
            Assert.Equal(amax / 127f, row.Scales[b]);
            int sum = 0;
            for (int i = 0; i < 32; i++)
            {
                int expected = (int)MathF.Round(blocks[b][i] * id, MidpointRounding.ToEven);
                Assert.Equal(expected, row.Quants[32 * b + i]);
                sum += expected;
            }
            Assert.Equal(sum, row.Sums[b]);
        }
        Assert.Equal(new sbyte[] { 127, -2, 2, -4, 4 }, new ReadOnlySpan<sbyte>(row.Quants + 32 * (blocks.Count - 1), 5).ToArray());
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 2, 1)]
    [InlineData(GgmlType.Q8_0, 2, 2)]
    [InlineData(GgmlType.Q4_0, 3, 1)]
    [InlineData(GgmlType.Q4_K, 2, 3)]
    public void Decoding_gives_the_same_bits_on_any_number_of_threads_and_wherever_the_rows_are_split(GgmlType type, int threads, int tokens)
    {
        // Each output row is one kernel call whichever thread makes it, so a multi-threaded decode step must equal the
        // single-threaded one exactly (three matrices in one region, ranges that do not divide evenly). Two threads
        // split the region's rows where their measured speeds put it (DecodeBalance): besides the learnt split, the
        // test forces splits inside the first, second and third matrix (of 1610 rows: 0.2, 0.65, 0.8).
        GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out _);
        var random = new Random((int)type + tokens);
        int cols = blockSize * 4;
        int[] rows = [1003, 77, 530];
        var weights = rows.Select(r => RandomBlocks(type, r * cols / blockSize, random)).ToArray();
        float[] x = RandomFloats(tokens * cols, random);
        using var single = new WorkerPool(1);
        using var pool = new WorkerPool(threads);
        double?[] shares = threads == 2 ? [null, DecodeBalance.MinShare, 0.5, 0.65, DecodeBalance.MaxShare] : [null];
        fixed (byte* p0 = weights[0])
        fixed (byte* p1 = weights[1])
        fixed (byte* p2 = weights[2])
        {
            var tensors = new[] { new WeightTensor("a", type, [rows[0], cols], p0, weights[0].Length),
                new WeightTensor("b", type, [rows[1], cols], p1, weights[1].Length), new WeightTensor("c", type, [rows[2], cols], p2, weights[2].Length) };
            var expected = rows.Select(r => new float[tokens * r]).ToArray();
            MatMul.MultiplyShared(single, x, tokens, tensors[0], expected[0], tensors[1], expected[1], tensors[2], expected[2]);
            foreach (double? share in shares)
            {
                for (int repeat = 0; repeat < (share is null ? 200 : 1); repeat++)
                {
                    if (share is double forced)
                        pool.Balance.For(tensors[0]).FrontShare = forced;
                    var y = rows.Select(r => new float[tokens * r]).ToArray();
                    MatMul.MultiplyShared(pool, x, tokens, tensors[0], y[0], tensors[1], y[1], tensors[2], y[2]);
                    for (int m = 0; m < 3; m++)
                        Assert.Equal(expected[m], y[m]);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(AllTypes))]
    public void Matrix_multiply_on_quantized_weights_matches_the_dequantized_weights(GgmlType type)
    {
        GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out _);
        var random = new Random((int)type + 1000);
        int rows = 37, cols = blockSize * 3, tokens = 3;
        byte[] w = RandomBlocks(type, rows * cols / blockSize, random);
        float[] x = RandomFloats(tokens * cols, random);
        float[] deq = Dequantize(type, w, rows * cols);
        var y = new float[tokens * rows];
        using var pool = new WorkerPool(2);
        fixed (byte* p = w)
        {
            var tensor = new WeightTensor("w", type, [rows, cols], p, w.Length);
            MatMul.Multiply(pool, x, tokens, tensor, y);
            var widened = new float[cols];
            MatMul.WidenRow(p, type, cols, 5, widened);
            Assert.Equal(deq.AsSpan(5 * cols, cols).ToArray(), widened);
        }
        for (int t = 0; t < tokens; t++)
        {
            for (int r = 0; r < rows; r++)
            {
                double expected = 0, bound = 0;
                for (int k = 0; k < cols; k++)
                {
                    expected += (double)x[t * cols + k] * deq[r * cols + k];
                    bound += Math.Abs((double)x[t * cols + k] * deq[r * cols + k]);
                }
                // Activations quantized to 8 bits: each term is off by at most half a step (1/254 of the block's max).
                Assert.True(Math.Abs(expected - y[t * rows + r]) <= 0.02 * bound + 1e-6, $"{type} t={t} r={r}: {y[t * rows + r]} vs {expected}");
            }
        }
    }
}
