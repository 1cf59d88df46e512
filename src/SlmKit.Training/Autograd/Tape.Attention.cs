using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace SlmKit.Training;

public sealed partial class Tape<T>
{
    // Causal attention works in blocks of query rows so the products skip most of the masked upper triangle.
    private const int AttentionRowBlock = 64;

    /// <summary>
    /// Causal scaled-dot-product self-attention with grouped-query heads. <paramref name="q"/> is
    /// [batch·seq, heads·headDim], <paramref name="k"/> and <paramref name="v"/> are [batch·seq, kvHeads·headDim];
    /// query head h reads key/value head h / (heads / kvHeads). The result is [batch·seq, heads·headDim].
    /// Forward and backward are fused per head; the softmax probabilities (batch·heads·seq² values) are the only
    /// thing saved.
    /// </summary>
    public Variable<T> CausalSelfAttention(Variable<T> q, Variable<T> k, Variable<T> v, int batch, int seq, int heads, int kvHeads)
    {
        Require(heads > 0 && kvHeads > 0 && heads % kvHeads == 0, $"CausalSelfAttention: {heads} heads cannot share {kvHeads} key/value heads");
        Require(q.Shape.Length == 2 && q.Shape[0] == batch * seq && q.Shape[1] % heads == 0,
            $"CausalSelfAttention: q [{string.Join(", ", q.Shape)}] is not [{batch}·{seq}, heads·headDim]");
        int headDim = q.Shape[1] / heads;
        int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
        Require(k.Shape.Length == 2 && v.Shape.Length == 2 && k.Shape[0] == batch * seq && v.Shape[0] == batch * seq && k.Shape[1] == kvWidth && v.Shape[1] == kvWidth,
            $"CausalSelfAttention: k [{string.Join(", ", k.Shape)}] and v [{string.Join(", ", v.Shape)}] must be [{batch * seq}, {kvWidth}]");
        int group = heads / kvHeads;
        T scale = T.One / T.Sqrt(T.CreateChecked(headDim));
        T[] qv = q.Value, kv = k.Value, vv = v.Value;
        T[] y = Borrow(q.Length);
        T[] probabilities = Borrow(batch * heads * seq * seq);

        ParallelRange.For(batch * heads, ThreadCount, bh =>
        {
            int b = bh / heads, h = bh % heads, kvh = h / group;
            int pBase = bh * seq * seq;
            int qBase = b * seq * qWidth + h * headDim;
            int kvBase = b * seq * kvWidth + kvh * headDim;
            for (int r0 = 0; r0 < seq; r0 += AttentionRowBlock)
            {
                int rows = Math.Min(AttentionRowBlock, seq - r0), cols = r0 + rows;
                // S = Q Kᵀ for this block of query rows, only over the keys they may see.
                Gemm<T>.Multiply(rows, cols, headDim, qv, qBase + r0 * qWidth, qWidth, 1, kv, kvBase, 1, kvWidth,
                    probabilities, pBase + r0 * seq, seq, accumulate: false, threads: 1);
            }
            for (int i = 0; i < seq; i++)
            {
                Span<T> row = probabilities.AsSpan(pBase + i * seq, seq);
                Span<T> visible = row[..(i + 1)];
                // softmax(scale·s): the scale is positive, so the largest scaled score is scale·max(s).
                T sum = FusedRowMath<T>.ExpShiftedSum(visible, TensorPrimitives.Max<T>(visible), scale);
                TensorPrimitives.Multiply(visible, T.One / sum, visible);
                row[(i + 1)..].Clear();
            }
            for (int r0 = 0; r0 < seq; r0 += AttentionRowBlock)
            {
                int rows = Math.Min(AttentionRowBlock, seq - r0), cols = r0 + rows;
                // O = P V
                Gemm<T>.Multiply(rows, headDim, cols, probabilities, pBase + r0 * seq, seq, 1, vv, kvBase, kvWidth, 1,
                    y, qBase + r0 * qWidth, qWidth, accumulate: false, threads: 1);
            }
        });

        return Output(y, [batch * seq, qWidth], q.RequiresGrad || k.RequiresGrad || v.RequiresGrad, o =>
        {
            T[] gy = o.Grad!;
            T[]? gq = null, gk = null, gv = null;
            bool freshQ = false, freshK = false, freshV = false;
            if (q.RequiresGrad)
                gq = GradFor(q, out freshQ);
            if (k.RequiresGrad)
                gk = GradFor(k, out freshK);
            if (v.RequiresGrad)
                gv = GradFor(v, out freshV);

            // One work item per (sequence, key/value head): the query heads sharing a key/value head add into
            // its gradient one after another, in a fixed order, with no other thread touching it.
            ParallelRange.For(batch * kvHeads, ThreadCount, item =>
            {
                int b = item / kvHeads, kvh = item % kvHeads;
                int kvBase = b * seq * kvWidth + kvh * headDim;
                T[] dScores = ArrayPool<T>.Shared.Rent(seq * seq);
                try
                {
                    for (int hInGroup = 0; hInGroup < group; hInGroup++)
                    {
                        int h = kvh * group + hInGroup;
                        int pBase = (b * heads + h) * seq * seq;
                        int qBase = b * seq * qWidth + h * headDim;
                        bool first = hInGroup == 0;
                        for (int r0 = 0; r0 < seq; r0 += AttentionRowBlock)
                        {
                            int rows = Math.Min(AttentionRowBlock, seq - r0), cols = r0 + rows;
                            // dP = dO Vᵀ
                            Gemm<T>.Multiply(rows, cols, headDim, gy, qBase + r0 * qWidth, qWidth, 1, vv, kvBase, 1, kvWidth,
                                dScores, r0 * seq, seq, accumulate: false, threads: 1);
                        }
                        for (int i = 0; i < seq; i++)
                        {
                            // dS = P ⊙ (dP − Σⱼ P·dP), times the score scale, in place.
                            ReadOnlySpan<T> p = probabilities.AsSpan(pBase + i * seq, i + 1);
                            Span<T> d = dScores.AsSpan(i * seq, seq);
                            Span<T> visible = d[..(i + 1)];
                            FusedRowMath<T>.SoftmaxBackward(p, visible, TensorPrimitives.Dot(p, visible), scale);
                            d[(i + 1)..].Clear();
                        }
                        for (int r0 = 0; r0 < seq; r0 += AttentionRowBlock)
                        {
                            int rows = Math.Min(AttentionRowBlock, seq - r0), cols = r0 + rows;
                            if (gq is not null) // dQ = dS K
                                Gemm<T>.Multiply(rows, headDim, cols, dScores, r0 * seq, seq, 1, kv, kvBase, kvWidth, 1,
                                    gq, qBase + r0 * qWidth, qWidth, accumulate: !freshQ, threads: 1);
                            // Key/value rows r0.. see queries r0..seq-1: dK = dSᵀ Q, dV = Pᵀ dO.
                            int span = seq - r0;
                            if (gk is not null)
                                Gemm<T>.Multiply(rows, headDim, span, dScores, r0 * seq + r0, 1, seq, qv, qBase + r0 * qWidth, qWidth, 1,
                                    gk, kvBase + r0 * kvWidth, kvWidth, accumulate: !(freshK && first), threads: 1);
                            if (gv is not null)
                                Gemm<T>.Multiply(rows, headDim, span, probabilities, pBase + r0 * seq + r0, 1, seq, gy, qBase + r0 * qWidth, qWidth, 1,
                                    gv, kvBase + r0 * kvWidth, kvWidth, accumulate: !(freshV && first), threads: 1);
                        }
                    }
                }
                finally
                {
                    ArrayPool<T>.Shared.Return(dScores);
                }
            });
        });
    }
}
