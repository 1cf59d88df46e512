namespace SlmKit.Training;

/// <summary>How the learning rate falls after warm-up.</summary>
public enum LearningRateDecay
{
    /// <summary>Stays at the maximum.</summary>
    Constant,

    /// <summary>Straight line from the maximum to the minimum.</summary>
    Linear,

    /// <summary>Half a cosine from the maximum to the minimum (nanoGPT, llama2.c).</summary>
    Cosine,
}

/// <summary>
/// Linear warm-up to <see cref="MaxLearningRate"/> over <see cref="WarmupSteps"/> steps, then decay to
/// <see cref="MinLearningRate"/> at <see cref="TotalSteps"/>, and the minimum after that. Steps count from 0:
/// during warm-up the rate is max·(step+1)/warmup, so the first step already moves.
/// </summary>
public sealed record LearningRateSchedule(double MaxLearningRate, double MinLearningRate, int WarmupSteps, int TotalSteps, LearningRateDecay Decay)
{
    /// <summary>A fixed rate.</summary>
    public static LearningRateSchedule Constant(double learningRate) => new(learningRate, learningRate, 0, 0, LearningRateDecay.Constant);

    /// <summary>Warm-up then cosine decay.</summary>
    public static LearningRateSchedule WarmupCosine(double max, double min, int warmupSteps, int totalSteps) =>
        new(max, min, warmupSteps, totalSteps, LearningRateDecay.Cosine);

    /// <summary>Warm-up then linear decay.</summary>
    public static LearningRateSchedule WarmupLinear(double max, double min, int warmupSteps, int totalSteps) =>
        new(max, min, warmupSteps, totalSteps, LearningRateDecay.Linear);

    /// <summary>The learning rate for 0-based <paramref name="step"/>.</summary>
    public double At(int step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        if (step < WarmupSteps)
            return MaxLearningRate * (step + 1) / WarmupSteps;
        if (Decay == LearningRateDecay.Constant)
            return MaxLearningRate;
        if (step >= TotalSteps)
            return MinLearningRate;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        double coefficient = Decay == LearningRateDecay.Cosine ? 0.5 * (1 + Math.Cos(Math.PI * progress)) : 1 - progress;
        return MinLearningRate + coefficient * (MaxLearningRate - MinLearningRate);
    }
}
