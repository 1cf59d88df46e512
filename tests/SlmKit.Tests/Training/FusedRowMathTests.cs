using SlmKit.Training;

namespace SlmKit.Tests.Training;

/// <summary>The float vector paths of the fused row loops against their double-precision definitions.</summary>
public sealed class FusedRowMathTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(256)]
    [InlineData(1000)]
    public void Float_exp_of_shifted_scaled_row_is_accurate(int length)
    {
        var rng = new Random(length);
        float[] x = Enumerable.Range(0, length).Select(_ => (float)(rng.NextDouble() * 200 - 100)).ToArray();
        float shift = x.Max(), scale = 0.37f;
        float[] y = (float[])x.Clone();
        float sum = FusedRowMath<float>.ExpShiftedSum(y, shift, scale);
        double expectedSum = 0;
        for (int i = 0; i < length; i++)
        {
            // The argument is rounded to float as the kernel rounds it; what is checked is exp itself.
            float argument = (x[i] - shift) * scale;
            double expected = Math.Exp(argument);
            expectedSum += expected;
            Assert.True(Math.Abs(y[i] - expected) <= 1e-6 * expected + 1e-37, $"exp at {i}: {y[i]} vs {expected}");
        }
        Assert.Equal(expectedSum, sum, expectedSum * 1e-5);
    }

    [Fact]
    public void Float_exp_saturates_instead_of_overflowing()
    {
        float[] y = [-1000f, 0f, 1000f];
        FusedRowMath<float>.ExpShiftedSum(y, 0f, 1f);
        Assert.Equal(0f, y[0], 1e-37f);
        Assert.Equal(1f, y[1], 1e-6f);
        Assert.True(float.IsFinite(y[2]) && y[2] > 1e38f);
    }

    [Fact]
    public void Float_swiglu_forward_and_backward_match_double()
    {
        var rng = new Random(5);
        const int n = 203; // vector body plus a scalar tail
        float[] x = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 16 - 8)).ToArray();
        float[] u = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] dy = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var y = new float[n];
        var dx = new float[n];
        float[] du = Enumerable.Repeat(0.5f, n).ToArray();
        FusedRowMath<float>.SiluMultiply(x, u, y);
        FusedRowMath<float>.SwiGluBackward(x, u, dy, dx, overwriteDx: true, du, overwriteDu: false);
        for (int i = 0; i < n; i++)
        {
            double s = 1 / (1 + Math.Exp(-(double)x[i]));
            Assert.Equal(x[i] * s * u[i], y[i], 1e-6);
            Assert.Equal(0.5 + dy[i] * x[i] * s, du[i], 1e-6);
            Assert.Equal(dy[i] * u[i] * s * (1 + x[i] * (1 - s)), dx[i], 1e-6);
        }
    }
}
