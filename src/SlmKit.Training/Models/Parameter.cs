using System.Numerics;

namespace SlmKit.Training;

/// <summary>What a parameter is, which decides defaults such as whether AdamW decays it.</summary>
public enum ParameterKind
{
    /// <summary>A matrix of a linear layer: decayed by default.</summary>
    Weight,

    /// <summary>A normalization scale: not decayed.</summary>
    Norm,

    /// <summary>An additive bias: not decayed.</summary>
    Bias,

    /// <summary>A token embedding table (also the output projection when tied): not decayed.</summary>
    Embedding,
}

/// <summary>A named trainable tensor: its values, its gradient (same shape, owned) and its kind.</summary>
public sealed class Parameter<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Creates a zero-valued parameter of <paramref name="shape"/>.</summary>
    public Parameter(string name, int[] shape, ParameterKind kind)
    {
        Name = name;
        Kind = kind;
        long count = 1;
        foreach (int d in shape)
            count *= d;
        Variable = new Variable<T>(new T[count], shape, requiresGrad: true) { Grad = new T[count] };
    }

    /// <summary>The tensor name, the same as the runtime's GGUF name (e.g. <c>blk.0.attn_q.weight</c>).</summary>
    public string Name { get; }

    /// <summary>What the parameter is.</summary>
    public ParameterKind Kind { get; }

    /// <summary>The variable operations read.</summary>
    public Variable<T> Variable { get; }

    /// <summary>Dimensions, outermost first (a linear weight is [out, in]).</summary>
    public int[] Shape => Variable.Shape;

    /// <summary>Row-major values.</summary>
    public T[] Value => Variable.Value;

    /// <summary>Accumulated gradient, same layout as <see cref="Value"/>.</summary>
    public T[] Grad => Variable.Grad!;

    /// <inheritdoc/>
    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}] {Kind}";
}
