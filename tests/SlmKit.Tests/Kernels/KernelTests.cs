using System.Runtime.Intrinsics;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Tests.Kernels;

/// <summary>Every kernel against a plain double-precision definition written here.</summary>
public sealed unsafe class KernelTests
{
    private static float[] RandomVector(Random random, int n, float scale = 1f)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++)
            v[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return v;
    }

    /// <summary>The bytes of <paramref name="w"/> as a weight tensor of <paramref name="type"/> (F32, F16 or BF16) stores them.</summary>
    private static byte[] Stored(GgmlType type, float[] w) => type switch
    {
        GgmlType.F32 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.AsSpan()).ToArray(),
        GgmlType.F16 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(Array.ConvertAll(w, v => (Half)v).AsSpan()).ToArray(),
        _ => System.Runtime.InteropServices.MemoryMarshal.AsBytes(Array.ConvertAll(w, Bf16.FromSingle).AsSpan()).ToArray(),
    };

    [Theory]
    [InlineData(GgmlType.F32, 1, 1, 1)]
    [InlineData(GgmlType.F32, 3, 17, 33)]
    [InlineData(GgmlType.F32, 7, 70, 129)]
    [InlineData(GgmlType.F16, 1, 40, 64)]
    [InlineData(GgmlType.F16, 5, 33, 71)]
    [InlineData(GgmlType.BF16, 1, 40, 64)]
    [InlineData(GgmlType.BF16, 4, 19, 100)]
    // Decoding (fewer than four tokens) with rows a whole number of 32 and 16 floats and with a tail; prefill with the
    // four-by-four tile over rows and tokens that do not divide by four, at both vector widths (16 and 8 floats).
    [InlineData(GgmlType.F16, 1, 37, 576)]
    [InlineData(GgmlType.F16, 2, 9, 48)]
    [InlineData(GgmlType.BF16, 3, 11, 600)]
    [InlineData(GgmlType.F16, 70, 21, 96)]
    [InlineData(GgmlType.F16, 9, 18, 40)]
    [InlineData(GgmlType.BF16, 13, 34, 64)]
    [InlineData(GgmlType.F32, 64, 35, 48)]
    [InlineData(GgmlType.F32, 6, 8, 24)]
    public void Matrix_multiply_matches_the_double_precision_definition(GgmlType type, int tokens, int rows, int cols)
    {
        var random = new Random(rows * 31 + cols);
        float[] w = RandomVector(random, rows * cols);
        float[] x = RandomVector(random, tokens * cols);
        byte[] stored = Stored(type, w);
        // The reference uses the weights as stored (after rounding to F16/BF16).
        float[] effective = new float[w.Length];
        fixed (byte* p = stored)
        {
            for (int r = 0; r < rows; r++)
                MatMul.WidenRow(p, type, cols, r, effective.AsSpan(r * cols, cols));
            var tensor = new WeightTensor("w", type, [rows, cols], p, stored.Length);
            var y = new float[tokens * rows];
            using var pool = new WorkerPool(2);
            MatMul.Multiply(pool, x, tokens, tensor, y);
            for (int t = 0; t < tokens; t++)
            {
                for (int r = 0; r < rows; r++)
                {
                    double expected = 0;
                    for (int k = 0; k < cols; k++)
                        expected += (double)x[t * cols + k] * effective[r * cols + k];
                    Assert.True(Math.Abs(expected - y[t * rows + r]) <= 1e-4 * Math.Max(1, Math.Abs(expected)), $"t={t} r={r}: {y[t * rows + r]} vs {expected}");
                }
            }
        }
    }

    [Theory]
    [InlineData(GgmlType.F32, 576)]
    [InlineData(GgmlType.F16, 576)]
    [InlineData(GgmlType.BF16, 576)]
    [InlineData(GgmlType.F16, 48)]  // a multiple of 16 but not of 32
    [InlineData(GgmlType.F16, 40)]  // a multiple of 8 only
    [InlineData(GgmlType.F32, 100)] // not a multiple of 8: vector part and scalar tail
    public void A_tokens_float_product_is_the_same_alone_and_in_a_batch(GgmlType type, int cols)
    {
        // Continuous batching must give a request exactly what it gets alone: the decode dots and the prefill tile sum
        // in one order.
        const int rows = 21, tokens = 9;
        var random = new Random(cols);
        float[] w = RandomVector(random, rows * cols);
        float[] x = RandomVector(random, tokens * cols);
        byte[] stored = Stored(type, w);
        fixed (byte* p = stored)
        {
            var tensor = new WeightTensor("w", type, [rows, cols], p, stored.Length);
            using var pool = new WorkerPool(2);
            var batch = new float[tokens * rows];
            MatMul.Multiply(pool, x, tokens, tensor, batch);
            var alone = new float[rows];
            for (int t = 0; t < tokens; t++)
            {
                MatMul.Multiply(pool, x.AsSpan(t * cols, cols), 1, tensor, alone);
                Assert.Equal(alone, batch.AsSpan(t * rows, rows).ToArray());
            }
        }
    }

    [Theory]
    [InlineData(128)]
    [InlineData(256)]
    [InlineData(512)]
    public void The_vector_half_conversion_equals_dotnets_for_every_half_including_subnormals_infinities_and_nans(int bits)
    {
        bool accelerated = bits switch { 512 => Vector512.IsHardwareAccelerated, 256 => Vector256.IsHardwareAccelerated, _ => Vector128.IsHardwareAccelerated };
        if (!accelerated)
            Assert.Skip($"this CPU has no accelerated {bits}-bit vectors");
        var halves = new ushort[65536];
        for (int i = 0; i < halves.Length; i++)
            halves[i] = (ushort)i;
        var floats = new float[halves.Length];
        FloatDot.HalvesToSingles(halves, floats, bits);
        for (int i = 0; i < halves.Length; i++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)i);
            if (float.IsNaN(expected))
                Assert.True(float.IsNaN(floats[i]), $"0x{i:X4}: {floats[i]} is not a NaN");
            else
                Assert.True(BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(floats[i]), $"0x{i:X4}: {floats[i]} vs {expected}");
        }
    }

    [Fact]
    public void Bf16_widening_is_exact_and_rounding_is_to_nearest_even()
    {
        var random = new Random(5);
        ushort[] raw = new ushort[37];
        for (int i = 0; i < raw.Length; i++)
            raw[i] = (ushort)random.Next(0, 0x7F80);
        float[] wide = new float[raw.Length];
        Bf16.ToSingle(raw, wide);
        for (int i = 0; i < raw.Length; i++)
        {
            Assert.Equal((uint)raw[i] << 16, BitConverter.SingleToUInt32Bits(wide[i]));
            Assert.Equal(raw[i], Bf16.FromSingle(wide[i]));
        }
        // 1 + 2^-8 is exactly halfway between two bfloat16 values: ties go to the even one (1.0).
        Assert.Equal(0x3F80, Bf16.FromSingle(1f + 1f / 256));
        Assert.Equal(0x3F82, Bf16.FromSingle(1f + 3f / 256));
    }

    [Fact]
    public void Rms_norm_matches_the_definition()
    {
        var random = new Random(1);
        float[] x = RandomVector(random, 67, 3), w = RandomVector(random, 67), y = new float[67];
        Normalization.RmsNorm(x, w, 1e-5f, y);
        double mean = 0;
        foreach (float v in x)
            mean += (double)v * v;
        double scale = 1 / Math.Sqrt(mean / x.Length + 1e-5);
        for (int i = 0; i < x.Length; i++)
            Assert.Equal(x[i] * scale * w[i], y[i], 1e-5);
    }

    [Fact]
    public void Layer_norm_matches_the_definition()
    {
        var random = new Random(2);
        float[] x = RandomVector(random, 50, 2), w = RandomVector(random, 50), b = RandomVector(random, 50), y = new float[50];
        Normalization.LayerNorm(x, w, b, 1e-5f, y);
        double mean = x.Average(v => (double)v);
        double variance = x.Average(v => (v - mean) * (v - mean));
        for (int i = 0; i < x.Length; i++)
            Assert.Equal((x[i] - mean) / Math.Sqrt(variance + 1e-5) * w[i] + b[i], y[i], 1e-5);
    }

    [Fact]
    public void Softmax_sums_to_one_and_survives_large_logits()
    {
        float[] v = [1000f, 999f, -1000f, 998f];
        Activations.Softmax(v);
        Assert.Equal(1.0, v.Sum(), 1e-6);
        double z = 1 + Math.Exp(-1) + Math.Exp(-2);
        Assert.Equal(1 / z, v[0], 1e-6);
        Assert.Equal(0, v[2], 1e-6);
    }

    [Fact]
    public void SwiGlu_is_silu_of_gate_times_up()
    {
        float[] gate = [-3f, -0.5f, 0f, 0.7f, 4f], up = [1f, 2f, 3f, -1f, 0.5f];
        float[] expected = gate.Select((g, i) => (float)(g / (1 + Math.Exp(-g)) * up[i])).ToArray();
        Activations.SwiGlu(gate, up);
        for (int i = 0; i < gate.Length; i++)
            Assert.Equal(expected[i], gate[i], 1e-6);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(1023)]
    [InlineData(2500)]
    public void Vectorised_swiglu_silu_and_softmax_match_double_precision_across_chunk_boundaries(int length)
    {
        var random = new Random(length);
        float[] gate = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 24 - 12)).ToArray();
        float[] up = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        double[] silu = gate.Select(g => g / (1 + Math.Exp(-(double)g))).ToArray();
        double max = gate.Max();
        double z = gate.Sum(g => Math.Exp(g - max));

        float[] swiglu = (float[])gate.Clone();
        Activations.SwiGlu(swiglu, up);
        float[] alone = (float[])gate.Clone();
        Activations.Apply(ActivationKind.Silu, alone);
        float[] softmax = (float[])gate.Clone();
        Activations.Softmax(softmax);
        for (int i = 0; i < length; i++)
        {
            Assert.Equal(silu[i] * up[i], swiglu[i], 1e-5 * (1 + Math.Abs(silu[i] * up[i])));
            Assert.Equal(silu[i], alone[i], 1e-5 * (1 + Math.Abs(silu[i])));
            Assert.Equal(Math.Exp(gate[i] - max) / z, softmax[i], 1e-6);
        }
    }

    [Theory]
    [InlineData(RopeLayout.Normal)]
    [InlineData(RopeLayout.NeoX)]
    public void Rope_rotates_the_pairs_its_layout_names_by_position_times_frequency(RopeLayout layout)
    {
        const int headDim = 8, heads = 2, position = 5;
        const float theta = 10000f;
        var rope = new RotaryEmbedding(headDim, headDim, theta, layout);
        var random = new Random(3);
        float[] v = RandomVector(random, heads * headDim), original = (float[])v.Clone();
        float[] cos = new float[headDim / 2], sin = new float[headDim / 2];
        rope.ComputeAngles(position, cos, sin);
        rope.Apply(v, heads, cos, sin);
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < headDim / 2; i++)
            {
                double angle = position * Math.Pow(theta, -2.0 * i / headDim);
                int a = layout == RopeLayout.Normal ? 2 * i : i;
                int b = layout == RopeLayout.Normal ? 2 * i + 1 : i + headDim / 2;
                double x0 = original[h * headDim + a], x1 = original[h * headDim + b];
                Assert.Equal(x0 * Math.Cos(angle) - x1 * Math.Sin(angle), v[h * headDim + a], 1e-5);
                Assert.Equal(x0 * Math.Sin(angle) + x1 * Math.Cos(angle), v[h * headDim + b], 1e-5);
            }
        }
    }

    [Theory]
    [InlineData(RopeLayout.Normal, 64, 64)]
    [InlineData(RopeLayout.Normal, 64, 8)]
    [InlineData(RopeLayout.Normal, 80, 20)]
    [InlineData(RopeLayout.NeoX, 64, 64)]
    [InlineData(RopeLayout.NeoX, 64, 32)]
    [InlineData(RopeLayout.NeoX, 96, 24)]
    public void Rope_gives_the_scalar_formula_bit_for_bit_whatever_the_vector_width(RopeLayout layout, int headDim, int rotaryDim)
    {
        const int heads = 3;
        var rope = new RotaryEmbedding(headDim, rotaryDim, 10000f, layout);
        var random = new Random(headDim + rotaryDim);
        float[] v = RandomVector(random, heads * headDim), original = (float[])v.Clone();
        float[] cos = new float[rotaryDim / 2], sin = new float[rotaryDim / 2];
        rope.ComputeAngles(37, cos, sin);
        rope.Apply(v, heads, cos, sin);
        int pairs = rotaryDim / 2;
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < pairs; i++)
            {
                int a = h * headDim + (layout == RopeLayout.Normal ? 2 * i : i);
                int b = h * headDim + (layout == RopeLayout.Normal ? 2 * i + 1 : i + pairs);
                float x0 = original[a], x1 = original[b];
                Assert.Equal(x0 * cos[i] - x1 * sin[i], v[a]);
                Assert.Equal(x0 * sin[i] + x1 * cos[i], v[b]);
            }
            for (int i = h * headDim + rotaryDim; i < (h + 1) * headDim; i++)
                Assert.Equal(original[i], v[i]); // dimensions past the rotary ones pass through
        }
    }

    [Fact]
    public void Rope_with_linear_scaling_equals_rope_at_the_divided_position()
    {
        var scaled = new RotaryEmbedding(16, 16, 10000f, RopeLayout.Normal, RopeScaling.Linear(4));
        var plain = new RotaryEmbedding(16, 16, 10000f, RopeLayout.Normal);
        float[] c1 = new float[8], s1 = new float[8], c2 = new float[8], s2 = new float[8];
        scaled.ComputeAngles(12, c1, s1);
        plain.ComputeAngles(3, c2, s2);
        Assert.Equal(c2, c1);
        Assert.Equal(s2, s1);
    }

    [Fact]
    public void Llama3_rope_scaling_keeps_high_frequencies_and_divides_low_ones()
    {
        // Original context 32, low/high frequency factors 1 and 4: wavelengths under 32/4 = 8 are kept,
        // those over 32/1 = 32 are divided by the factor, those between are blended.
        var scaled = new RotaryEmbedding(64, 64, 500000f, RopeLayout.NeoX, RopeScaling.Llama3(8, 1, 4, 32));
        var plain = new RotaryEmbedding(64, 64, 500000f, RopeLayout.NeoX);
        float[] c1 = new float[32], s1 = new float[32], c2 = new float[32], s2 = new float[32];
        scaled.ComputeAngles(1, c1, s1);
        plain.ComputeAngles(1, c2, s2);
        Assert.Equal(c2[0], c1[0]); // frequency 1, wavelength 2π < 8: unchanged
        double lowFrequency = Math.Pow(500000, -2.0 * 31 / 64);
        Assert.Equal(Math.Cos(lowFrequency / 8), c1[31], 1e-6);
    }

    private sealed class Recorder(int[] hits) : IParallelWork
    {
        public void Execute(int index) => Interlocked.Increment(ref hits[index]);
    }

    [Theory]
    [InlineData(2)] // the caller from the front, the worker from the back
    [InlineData(3)] // every thread in order
    public void Worker_pool_runs_every_index_exactly_once_across_many_regions(int threads)
    {
        using var pool = new WorkerPool(threads);
        for (int region = 0; region < 500; region++)
        {
            int[] hits = new int[region % 37 + 1];
            pool.For(hits.Length, new Recorder(hits));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    private sealed class ThreadRecorder(int[] threadIds) : IParallelWork
    {
        public void Execute(int index)
        {
            threadIds[index] = Environment.CurrentManagedThreadId;
            Thread.SpinWait(2000); // long enough that the worker joins in
        }
    }

    [Fact]
    public void With_two_threads_each_takes_consecutive_items_the_caller_from_the_front()
    {
        using var pool = new WorkerPool(2);
        int caller = Environment.CurrentManagedThreadId;
        for (int region = 0; region < 50; region++)
        {
            int[] threadIds = new int[64];
            pool.For(threadIds.Length, new ThreadRecorder(threadIds));
            int front = Array.FindIndex(threadIds, id => id != caller);
            if (front < 0)
                continue; // the worker did not get to any item this time
            Assert.All(threadIds[front..], id => Assert.NotEqual(caller, id));
        }
    }

    private sealed class Failing : IParallelWork
    {
        public void Execute(int index)
        {
            if (index == 7)
                throw new InvalidOperationException("boom");
        }
    }

    [Fact]
    public void Worker_pool_reports_a_failing_item_and_stays_usable()
    {
        using var pool = new WorkerPool(2);
        var error = Assert.Throws<AggregateException>(() => pool.For(20, new Failing()));
        Assert.IsType<InvalidOperationException>(error.InnerException);
        int[] hits = new int[10];
        pool.For(10, new Recorder(hits));
        Assert.All(hits, h => Assert.Equal(1, h));
    }
}
