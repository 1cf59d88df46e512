using System.Numerics;
using System.Runtime.Intrinsics;
using SlmKit.Training;

namespace SlmKit.Tests.Training;

/// <summary>Each kernel path of the training matrix multiply against the plain definition, for every operand layout.
/// The path travels as its name because <see cref="GemmPath"/> is internal and theory methods are public.</summary>
public sealed class GemmTests
{
    public static TheoryData<string, int, int, int, int, bool> Cases()
    {
        var data = new TheoryData<string, int, int, int, int, bool>();
        foreach (GemmPath path in new[] { GemmPath.Vector512, GemmPath.Vector256, GemmPath.Scalar })
        {
            foreach ((int m, int n, int k) in new[] { (1, 1, 1), (6, 32, 8), (7, 33, 5), (50, 70, 300), (13, 100, 600) })
            {
                data.Add(path.ToString(), m, n, k, 0, false); // A·B
                data.Add(path.ToString(), m, n, k, 1, true); // A·Bᵀ, accumulating (forward of a linear layer)
                data.Add(path.ToString(), m, n, k, 2, false); // Aᵀ·B (weight gradient)
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Float_matches_definition(string path, int m, int n, int k, int layout, bool accumulate) =>
        Check<float>(Enum.Parse<GemmPath>(path), m, n, k, layout, accumulate, 1e-5);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Double_matches_definition(string path, int m, int n, int k, int layout, bool accumulate) =>
        Check<double>(Enum.Parse<GemmPath>(path), m, n, k, layout, accumulate, 1e-13);

    [Fact]
    public void Thread_count_does_not_change_a_single_bit()
    {
        var rng = new Random(3);
        int m = 100, n = 300, k = 700;
        float[] a = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        float[] b = Enumerable.Range(0, k * n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var one = new float[m * n];
        var two = new float[m * n];
        Gemm<float>.Multiply(m, n, k, a, 0, k, 1, b, 0, n, 1, one, 0, n, false, threads: 1);
        Gemm<float>.Multiply(m, n, k, a, 0, k, 1, b, 0, n, 1, two, 0, n, false, threads: 2);
        Assert.Equal(one, two);
    }

    private static void Check<T>(GemmPath path, int m, int n, int k, int layout, bool accumulate, double tolerance)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (path == GemmPath.Vector512 && !(Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported))
            Assert.Skip("Vector512 is not accelerated on this machine");
        if (path == GemmPath.Vector256 && !(Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported))
            Assert.Skip("Vector256 is not accelerated on this machine");
        var rng = new Random(m * 1000 + n * 10 + k + layout);
        const int pad = 3; // operands start at an offset inside their arrays
        T[] a = Enumerable.Range(0, pad + m * k).Select(_ => T.CreateChecked(rng.NextDouble() - 0.5)).ToArray();
        T[] b = Enumerable.Range(0, pad + k * n).Select(_ => T.CreateChecked(rng.NextDouble() - 0.5)).ToArray();
        int ldc = n + 2;
        T[] c = Enumerable.Range(0, pad + m * ldc).Select(_ => T.CreateChecked(rng.NextDouble())).ToArray();
        T[] before = (T[])c.Clone();

        // layout 0: A [m,k], B [k,n]; 1: A [m,k], B stored [n,k]; 2: A stored [k,m], B [k,n].
        (int rsA, int csA) = layout == 2 ? (1, m) : (k, 1);
        (int rsB, int csB) = layout == 1 ? (1, k) : (n, 1);
        Gemm<T>.Multiply(m, n, k, a, pad, rsA, csA, b, pad, rsB, csB, c, pad, ldc, accumulate, threads: 2, path);

        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0, magnitude = 0;
                for (int p = 0; p < k; p++)
                {
                    double term = double.CreateChecked(a[pad + i * rsA + p * csA]) * double.CreateChecked(b[pad + p * rsB + j * csB]);
                    sum += term;
                    magnitude += Math.Abs(term);
                }
                double expected = (accumulate ? double.CreateChecked(before[pad + i * ldc + j]) : 0) + sum;
                double actual = double.CreateChecked(c[pad + i * ldc + j]);
                Assert.True(Math.Abs(actual - expected) <= tolerance * (magnitude + 1), $"C[{i},{j}] = {actual}, expected {expected}");
            }
            // The padding between rows of C is untouched.
            for (int j = n; j < ldc && pad + i * ldc + j < c.Length; j++)
                Assert.Equal(before[pad + i * ldc + j], c[pad + i * ldc + j]);
        }
    }
}
