using System.Numerics;

namespace SlmKit.Training;

/// <summary>Updates parameters from their accumulated gradients.</summary>
public interface IOptimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>The parameters this optimizer updates, in a fixed order.</summary>
    IReadOnlyList<Parameter<T>> Parameters { get; }

    /// <summary>Steps taken so far.</summary>
    int StepCount { get; }

    /// <summary>Applies one update with <paramref name="learningRate"/>; gradients are left as they are.</summary>
    void Step(double learningRate);

    /// <summary>The optimizer's own state arrays (moments, momentum), in a fixed order, for checkpoints.</summary>
    IReadOnlyList<T[]> StateBuffers { get; }

    /// <summary>Sets <see cref="StepCount"/> when resuming from a checkpoint (the state buffers are filled in place).</summary>
    void RestoreStepCount(int stepCount);
}
