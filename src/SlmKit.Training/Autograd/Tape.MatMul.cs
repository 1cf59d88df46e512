using System.Numerics;

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
}
