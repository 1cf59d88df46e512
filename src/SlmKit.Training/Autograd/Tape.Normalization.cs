using System.Numerics;
using System.Numerics.Tensors;

namespace SlmKit.Training;

public sealed partial class Tape<T>
{
    /// <summary>
    /// RMSNorm over the last dimension: y = x / sqrt(mean(x²) + eps) ⊙ weight. Saves one reciprocal RMS per row.
    /// </summary>
    public Variable<T> RmsNorm(Variable<T> x, Variable<T> weight, T epsilon)
    {
        int dim = x.Shape[^1];
        Require(weight.Length == dim, $"RmsNorm: weight has {weight.Length} values, rows have {dim}");
        int rows = x.Length / dim;
        T[] y = Borrow(x.Length);
        T[] rstd = Borrow(rows);
        T[] xv = x.Value, wv = weight.Value;
        T dimT = T.CreateChecked(dim);
        ParallelRange.ForChunks(rows, 16, ThreadCount, (s, e) =>
        {
            for (int r = s; r < e; r++)
            {
                ReadOnlySpan<T> row = xv.AsSpan(r * dim, dim);
                T inv = T.One / T.Sqrt(TensorPrimitives.SumOfSquares(row) / dimT + epsilon);
                rstd[r] = inv;
                Span<T> dst = y.AsSpan(r * dim, dim);
                TensorPrimitives.Multiply(row, inv, dst);
                TensorPrimitives.Multiply(dst, wv, dst);
            }
        });
        return Output(y, (int[])x.Shape.Clone(), x.RequiresGrad || weight.RequiresGrad, o =>
        {
            T[] gy = o.Grad!;
            if (x.RequiresGrad)
            {
                T[] gx = GradFor(x, out bool fresh);
                ParallelRange.ForChunks(rows, 16, ThreadCount, (s, e) =>
                {
                    Span<T> weighted = new T[dim];
                    for (int r = s; r < e; r++)
                    {
                        ReadOnlySpan<T> row = xv.AsSpan(r * dim, dim);
                        ReadOnlySpan<T> dy = gy.AsSpan(r * dim, dim);
                        Span<T> dx = gx.AsSpan(r * dim, dim);
                        T inv = rstd[r];
                        // g = dy ⊙ w;  dx = inv·g − x·inv³·(g·x)/dim
                        TensorPrimitives.Multiply(dy, wv, weighted);
                        T coefficient = TensorPrimitives.Dot<T>(weighted, row) * inv * inv * inv / dimT;
                        for (int i = 0; i < dim; i++)
                        {
                            T d = inv * weighted[i] - coefficient * row[i];
                            dx[i] = fresh ? d : dx[i] + d;
                        }
                    }
                });
            }
            if (weight.RequiresGrad)
            {
                T[] gWeight = GradForAdding(weight);
                Span<T> scratch = new T[dim];
                // Sequential over rows so the weight gradient sums in a fixed order.
                for (int r = 0; r < rows; r++)
                {
                    TensorPrimitives.Multiply(gy.AsSpan(r * dim, dim), xv.AsSpan(r * dim, dim), scratch);
                    TensorPrimitives.MultiplyAdd(scratch, rstd[r], gWeight, gWeight);
                }
            }
        });
    }

    /// <summary>
    /// Rotary position embedding, adjacent-pair ("normal", GGUF/llama2.c) layout: in each head of
    /// <paramref name="headDim"/> values, pair (2i, 2i+1) turns by position·θ^(−2i/headDim). Rows of
    /// <paramref name="x"/> are (sequence, position) flattened, so row r is at position r mod <paramref name="seq"/>.
    /// </summary>
    public Variable<T> Rope(Variable<T> x, int seq, int headDim, double theta)
    {
        Require(x.Shape.Length == 2 && x.Shape[1] % headDim == 0 && headDim % 2 == 0 && x.Shape[0] % seq == 0,
            $"Rope: x [{string.Join(", ", x.Shape)}] is not rows of whole heads of {headDim} (even) in sequences of {seq}");
        int rows = x.Shape[0], width = x.Shape[1], pairs = headDim / 2;
        T[] cos = Borrow(seq * pairs), sin = Borrow(seq * pairs);
        for (int t = 0; t < seq; t++)
        {
            for (int i = 0; i < pairs; i++)
            {
                // Angles in double: position·frequency loses digits in float at long contexts.
                double angle = t * Math.Pow(theta, -2.0 * i / headDim);
                cos[t * pairs + i] = T.CreateChecked(Math.Cos(angle));
                sin[t * pairs + i] = T.CreateChecked(Math.Sin(angle));
            }
        }
        T[] y = Borrow(x.Length);
        T[] xv = x.Value;
        ParallelRange.ForChunks(rows, 32, ThreadCount, (s, e) => Rotate(xv, y, s, e, seq, width, pairs, cos, sin, inverse: false, add: false));
        return Output(y, (int[])x.Shape.Clone(), x.RequiresGrad, o =>
        {
            T[] gy = o.Grad!;
            T[] gx = GradFor(x, out bool fresh);
            ParallelRange.ForChunks(rows, 32, ThreadCount, (s, e) => Rotate(gy, gx, s, e, seq, width, pairs, cos, sin, inverse: true, add: !fresh));
        });
    }

    private static void Rotate(T[] src, T[] dst, int rowStart, int rowEnd, int seq, int width, int pairs, T[] cos, T[] sin, bool inverse, bool add)
    {
        for (int r = rowStart; r < rowEnd; r++)
        {
            int t = r % seq;
            for (int h = 0; h < width; h += 2 * pairs)
            {
                for (int i = 0; i < pairs; i++)
                {
                    int at = r * width + h + 2 * i;
                    T c = cos[t * pairs + i];
                    // The backward pass rotates by the opposite angle (the transpose of a rotation).
                    T s = inverse ? -sin[t * pairs + i] : sin[t * pairs + i];
                    T x0 = src[at], x1 = src[at + 1];
                    T y0 = x0 * c - x1 * s, y1 = x0 * s + x1 * c;
                    if (add)
                    {
                        dst[at] += y0;
                        dst[at + 1] += y1;
                    }
                    else
                    {
                        dst[at] = y0;
                        dst[at + 1] = y1;
                    }
                }
            }
        }
    }
}
