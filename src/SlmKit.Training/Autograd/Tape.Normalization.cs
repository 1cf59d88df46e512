using System.Numerics;
using System.Numerics.Tensors;
using SlmKit.Kernels;

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
    /// LayerNorm over the last dimension: y = (x − mean) / sqrt(var + eps) ⊙ weight (+ bias). Saves the mean and the
    /// reciprocal standard deviation of each row.
    /// </summary>
    public Variable<T> LayerNorm(Variable<T> x, Variable<T> weight, Variable<T>? bias, T epsilon)
    {
        int dim = x.Shape[^1];
        Require(weight.Length == dim && (bias is null || bias.Length == dim),
            $"LayerNorm: weight has {weight.Length} values{(bias is null ? "" : $" and bias {bias.Length}")}, rows have {dim}");
        int rows = x.Length / dim;
        T[] y = Borrow(x.Length);
        T[] means = Borrow(rows), rstd = Borrow(rows);
        T[] xv = x.Value, wv = weight.Value;
        T[]? bv = bias?.Value;
        T dimT = T.CreateChecked(dim);
        ParallelRange.ForChunks(rows, 16, ThreadCount, (s, e) =>
        {
            for (int r = s; r < e; r++)
            {
                ReadOnlySpan<T> row = xv.AsSpan(r * dim, dim);
                Span<T> dst = y.AsSpan(r * dim, dim);
                T mean = TensorPrimitives.Sum(row) / dimT;
                TensorPrimitives.Subtract(row, mean, dst);
                T inv = T.One / T.Sqrt(TensorPrimitives.SumOfSquares<T>(dst) / dimT + epsilon);
                means[r] = mean;
                rstd[r] = inv;
                TensorPrimitives.Multiply(dst, inv, dst);
                TensorPrimitives.Multiply(dst, wv, dst);
                if (bv is not null)
                    TensorPrimitives.Add(dst, bv, dst);
            }
        });
        return Output(y, (int[])x.Shape.Clone(), x.RequiresGrad || weight.RequiresGrad || bias?.RequiresGrad == true, o =>
        {
            T[] gy = o.Grad!;
            if (x.RequiresGrad)
            {
                T[] gx = GradFor(x, out bool fresh);
                ParallelRange.ForChunks(rows, 16, ThreadCount, (s, e) =>
                {
                    Span<T> normalized = new T[dim], weighted = new T[dim];
                    for (int r = s; r < e; r++)
                    {
                        ReadOnlySpan<T> dy = gy.AsSpan(r * dim, dim);
                        Span<T> dx = gx.AsSpan(r * dim, dim);
                        T inv = rstd[r];
                        // x̂ = (x − mean)·inv; g = dy ⊙ w;  dx = inv·(g − mean(g) − x̂·mean(g ⊙ x̂))
                        TensorPrimitives.Subtract(xv.AsSpan(r * dim, dim), means[r], normalized);
                        TensorPrimitives.Multiply(normalized, inv, normalized);
                        TensorPrimitives.Multiply(dy, wv, weighted);
                        T meanG = TensorPrimitives.Sum<T>(weighted) / dimT;
                        T meanGx = TensorPrimitives.Dot<T>(weighted, normalized) / dimT;
                        for (int i = 0; i < dim; i++)
                        {
                            T d = inv * (weighted[i] - meanG - normalized[i] * meanGx);
                            dx[i] = fresh ? d : dx[i] + d;
                        }
                    }
                });
            }
            if (weight.RequiresGrad || bias?.RequiresGrad == true)
            {
                T[]? gWeight = weight.RequiresGrad ? GradForAdding(weight) : null;
                T[]? gBias = bias?.RequiresGrad == true ? GradForAdding(bias) : null;
                Span<T> normalized = new T[dim];
                // Sequential over rows so the parameter gradients sum in a fixed order.
                for (int r = 0; r < rows; r++)
                {
                    ReadOnlySpan<T> dy = gy.AsSpan(r * dim, dim);
                    if (gWeight is not null)
                    {
                        TensorPrimitives.Subtract(xv.AsSpan(r * dim, dim), means[r], normalized);
                        TensorPrimitives.Multiply(normalized, rstd[r], normalized);
                        TensorPrimitives.Multiply(normalized, dy, normalized);
                        TensorPrimitives.Add(gWeight, normalized, gWeight);
                    }
                    if (gBias is not null)
                        TensorPrimitives.Add(gBias, dy, gBias);
                }
            }
        });
    }

    /// <summary>Rotary position embedding of whole heads in adjacent pairs (GGUF/llama2.c order); see the full overload.</summary>
    public Variable<T> Rope(Variable<T> x, int seq, int headDim, double theta) => Rope(x, seq, headDim, headDim, theta, RopeLayout.Normal);

    /// <summary>
    /// Rotary position embedding, as the runtime's <see cref="RotaryEmbedding"/> applies it: in each head of
    /// <paramref name="headDim"/> values the first <paramref name="rotaryDim"/> turn in pairs, pair i by
    /// position·θ^(−2i/rotaryDim), and the rest pass through. <see cref="RopeLayout.Normal"/> pairs adjacent values
    /// (2i, 2i+1) as GGUF llama weights and llama2.c do; <see cref="RopeLayout.NeoX"/> pairs i with i + rotaryDim/2 as
    /// transformers' rotate_half does. Rows of <paramref name="x"/> are (sequence, position) flattened, so row r is at
    /// position r mod <paramref name="seq"/>.
    /// </summary>
    public Variable<T> Rope(Variable<T> x, int seq, int headDim, int rotaryDim, double theta, RopeLayout layout)
    {
        Require(x.Shape.Length == 2 && headDim > 0 && x.Shape[1] % headDim == 0 && rotaryDim > 0 && rotaryDim % 2 == 0 && rotaryDim <= headDim && x.Shape[0] % seq == 0,
            $"Rope: x [{string.Join(", ", x.Shape)}] is not rows of whole heads of {headDim} with an even rotary part of {rotaryDim} in sequences of {seq}");
        int rows = x.Shape[0], width = x.Shape[1], pairs = rotaryDim / 2;
        T[] cos = Borrow(seq * pairs), sin = Borrow(seq * pairs);
        for (int t = 0; t < seq; t++)
        {
            for (int i = 0; i < pairs; i++)
            {
                // Angles in double: position·frequency loses digits in float at long contexts.
                double angle = t * Math.Pow(theta, -2.0 * i / rotaryDim);
                cos[t * pairs + i] = T.CreateChecked(Math.Cos(angle));
                sin[t * pairs + i] = T.CreateChecked(Math.Sin(angle));
            }
        }
        var geometry = new RotaryGeometry(seq, width, headDim, pairs, layout == RopeLayout.NeoX);
        T[] y = Borrow(x.Length);
        T[] xv = x.Value;
        ParallelRange.ForChunks(rows, 32, ThreadCount, (s, e) => Rotate(xv, y, s, e, geometry, cos, sin, inverse: false, add: false));
        return Output(y, (int[])x.Shape.Clone(), x.RequiresGrad, o =>
        {
            T[] gy = o.Grad!;
            T[] gx = GradFor(x, out bool fresh);
            ParallelRange.ForChunks(rows, 32, ThreadCount, (s, e) => Rotate(gy, gx, s, e, geometry, cos, sin, inverse: true, add: !fresh));
        });
    }

    /// <summary>Where the pairs of a rotary embedding lie: pair i of a head is (i, i + Pairs) when HalfSplit, else (2i, 2i+1).</summary>
    private readonly record struct RotaryGeometry(int Seq, int Width, int HeadDim, int Pairs, bool HalfSplit);

    private static void Rotate(T[] src, T[] dst, int rowStart, int rowEnd, RotaryGeometry g, T[] cos, T[] sin, bool inverse, bool add)
    {
        int pairs = g.Pairs, width = g.Width, rotated = 2 * pairs;
        int firstStep = g.HalfSplit ? 1 : 2, partner = g.HalfSplit ? pairs : 1;
        for (int r = rowStart; r < rowEnd; r++)
        {
            int t = r % g.Seq;
            for (int h = 0; h < width; h += g.HeadDim)
            {
                for (int i = 0; i < pairs; i++)
                {
                    int at = r * width + h + firstStep * i, other = at + partner;
                    T c = cos[t * pairs + i];
                    // The backward pass rotates by the opposite angle (the transpose of a rotation).
                    T s = inverse ? -sin[t * pairs + i] : sin[t * pairs + i];
                    T x0 = src[at], x1 = src[other];
                    T y0 = x0 * c - x1 * s, y1 = x0 * s + x1 * c;
                    if (add)
                    {
                        dst[at] += y0;
                        dst[other] += y1;
                    }
                    else
                    {
                        dst[at] = y0;
                        dst[other] = y1;
                    }
                }
                if (rotated < g.HeadDim)
                {
                    // The head's unrotated tail passes through (its gradient too).
                    Span<T> tail = dst.AsSpan(r * width + h + rotated, g.HeadDim - rotated);
                    ReadOnlySpan<T> from = src.AsSpan(r * width + h + rotated, g.HeadDim - rotated);
                    if (add)
                        TensorPrimitives.Add(tail, from, tail);
                    else
                        from.CopyTo(tail);
                }
            }
        }
    }
}
