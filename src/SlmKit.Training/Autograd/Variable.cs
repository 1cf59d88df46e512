using System.Numerics;

namespace SlmKit.Training;

/// <summary>
/// A tensor on a <see cref="Tape{T}"/>: row-major values, an optional gradient of the same shape, and the
/// shape itself. Variables made by tape operations borrow their arrays from the tape and are valid until
/// <see cref="Tape{T}.Reset"/>; parameters own theirs.
/// </summary>
public sealed class Variable<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Wraps <paramref name="value"/> (not copied) as a tensor of <paramref name="shape"/>.</summary>
    public Variable(T[] value, int[] shape, bool requiresGrad)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(shape);
        long count = 1;
        foreach (int d in shape)
        {
            if (d <= 0)
                throw new ArgumentException($"shape [{string.Join(", ", shape)}] has a dimension that is not positive", nameof(shape));
            count *= d;
        }
        if (count != value.Length)
            throw new ArgumentException($"shape [{string.Join(", ", shape)}] holds {count} values but {value.Length} were given", nameof(value));
        Value = value;
        Shape = shape;
        RequiresGrad = requiresGrad;
    }

    /// <summary>Row-major values.</summary>
    public T[] Value { get; }

    /// <summary>Dimensions, outermost first.</summary>
    public int[] Shape { get; }

    /// <summary>Number of values.</summary>
    public int Length => Value.Length;

    /// <summary>Whether backward computes a gradient for this tensor.</summary>
    public bool RequiresGrad { get; }

    /// <summary>The gradient of the loss with respect to <see cref="Value"/>, or null when none has flowed here yet.</summary>
    public T[]? Grad { get; internal set; }

    /// <summary>
    /// True for outputs of tape operations, whose arrays (value and gradient) go back to the tape's pool on reset.
    /// Leaves get a gradient array of their own, so it stays valid after the tape is reset.
    /// </summary>
    internal bool IsTapeOutput { get; init; }
}
