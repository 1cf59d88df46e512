using System.Numerics;
using System.Runtime.CompilerServices;

namespace SlmKit.Training;

/// <summary>
/// Adam with decoupled weight decay (Loshchilov &amp; Hutter), exactly as PyTorch's <c>torch.optim.AdamW</c>:
/// p ← p − lr·λ·p; m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε).
/// By default only <see cref="ParameterKind.Weight"/> parameters decay; norms, biases and embeddings do not.
/// </summary>
public sealed class AdamW<T> : IOptimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Parameter<T>[] _parameters;
    private readonly bool[] _decay;
    private readonly T[][] _m;
    private readonly T[][] _v;
    private readonly int _threads;

    /// <summary>Creates the optimizer with PyTorch's defaults unless told otherwise.</summary>
    /// <param name="parameters">What to update.</param>
    /// <param name="beta1">Decay of the first moment.</param>
    /// <param name="beta2">Decay of the second moment (llama2.c uses 0.95).</param>
    /// <param name="epsilon">Added to the root of the second moment.</param>
    /// <param name="weightDecay">Decoupled decay λ (per unit learning rate).</param>
    /// <param name="decays">Which parameters decay; default: those of kind <see cref="ParameterKind.Weight"/>.</param>
    /// <param name="threadCount">Threads for the update (0: one per core).</param>
    public AdamW(IReadOnlyList<Parameter<T>> parameters, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8,
        double weightDecay = 0.01, Func<Parameter<T>, bool>? decays = null, int threadCount = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threadCount);
        _threads = threadCount == 0 ? Environment.ProcessorCount : threadCount;
        ArgumentNullException.ThrowIfNull(parameters);
        if (beta1 is < 0 or >= 1 || beta2 is < 0 or >= 1 || epsilon < 0 || weightDecay < 0)
            throw new ArgumentOutOfRangeException(nameof(parameters), $"AdamW needs 0 ≤ β < 1, ε ≥ 0 and λ ≥ 0 (got β₁ {beta1}, β₂ {beta2}, ε {epsilon}, λ {weightDecay})");
        _parameters = [.. parameters];
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        WeightDecay = weightDecay;
        decays ??= p => p.Kind == ParameterKind.Weight;
        _decay = new bool[_parameters.Length];
        _m = new T[_parameters.Length][];
        _v = new T[_parameters.Length][];
        for (int i = 0; i < _parameters.Length; i++)
        {
            _decay[i] = decays(_parameters[i]);
            _m[i] = new T[_parameters[i].Value.Length];
            _v[i] = new T[_parameters[i].Value.Length];
        }
    }

    /// <inheritdoc/>
    public IReadOnlyList<Parameter<T>> Parameters => _parameters;

    /// <inheritdoc/>
    public int StepCount { get; private set; }

    /// <summary>First-moment decay β₁.</summary>
    public double Beta1 { get; }

    /// <summary>Second-moment decay β₂.</summary>
    public double Beta2 { get; }

    /// <summary>ε in the denominator.</summary>
    public double Epsilon { get; }

    /// <summary>Decoupled weight decay λ.</summary>
    public double WeightDecay { get; }

    /// <inheritdoc/>
    public IReadOnlyList<T[]> StateBuffers => [.. _m, .. _v];

    /// <inheritdoc/>
    public void RestoreStepCount(int stepCount) => StepCount = stepCount;

    /// <summary>Whether the parameter at <paramref name="index"/> of <see cref="Parameters"/> decays.</summary>
    public bool Decays(int index) => _decay[index];

    /// <inheritdoc/>
    public void Step(double learningRate)
    {
        StepCount++;
        T b1 = T.CreateChecked(Beta1), b2 = T.CreateChecked(Beta2);
        T oneMinusB1 = T.One - b1, oneMinusB2 = T.One - b2;
        // Bias corrections folded into the step size and ε, as PyTorch does: p −= (lr/c₁)·m / (√v/√c₂ + ε).
        double c1 = 1 - Math.Pow(Beta1, StepCount), c2 = 1 - Math.Pow(Beta2, StepCount);
        T stepSize = T.CreateChecked(learningRate / c1);
        T inverseRootC2 = T.CreateChecked(1 / Math.Sqrt(c2));
        T eps = T.CreateChecked(Epsilon);
        for (int index = 0; index < _parameters.Length; index++)
        {
            T[] p = _parameters[index].Value, g = _parameters[index].Grad, m = _m[index], v = _v[index];
            T decayFactor = T.CreateChecked(_decay[index] ? 1 - learningRate * WeightDecay : 1);
            var coefficients = new Coefficients(b1, b2, oneMinusB1, oneMinusB2, decayFactor, stepSize, inverseRootC2, eps);
            ParallelRange.ForChunks(p.Length, 65536, _threads, (s, e) => Update(p, g, m, v, s, e, coefficients));
        }
    }

    private readonly record struct Coefficients(T B1, T B2, T OneMinusB1, T OneMinusB2, T DecayFactor, T StepSize, T InverseRootC2, T Epsilon);

    /// <summary>One fused pass over [start, end): the update is memory-bound, so each value is read and written once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // 15M values on the first step: no tier-0 pass
    private static void Update(T[] p, T[] g, T[] m, T[] v, int start, int end, Coefficients c)
    {
        int i = start;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var vb1 = new Vector<T>(c.B1);
            var vb2 = new Vector<T>(c.B2);
            var v1 = new Vector<T>(c.OneMinusB1);
            var v2 = new Vector<T>(c.OneMinusB2);
            var vDecay = new Vector<T>(c.DecayFactor);
            var vStep = new Vector<T>(c.StepSize);
            var vRoot = new Vector<T>(c.InverseRootC2);
            var vEps = new Vector<T>(c.Epsilon);
            for (; i <= end - Vector<T>.Count; i += Vector<T>.Count)
            {
                var gi = new Vector<T>(g, i);
                Vector<T> mi = vb1 * new Vector<T>(m, i) + v1 * gi;
                Vector<T> vi = vb2 * new Vector<T>(v, i) + v2 * gi * gi;
                mi.CopyTo(m, i);
                vi.CopyTo(v, i);
                (new Vector<T>(p, i) * vDecay - vStep * mi / (Vector.SquareRoot(vi) * vRoot + vEps)).CopyTo(p, i);
            }
        }
        for (; i < end; i++)
        {
            T gi = g[i];
            T mi = c.B1 * m[i] + c.OneMinusB1 * gi;
            T vi = c.B2 * v[i] + c.OneMinusB2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] = p[i] * c.DecayFactor - c.StepSize * mi / (T.Sqrt(vi) * c.InverseRootC2 + c.Epsilon);
        }
    }
}
