using SlmKit.Kernels;

namespace SlmKit.Tests.Kernels;

/// <summary>The activations and ALiBi slopes the model families use, against published values.</summary>
public sealed class ActivationTests
{
    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.1, 0.1124629160182849)]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(1.0, 0.8427007929497149)]
    [InlineData(2.0, 0.9953222650189527)]
    [InlineData(-3.0, -0.9999779095030014)]
    [InlineData(5.0, 0.9999999999984626)]
    public void Erf_matches_tabulated_values(double x, double expected) =>
        Assert.Equal(expected, Activations.Erf(x), 1e-13);

    [Fact]
    public void Gelu_variants_match_their_definitions()
    {
        for (double x = -6; x <= 6; x += 0.37)
        {
            double exact = 0.5 * x * (1 + Activations.Erf(x / Math.Sqrt(2)));
            double tanh = 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
            Assert.Equal(exact, Activations.GeluErf((float)x), 1e-5);
            Assert.Equal(tanh, Activations.GeluTanh((float)x), 1e-5);
        }
    }

    [Fact]
    public void Squared_relu_and_soft_cap_follow_their_definitions()
    {
        float[] v = [-2f, 0f, 3f];
        Activations.Apply(ActivationKind.SquaredRelu, v);
        Assert.Equal([0f, 0f, 9f], v);
        float[] logits = [-100f, 0f, 15f];
        Activations.SoftCap(logits, 30f);
        Assert.Equal(30 * Math.Tanh(-100.0 / 30), logits[0], 1e-5);
        Assert.Equal(30 * Math.Tanh(0.5), logits[2], 1e-5);
    }

    [Fact]
    public void Alibi_slopes_are_bloom_s()
    {
        // Power of two: 2^(−8/n · (h+1)).
        float[] eight = Alibi.Slopes(8);
        for (int h = 0; h < 8; h++)
            Assert.Equal(Math.Pow(2, -(h + 1)), eight[h], 1e-7);
        // Six heads: the four of n = 4 (2^-2, 2^-4, 2^-6, 2^-8), then odd powers of 2^(−4/4): 2^-1, 2^-3.
        double[] six = [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125];
        float[] slopes = Alibi.Slopes(6);
        for (int h = 0; h < 6; h++)
            Assert.Equal(six[h], slopes[h], 1e-7);
    }
}
