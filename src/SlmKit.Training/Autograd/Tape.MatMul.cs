using System.Numerics;
using System.Numerics.Tensors;

namespace SlmKit.Training;

public sealed partial class Tape<T>
{
    /// <summary>
    /// A linear layer without bias: y = x·Wᵀ for x [rows, in] and a weight stored [out, in] as in GGUF and
    /// PyTorch; y is [rows, out]. Backward: dx = dy·W and dW += dyᵀ·x, all three through the blocked kernel.
    /// </summary>
    public Variable<T> MatMul(Variable<T> x, Variable<T> weight)
    {
        Require(x.Shape.Length == 2 && weight.Shape.Length == 2 && x.Shape[1] == weight.Shape[1],
            $"MatMul: x [{string.Join(", ", x.Shape)}] cannot multiply a weight [{string.Join(", ", weight.Shape)}] (want x [rows, in], weight [out, in])");
        int rows = x.Shape[0], inF = x.Shape[1], outF = weight.Shape[0];
        T[] y = Borrow(rows * outF);
        T[] xv = x.Value, wv = weight.Value;
        // B(k, j) = W[j, k]: the weight read transposed (row stride 1, column stride in).
        Gemm<T>.Multiply(rows, outF, inF, xv, 0, inF, 1, wv, 0, 1, inF, y, 0, outF, accumulate: false, ThreadCount);
        return Output(y, [rows, outF], x.RequiresGrad || weight.RequiresGrad, o =>
        {
            T[] gy = o.Grad!;
            if (x.RequiresGrad)
            {
                T[] gx = GradFor(x, out bool fresh);
                Gemm<T>.Multiply(rows, inF, outF, gy, 0, outF, 1, wv, 0, inF, 1, gx, 0, inF, accumulate: !fresh, ThreadCount);
            }
            if (weight.RequiresGrad)
            {
                // dW[o, i] = Σ_r dy[r, o]·x[r, i]: A(o, r) = dy[r, o] is dy read transposed.
                T[] gw = GradFor(weight, out bool fresh);
                Gemm<T>.Multiply(outF, inF, rows, gy, 0, 1, outF, xv, 0, inF, 1, gw, 0, inF, accumulate: !fresh, ThreadCount);
            }
        });
    }

    /// <summary>
    /// A linear layer's bias: y = x + b for every row of <paramref name="x"/> [rows, n] and <paramref name="bias"/> [n].
    /// Backward: dx = dy; db += the sum of dy's rows, in row order.
    /// </summary>
    public Variable<T> AddBias(Variable<T> x, Variable<T> bias)
    {
        int n = x.Shape[^1];
        Require(bias.Length == n, $"AddBias: bias has {bias.Length} values, rows of x [{string.Join(", ", x.Shape)}] have {n}");
        int rows = x.Length / n;
        T[] y = Borrow(x.Length);
        T[] xv = x.Value, bv = bias.Value;
        ParallelRange.ForChunks(rows, 16, ThreadCount, (s, e) =>
        {
            for (int r = s; r < e; r++)
                TensorPrimitives.Add(xv.AsSpan(r * n, n), bv, y.AsSpan(r * n, n));
        });
        return Output(y, (int[])x.Shape.Clone(), x.RequiresGrad || bias.RequiresGrad, o =>
        {
            T[] gy = o.Grad!;
            if (x.RequiresGrad)
                PassGradient(x, gy);
            if (bias.RequiresGrad)
            {
                T[] gb = GradForAdding(bias);
                for (int r = 0; r < rows; r++)
                    TensorPrimitives.Add(gb, gy.AsSpan(r * n, n), gb);
            }
        });
    }
}
