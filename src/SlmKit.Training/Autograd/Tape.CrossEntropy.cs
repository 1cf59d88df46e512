using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace SlmKit.Training;

public sealed partial class Tape<T>
{
    /// <summary>
    /// Mean cross-entropy of <paramref name="logits"/> [rows, vocab] against <paramref name="targets"/> (one class
    /// per row; rows whose target is <paramref name="ignoreIndex"/> do not count). Log-softmax and the negative
    /// log-likelihood are fused: forward saves one log-sum-exp per row, and backward writes softmax − one-hot
    /// straight into the logits' gradient. The result is a scalar (shape [1]); 0 when no target counts.
    /// </summary>
    public Variable<T> CrossEntropy(Variable<T> logits, int[] targets, int ignoreIndex = -1)
    {
        Require(logits.Shape.Length == 2 && logits.Shape[0] == targets.Length,
            $"CrossEntropy: logits [{string.Join(", ", logits.Shape)}] need one target per row (got {targets.Length})");
        int rows = logits.Shape[0], vocab = logits.Shape[1];
        int counted = 0;
        foreach (int target in targets)
        {
            if (target == ignoreIndex)
                continue;
            if ((uint)target >= (uint)vocab)
                throw new SlmKitException($"target {target} is outside the vocabulary of {vocab} (and is not the ignore index {ignoreIndex})");
            counted++;
        }

        T[] lv = logits.Value;
        T[] logSumExp = Borrow(rows);
        T[] rowLoss = Borrow(rows);
        ParallelRange.ForChunks(rows, 8, ThreadCount, (s, e) =>
        {
            T[] scratch = ArrayPool<T>.Shared.Rent(vocab);
            for (int r = s; r < e; r++)
            {
                ReadOnlySpan<T> row = lv.AsSpan(r * vocab, vocab);
                Span<T> shifted = scratch.AsSpan(0, vocab);
                T max = TensorPrimitives.Max(row);
                T lse = max + T.Log(FusedRowMath<T>.ExpShiftedSum(row, shifted, max, T.One));
                logSumExp[r] = lse;
                rowLoss[r] = targets[r] == ignoreIndex ? T.Zero : lse - row[targets[r]];
            }
            ArrayPool<T>.Shared.Return(scratch);
        });
        // Summed in row order (in double) so the loss does not depend on the thread count.
        double total = 0;
        for (int r = 0; r < rows; r++)
            total += double.CreateChecked(rowLoss[r]);
        T[] loss = Borrow(1);
        loss[0] = counted == 0 ? T.Zero : T.CreateChecked(total / counted);

        return Output(loss, [1], logits.RequiresGrad, o =>
        {
            T perTarget = counted == 0 ? T.Zero : o.Grad![0] / T.CreateChecked(counted);
            T[] g = GradFor(logits, out bool fresh);
            ParallelRange.ForChunks(rows, 8, ThreadCount, (s, e) =>
            {
                T[] scratch = ArrayPool<T>.Shared.Rent(vocab);
                for (int r = s; r < e; r++)
                {
                    Span<T> dst = g.AsSpan(r * vocab, vocab);
                    int target = targets[r];
                    if (target == ignoreIndex)
                    {
                        if (fresh)
                            dst.Clear();
                        continue;
                    }
                    // d loss / d logit = (softmax − one-hot) / counted
                    Span<T> d = fresh ? dst : scratch.AsSpan(0, vocab);
                    FusedRowMath<T>.ExpShiftedSum(lv.AsSpan(r * vocab, vocab), d, logSumExp[r], T.One);
                    TensorPrimitives.Multiply(d, perTarget, d);
                    d[target] -= perTarget;
                    if (!fresh)
                        TensorPrimitives.Add(dst, d, dst);
                }
                ArrayPool<T>.Shared.Return(scratch);
            });
        });
    }
}
