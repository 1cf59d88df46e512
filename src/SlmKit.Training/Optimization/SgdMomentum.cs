using System.Numerics;

namespace SlmKit.Training;

/// <summary>
/// Stochastic gradient descent with momentum, as PyTorch's <c>torch.optim.SGD</c> (no dampening):
/// g ← g + λp; b ← μb + g (b = g on the first step); p ← p − lr·b (Nesterov: p ← p − lr·(g + μb)).
/// </summary>
public sealed class SgdMomentum<T> : IOptimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Parameter<T>[] _parameters;
    private readonly T[][] _buffers;
    private readonly int _threads;

    /// <summary>Creates the optimizer.</summary>
    /// <param name="parameters">What to update.</param>
    /// <param name="momentum">Momentum μ (0 for plain SGD).</param>
    /// <param name="weightDecay">L2 penalty λ added to the gradient.</param>
    /// <param name="nesterov">Use Nesterov momentum.</param>
    /// <param name="threadCount">Threads for the update (0: one per core).</param>
    public SgdMomentum(IReadOnlyList<Parameter<T>> parameters, double momentum = 0.9, double weightDecay = 0, bool nesterov = false, int threadCount = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threadCount);
        _threads = threadCount == 0 ? Environment.ProcessorCount : threadCount;
        ArgumentNullException.ThrowIfNull(parameters);
        if (momentum is < 0 or >= 1 || weightDecay < 0)
            throw new ArgumentOutOfRangeException(nameof(momentum), $"SGD needs 0 ≤ μ < 1 and λ ≥ 0 (got μ {momentum}, λ {weightDecay})");
        _parameters = [.. parameters];
        Momentum = momentum;
        WeightDecay = weightDecay;
        Nesterov = nesterov;
        _buffers = new T[_parameters.Length][];
        for (int i = 0; i < _parameters.Length; i++)
            _buffers[i] = new T[_parameters[i].Value.Length];
    }

    /// <inheritdoc/>
    public IReadOnlyList<Parameter<T>> Parameters => _parameters;

    /// <inheritdoc/>
    public int StepCount { get; private set; }

    /// <inheritdoc/>
    public IReadOnlyList<T[]> StateBuffers => _buffers;

    /// <inheritdoc/>
    public void RestoreStepCount(int stepCount) => StepCount = stepCount;

    /// <summary>Momentum μ.</summary>
    public double Momentum { get; }

    /// <summary>L2 penalty λ.</summary>
    public double WeightDecay { get; }

    /// <summary>Whether the update uses Nesterov momentum.</summary>
    public bool Nesterov { get; }

    /// <inheritdoc/>
    public void Step(double learningRate)
    {
        bool first = StepCount == 0;
        StepCount++;
        T lr = T.CreateChecked(learningRate), mu = T.CreateChecked(Momentum), lambda = T.CreateChecked(WeightDecay);
        for (int index = 0; index < _parameters.Length; index++)
        {
            T[] p = _parameters[index].Value, g = _parameters[index].Grad, b = _buffers[index];
            ParallelRange.ForChunks(p.Length, 65536, _threads, (s, e) =>
            {
                for (int i = s; i < e; i++)
                {
                    T gi = g[i] + lambda * p[i];
                    T bi = first ? gi : mu * b[i] + gi;
                    b[i] = bi;
                    p[i] -= lr * (Nesterov ? gi + mu * bi : bi);
                }
            });
        }
    }
}
