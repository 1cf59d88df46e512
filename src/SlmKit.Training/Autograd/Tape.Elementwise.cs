using System.Numerics;
using System.Numerics.Tensors;

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
