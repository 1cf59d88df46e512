using System.Numerics;

namespace SlmKit.Training;

/// <summary>One micro-batch: <see cref="BatchSize"/> sequences of <see cref="SequenceLength"/> tokens and their targets, row-major.</summary>
/// <param name="Tokens">Input ids, [batch, seq].</param>
/// <param name="Targets">Next-token ids, [batch, seq]; <see cref="TrainableDecoder{T}.IgnoreIndex"/> skips a position.</param>
/// <param name="BatchSize">Sequences.</param>
/// <param name="SequenceLength">Tokens per sequence.</param>
public sealed record TokenBatch(int[] Tokens, int[] Targets, int BatchSize, int SequenceLength);

/// <summary>What one optimizer step did.</summary>
/// <param name="Loss">Mean of the micro-batches' losses.</param>
/// <param name="GradientNorm">Global gradient norm before clipping.</param>
/// <param name="LearningRate">The rate the step used.</param>
public readonly record struct TrainingStepResult(double Loss, double GradientNorm, double LearningRate);

/// <summary>
/// The training step, top to bottom: zero the gradients, accumulate them over the micro-batches (each scaled by
/// 1/count, so the step sees their mean), clip by global norm, take the scheduled learning rate, update.
/// </summary>
public sealed class DecoderTrainer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Creates a trainer; <paramref name="maxGradientNorm"/> ≤ 0 turns clipping off.</summary>
    public DecoderTrainer(TrainableDecoder<T> model, IOptimizer<T> optimizer, LearningRateSchedule schedule, double maxGradientNorm = 1.0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(schedule);
        Model = model;
        Optimizer = optimizer;
        Schedule = schedule;
        MaxGradientNorm = maxGradientNorm;
    }

    /// <summary>The model being trained.</summary>
    public TrainableDecoder<T> Model { get; }

    /// <summary>The update rule.</summary>
    public IOptimizer<T> Optimizer { get; }

    /// <summary>Learning rate per step.</summary>
    public LearningRateSchedule Schedule { get; }

    /// <summary>Clipping threshold; ≤ 0 when off.</summary>
    public double MaxGradientNorm { get; }

    /// <summary>Steps taken.</summary>
    public int StepCount { get; private set; }

    /// <summary>Continues the schedule at <paramref name="stepCount"/> when resuming from a checkpoint.</summary>
    public void RestoreStepCount(int stepCount)
    {
        StepCount = stepCount;
        Optimizer.RestoreStepCount(stepCount);
    }

    /// <summary>One optimizer step over <paramref name="microBatches"/> (gradient accumulation when more than one).</summary>
    public TrainingStepResult Step(IReadOnlyList<TokenBatch> microBatches)
    {
        ArgumentNullException.ThrowIfNull(microBatches);
        if (microBatches.Count == 0)
            throw new SlmKitException("a training step needs at least one micro-batch");
        Model.ZeroGradients();
        double scale = 1.0 / microBatches.Count;
        double loss = 0;
        foreach (TokenBatch mb in microBatches)
            loss += double.CreateChecked(Model.Loss(mb.Tokens, mb.Targets, mb.BatchSize, mb.SequenceLength, scale)) * scale;
        double norm = MaxGradientNorm > 0
            ? GradientClipping.ClipByGlobalNorm(Model.Parameters, MaxGradientNorm)
            : GradientClipping.GlobalNorm(Model.Parameters);
        double learningRate = Schedule.At(StepCount);
        Optimizer.Step(learningRate);
        StepCount++;
        return new TrainingStepResult(loss, norm, learningRate);
    }

    /// <summary>One step over a single batch.</summary>
    public TrainingStepResult Step(TokenBatch batch) => Step([batch]);
}
