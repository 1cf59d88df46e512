using System.Numerics;

namespace SlmKit.Training;

/// <summary>Gradient clipping by the global L2 norm over all parameters, as <c>torch.nn.utils.clip_grad_norm_</c>.</summary>
public static class GradientClipping
{
    /// <summary>The L2 norm of all gradients together, summed in parameter order in double.</summary>
    public static double GlobalNorm<T>(IReadOnlyList<Parameter<T>> parameters) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(parameters);
        double sum = 0;
        foreach (Parameter<T> p in parameters)
        {
            // Blocks of 1024 are summed as T (vectorised), the blocks in double: accurate and in a fixed order.
            ReadOnlySpan<T> grad = p.Grad;
            for (int s = 0; s < grad.Length; s += 1024)
                sum += double.CreateChecked(System.Numerics.Tensors.TensorPrimitives.SumOfSquares(grad.Slice(s, Math.Min(1024, grad.Length - s))));
        }
        return Math.Sqrt(sum);
    }

    /// <summary>
    /// Scales every gradient by maxNorm / (norm + 1e-6) when the global norm exceeds <paramref name="maxNorm"/>;
    /// returns the norm before clipping.
    /// </summary>
    public static double ClipByGlobalNorm<T>(IReadOnlyList<Parameter<T>> parameters, double maxNorm) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxNorm);
        double norm = GlobalNorm(parameters);
        double coefficient = maxNorm / (norm + 1e-6);
        if (coefficient < 1)
        {
            T scale = T.CreateChecked(coefficient);
            foreach (Parameter<T> p in parameters)
                System.Numerics.Tensors.TensorPrimitives.Multiply(p.Grad, scale, p.Grad);
        }
        return norm;
    }
}
