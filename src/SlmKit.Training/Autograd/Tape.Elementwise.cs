using System.Numerics;
using System.Numerics.Tensors;
using SlmKit.Kernels;

namespace SlmKit.Training;

public sealed partial class Tape<T>
{
    private const int ElementChunk = 16384;

    /// <summary>Element-wise sum a + b of two tensors of the same shape (the residual connection).</summary>
    public Variable<T> Add(Variable<T> a, Variable<T> b)
    {
        Require(a.Length == b.Length, $"Add: shapes [{string.Join(", ", a.Shape)}] and [{string.Join(", ", b.Shape)}] differ");
        T[] y = Borrow(a.Length);
        T[] av = a.Value, bv = b.Value;
        ParallelRange.ForChunks(y.Length, ElementChunk, ThreadCount,
            (s, e) => TensorPrimitives.Add(av.AsSpan(s, e - s), bv.AsSpan(s, e - s), y.AsSpan(s, e - s)));
        return Output(y, (int[])a.Shape.Clone(), a.RequiresGrad || b.RequiresGrad, o =>
        {
            T[] gy = o.Grad!;
            if (a.RequiresGrad)
                PassGradient(a, gy);
            if (b.RequiresGrad)
                PassGradient(b, gy);
        });
    }

    /// <summary>Adds <paramref name="gy"/> into the gradient of <paramref name="v"/>.</summary>
    private void PassGradient(Variable<T> v, T[] gy)
    {
        T[] g = GradFor(v, out bool fresh);
        ParallelRange.ForChunks(g.Length, ElementChunk, ThreadCount, (s, e) =>
        {
            if (fresh)
                gy.AsSpan(s, e - s).CopyTo(g.AsSpan(s, e - s));
            else
                TensorPrimitives.Add(g.AsSpan(s, e - s), gy.AsSpan(s, e - s), g.AsSpan(s, e - s));
        });
    }

    /// <summary>The SwiGLU gate: silu(gate) ⊙ up, with silu(x) = x·σ(x).</summary>
    public Variable<T> SwiGlu(Variable<T> gate, Variable<T> up)
    {
        Require(gate.Length == up.Length, $"SwiGlu: gate [{string.Join(", ", gate.Shape)}] and up [{string.Join(", ", up.Shape)}] differ");
        T[] y = Borrow(gate.Length);
        T[] gv = gate.Value, uv = up.Value;
        ParallelRange.ForChunks(y.Length, ElementChunk, ThreadCount,
            (s, e) => FusedRowMath<T>.SiluMultiply(gv.AsSpan(s, e - s), uv.AsSpan(s, e - s), y.AsSpan(s, e - s)));
        return Output(y, (int[])gate.Shape.Clone(), gate.RequiresGrad || up.RequiresGrad, o =>
        {
            T[] gy = o.Grad!;
            T[]? gGate = null, gUp = null;
            bool freshGate = false, freshUp = false;
            if (gate.RequiresGrad)
                gGate = GradFor(gate, out freshGate);
            if (up.RequiresGrad)
                gUp = GradFor(up, out freshUp);
            ParallelRange.ForChunks(gy.Length, ElementChunk, ThreadCount, (s, e) => FusedRowMath<T>.SwiGluBackward(
                gv.AsSpan(s, e - s), uv.AsSpan(s, e - s), gy.AsSpan(s, e - s),
                gGate is null ? default : gGate.AsSpan(s, e - s), freshGate,
                gUp is null ? default : gUp.AsSpan(s, e - s), freshUp));
        });
    }

    /// <summary>
    /// An ungated MLP activation, element-wise: SiLU, GELU (tanh approximation or exact erf), ReLU or squared ReLU,
    /// each as the runtime's <see cref="Activations"/> defines it. Backward multiplies by the derivative at the input.
    /// </summary>
    public Variable<T> Activation(Variable<T> x, ActivationKind kind)
    {
        Require(kind is ActivationKind.Silu or ActivationKind.GeluTanh or ActivationKind.GeluErf or ActivationKind.Relu or ActivationKind.SquaredRelu,
            $"Activation: {kind} is not supported");
        T[] y = Borrow(x.Length);
        T[] xv = x.Value;
        ParallelRange.ForChunks(y.Length, ElementChunk, ThreadCount, (s, e) =>
        {
            for (int i = s; i < e; i++)
                y[i] = ActivationValue(kind, xv[i]);
        });
        return Output(y, (int[])x.Shape.Clone(), x.RequiresGrad, o =>
        {
            T[] gy = o.Grad!;
            T[] gx = GradFor(x, out bool fresh);
            ParallelRange.ForChunks(gy.Length, ElementChunk, ThreadCount, (s, e) =>
            {
                for (int i = s; i < e; i++)
                {
                    T d = gy[i] * ActivationDerivative(kind, xv[i]);
                    gx[i] = fresh ? d : gx[i] + d;
                }
            });
        });
    }

