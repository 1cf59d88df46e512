using SlmKit.Training;

namespace SlmKit.Tests.Training;

public sealed class OptimizerTests
{
    [Fact]
    public void AdamW_matches_a_hand_computed_update_and_skips_decay_on_norms()
    {
        var weight = new Parameter<double>("w", [2], ParameterKind.Weight);
        var norm = new Parameter<double>("n", [1], ParameterKind.Norm);
        weight.Value[0] = 1.0;
        weight.Value[1] = -2.0;
        norm.Value[0] = 0.5;
        var adam = new AdamW<double>([weight, norm], beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1);
        Assert.True(adam.Decays(0));
        Assert.False(adam.Decays(1));

        // Step 1, lr 0.1, g = (0.5, −0.1 | 0.2): m = 0.1·g, v = 0.001·g², m̂ = g, v̂ = g²,
        // p ← p·(1 − 0.1·0.1) − 0.1·g/(|g| + 1e-8).
        weight.Grad[0] = 0.5;
        weight.Grad[1] = -0.1;
        norm.Grad[0] = 0.2;
        adam.Step(0.1);
        double w0 = 1.0 * 0.99 - 0.1 * 0.5 / (0.5 + 1e-8);
        double w1 = -2.0 * 0.99 - 0.1 * -0.1 / (0.1 + 1e-8);
        double n0 = 0.5 - 0.1 * 0.2 / (0.2 + 1e-8);
        Assert.Equal(w0, weight.Value[0], 1e-15);
        Assert.Equal(w1, weight.Value[1], 1e-15);
        Assert.Equal(n0, norm.Value[0], 1e-15);

        // Step 2, lr 0.05, g = (−0.3, …): m = 0.9·0.05 + 0.1·(−0.3) = 0.015; v = 0.999·0.00025 + 0.001·0.09 = 0.00033975;
        // m̂ = 0.015/(1 − 0.81) ; v̂ = 0.00033975/(1 − 0.998001).
        weight.Grad[0] = -0.3;
        weight.Grad[1] = 0;
        norm.Grad[0] = 0;
        adam.Step(0.05);
        double mHat = 0.015 / 0.19, vHat = 0.00033975 / 0.001999;
        double expected = w0 * (1 - 0.05 * 0.1) - 0.05 * mHat / (Math.Sqrt(vHat) + 1e-8);
        Assert.Equal(expected, weight.Value[0], 1e-12);
        Assert.Equal(2, adam.StepCount);
    }

    [Fact]
    public void Sgd_with_momentum_matches_a_hand_computed_update()
    {
        var p = new Parameter<double>("w", [1], ParameterKind.Weight);
        p.Value[0] = 1.0;
        var sgd = new SgdMomentum<double>([p], momentum: 0.9);
        p.Grad[0] = 0.5;
        sgd.Step(0.1); // b = 0.5, p = 1 − 0.05
        Assert.Equal(0.95, p.Value[0], 1e-15);
        sgd.Step(0.1); // b = 0.9·0.5 + 0.5 = 0.95, p = 0.95 − 0.095
        Assert.Equal(0.855, p.Value[0], 1e-15);
    }

    [Fact]
    public void Clipping_scales_to_the_global_norm_only_when_above_it()
    {
        var a = new Parameter<float>("a", [2], ParameterKind.Weight);
        var b = new Parameter<float>("b", [1], ParameterKind.Norm);
        a.Grad[0] = 3;
        a.Grad[1] = 0;
        b.Grad[0] = 4;
        double norm = GradientClipping.ClipByGlobalNorm([a, b], 1.0);
        Assert.Equal(5.0, norm, 1e-12);
        Assert.Equal(0.6f, a.Grad[0], 1e-6f);
        Assert.Equal(0.8f, b.Grad[0], 1e-6f);
        Assert.Equal(1.0, GradientClipping.GlobalNorm([a, b]), 1e-6);

        norm = GradientClipping.ClipByGlobalNorm([a, b], 2.0);
        Assert.Equal(1.0, norm, 1e-6);
        Assert.Equal(0.6f, a.Grad[0], 1e-6f); // under the threshold: unchanged
    }

    [Fact]
    public void Warmup_then_cosine_decay()
    {
        var s = LearningRateSchedule.WarmupCosine(1e-3, 1e-4, warmupSteps: 10, totalSteps: 110);
        Assert.Equal(1e-4, s.At(0), 1e-15);
        Assert.Equal(5e-4, s.At(4), 1e-15);
        Assert.Equal(1e-3, s.At(9), 1e-15);
        Assert.Equal(1e-3, s.At(10), 1e-15);
        Assert.Equal(1e-4 + 0.5 * (1 + Math.Cos(Math.PI / 4)) * 9e-4, s.At(35), 1e-15);
        Assert.Equal(5.5e-4, s.At(60), 1e-15);
        Assert.Equal(1e-4, s.At(110), 1e-15);
        Assert.Equal(1e-4, s.At(1000), 1e-15);
    }

    [Fact]
    public void Warmup_then_linear_decay_and_constant()
    {
        var s = LearningRateSchedule.WarmupLinear(1e-3, 1e-4, warmupSteps: 10, totalSteps: 110);
        Assert.Equal(7.75e-4, s.At(35), 1e-15);
        Assert.Equal(5.5e-4, s.At(60), 1e-15);
        Assert.Equal(1e-4, s.At(110), 1e-15);
        Assert.Equal(3e-4, LearningRateSchedule.Constant(3e-4).At(12345));
    }
}