    // √(2/π) and 1/√(2π) in double; T.CreateChecked rounds them once for float.
    private static readonly T s_geluScale = T.CreateChecked(0.7978845608028654);
    private static readonly T s_geluCubic = T.CreateChecked(0.044715);
    private static readonly T s_half = T.CreateChecked(0.5);
    private static readonly T s_inverseSqrtTwoPi = T.CreateChecked(0.3989422804014327);

    private static T ActivationValue(ActivationKind kind, T x)
    {
        switch (kind)
        {
            case ActivationKind.Silu:
                return x / (T.One + T.Exp(-x));
            case ActivationKind.GeluTanh:
                return s_half * x * (T.One + T.Tanh(s_geluScale * (x + s_geluCubic * x * x * x)));
            case ActivationKind.GeluErf:
            {
                double v = double.CreateChecked(x);
                return T.CreateChecked(0.5 * v * (1 + Activations.Erf(v * 0.7071067811865476)));
            }
            case ActivationKind.Relu:
                return T.Max(x, T.Zero);
            default:
            {
                T r = T.Max(x, T.Zero);
                return r * r;
            }
        }
    }

    private static T ActivationDerivative(ActivationKind kind, T x)
    {
        switch (kind)
        {
            case ActivationKind.Silu:
            {
                T sigmoid = T.One / (T.One + T.Exp(-x));
                return sigmoid * (T.One + x * (T.One - sigmoid));
            }
            case ActivationKind.GeluTanh:
            {
                T x2 = x * x;
                T t = T.Tanh(s_geluScale * (x + s_geluCubic * x2 * x));
                T three = T.CreateChecked(3);
                return s_half * (T.One + t) + s_half * x * (T.One - t * t) * s_geluScale * (T.One + three * s_geluCubic * x2);
            }
            case ActivationKind.GeluErf:
            {
                // Φ(x) + x·φ(x)
                double v = double.CreateChecked(x);
                return T.CreateChecked(0.5 * (1 + Activations.Erf(v * 0.7071067811865476))) + x * s_inverseSqrtTwoPi * T.Exp(-s_half * x * x);
            }
            case ActivationKind.Relu:
                return x > T.Zero ? T.One : T.Zero;
            default:
                return x > T.Zero ? T.CreateChecked(2) * x : T.Zero;
        }
    }

    /// <summary>
    /// Rows of <paramref name="table"/> [vocab, dim] picked by <paramref name="ids"/>: the result is [ids.Length, dim].
    /// The table's gradient is accumulated sparsely, only in the rows that were used.
    /// </summary>
    public Variable<T> Embedding(Variable<T> table, int[] ids)
    {
        Require(table.Shape.Length == 2, "Embedding: the table must be [vocab, dim]");
        int vocab = table.Shape[0], dim = table.Shape[1];
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)vocab)
                throw new SlmKitException($"token id {id} is outside the vocabulary of {vocab}");
        }
        T[] y = Borrow(ids.Length * dim);
        T[] tv = table.Value;
        for (int n = 0; n < ids.Length; n++)
            tv.AsSpan(ids[n] * dim, dim).CopyTo(y.AsSpan(n * dim, dim));
        return Output(y, [ids.Length, dim], table.RequiresGrad, o =>
        {
            T[] gy = o.Grad!;
            T[] g = GradForAdding(table);
            // Sequential on purpose: repeated ids add into one row, and a fixed order keeps the sum reproducible.
            for (int n = 0; n < ids.Length; n++)
            {
                Span<T> row = g.AsSpan(ids[n] * dim, dim);
                TensorPrimitives.Add(row, gy.AsSpan(n * dim, dim), row);
            }
        });
    }
}
