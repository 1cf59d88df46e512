using SlmKit.Kernels;
using SlmKit.Models;

namespace SlmKit.Tests.Training;

/// <summary>
/// Plain double-precision forward definitions of every training operation, written from the maths and
/// independent of the production code. Finite differences of these are the gradients' ground truth.
/// </summary>
internal static class ReferenceOps
{
    /// <summary>y[r, o] = Σᵢ x[r, i]·w[o, i].</summary>
    public static double[] MatMul(double[] x, int rows, int inF, double[] w, int outF)
    {
        var y = new double[rows * outF];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                double sum = 0;
                for (int i = 0; i < inF; i++)
                    sum += x[r * inF + i] * w[o * inF + i];
                y[r * outF + o] = sum;
            }
        return y;
    }

    public static double[] RmsNorm(double[] x, int rows, int dim, double[] w, double eps)
    {
        var y = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            double ms = 0;
            for (int i = 0; i < dim; i++)
                ms += x[r * dim + i] * x[r * dim + i];
            double scale = 1 / Math.Sqrt(ms / dim + eps);
            for (int i = 0; i < dim; i++)
                y[r * dim + i] = x[r * dim + i] * scale * w[i];
        }
        return y;
    }

    /// <summary>Adjacent pairs (2i, 2i+1) of each head turn by t·θ^(−2i/headDim); row r is at position r mod seq.</summary>
    public static double[] Rope(double[] x, int rows, int width, int seq, int headDim, double theta)
    {
        var y = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            int t = r % seq;
            for (int h = 0; h < width / headDim; h++)
                for (int i = 0; i < headDim / 2; i++)
                {
                    double angle = t * Math.Pow(theta, -2.0 * i / headDim);
                    int a = r * width + h * headDim + 2 * i;
                    y[a] = x[a] * Math.Cos(angle) - x[a + 1] * Math.Sin(angle);
                    y[a + 1] = x[a] * Math.Sin(angle) + x[a + 1] * Math.Cos(angle);
                }
        }
        return y;
    }

    public static double[] Attention(double[] q, double[] k, double[] v, int batch, int seq, int heads, int kvHeads, int headDim)
    {
        int qw = heads * headDim, kw = kvHeads * headDim;
        var y = new double[batch * seq * qw];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
            {
                int kvh = h / (heads / kvHeads);
                for (int i = 0; i < seq; i++)
                {
                    var scores = new double[i + 1];
                    double max = double.NegativeInfinity;
                    for (int j = 0; j <= i; j++)
                    {
                        double dot = 0;
                        for (int d = 0; d < headDim; d++)
                            dot += q[(b * seq + i) * qw + h * headDim + d] * k[(b * seq + j) * kw + kvh * headDim + d];
                        scores[j] = dot / Math.Sqrt(headDim);
                        max = Math.Max(max, scores[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= i; j++)
                        sum += scores[j] = Math.Exp(scores[j] - max);
                    for (int d = 0; d < headDim; d++)
                    {
                        double acc = 0;
                        for (int j = 0; j <= i; j++)
                            acc += scores[j] / sum * v[(b * seq + j) * kw + kvh * headDim + d];
                        y[(b * seq + i) * qw + h * headDim + d] = acc;
                    }
                }
            }
        return y;
    }

    public static double[] SwiGlu(double[] gate, double[] up)
    {
        var y = new double[gate.Length];
        for (int i = 0; i < y.Length; i++)
            y[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
        return y;
    }

    public static double[] Add(double[] a, double[] b)
    {
        var y = new double[a.Length];
        for (int i = 0; i < y.Length; i++)
            y[i] = a[i] + b[i];
        return y;
    }

    public static double[] Embedding(double[] table, int dim, int[] ids)
    {
        var y = new double[ids.Length * dim];
        for (int n = 0; n < ids.Length; n++)
            Array.Copy(table, ids[n] * dim, y, n * dim, dim);
        return y;
    }

    /// <summary>Mean over counted rows of log Σ exp(logits) − logit[target].</summary>
    public static double CrossEntropy(double[] logits, int rows, int vocab, int[] targets, int ignoreIndex)
    {
        double total = 0;
        int count = 0;
        for (int r = 0; r < rows; r++)
        {
            if (targets[r] == ignoreIndex)
                continue;
            double max = double.NegativeInfinity;
            for (int j = 0; j < vocab; j++)
                max = Math.Max(max, logits[r * vocab + j]);
            double sum = 0;
            for (int j = 0; j < vocab; j++)
                sum += Math.Exp(logits[r * vocab + j] - max);
            total += max + Math.Log(sum) - logits[r * vocab + targets[r]];
            count++;
        }
        return count == 0 ? 0 : total / count;
    }

    /// <summary>The whole Llama forward and loss from named tensors, as llama2.c's run.c reads it.</summary>
    public static double LlamaLoss(
        IReadOnlyDictionary<string, double[]> p, int vocab, int dim, int layers, int heads, int kvHeads, int ffn, bool tied,
        int[] tokens, int[] targets, int batch, int seq, double theta = 10000, double eps = 1e-5)
    {
        int n = batch * seq, headDim = dim / heads, kvWidth = kvHeads * headDim;
        double[] x = Embedding(p["token_embd.weight"], dim, tokens);
        for (int l = 0; l < layers; l++)
        {
            string b = $"blk.{l}.";
            double[] h = RmsNorm(x, n, dim, p[b + "attn_norm.weight"], eps);
            double[] q = Rope(MatMul(h, n, dim, p[b + "attn_q.weight"], dim), n, dim, seq, headDim, theta);
            double[] k = Rope(MatMul(h, n, dim, p[b + "attn_k.weight"], kvWidth), n, kvWidth, seq, headDim, theta);
            double[] v = MatMul(h, n, dim, p[b + "attn_v.weight"], kvWidth);
            double[] a = Attention(q, k, v, batch, seq, heads, kvHeads, headDim);
            x = Add(x, MatMul(a, n, dim, p[b + "attn_output.weight"], dim));
            h = RmsNorm(x, n, dim, p[b + "ffn_norm.weight"], eps);
            double[] g = SwiGlu(MatMul(h, n, dim, p[b + "ffn_gate.weight"], ffn), MatMul(h, n, dim, p[b + "ffn_up.weight"], ffn));
            x = Add(x, MatMul(g, n, ffn, p[b + "ffn_down.weight"], dim));
        }
        double[] final = RmsNorm(x, n, dim, p["output_norm.weight"], eps);
        double[] logits = MatMul(final, n, dim, p[tied ? "token_embd.weight" : "output.weight"], vocab);
        return CrossEntropy(logits, n, vocab, targets, -1);
    }

    public static double[] LayerNorm(double[] x, int rows, int dim, double[] w, double[]? b, double eps)
    {
        var y = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, variance = 0;
            for (int i = 0; i < dim; i++)
                mean += x[r * dim + i];
            mean /= dim;
            for (int i = 0; i < dim; i++)
                variance += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
            double scale = 1 / Math.Sqrt(variance / dim + eps);
            for (int i = 0; i < dim; i++)
                y[r * dim + i] = (x[r * dim + i] - mean) * scale * w[i] + (b?[i] ?? 0);
        }
        return y;
    }

    public static double[] AddBias(double[] x, double[] b)
    {
        var y = new double[x.Length];
        for (int i = 0; i < y.Length; i++)
            y[i] = x[i] + b[i % b.Length];
        return y;
    }

    /// <summary>The activations from their definitions: x·σ(x), ½x(1 + tanh(√(2/π)(x + 0.044715x³))), ½x(1 + erf(x/√2)), max(x, 0), max(x, 0)².</summary>
    public static double[] Activation(double[] x, ActivationKind kind)
    {
        var y = new double[x.Length];
        for (int i = 0; i < y.Length; i++)
        {
            double v = x[i];
            y[i] = kind switch
            {
                ActivationKind.Silu => v / (1 + Math.Exp(-v)),
                ActivationKind.GeluTanh => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))),
                ActivationKind.GeluErf => 0.5 * v * (1 + Erf(v / Math.Sqrt(2))),
                ActivationKind.Relu => Math.Max(v, 0),
                _ => Math.Max(v, 0) * Math.Max(v, 0),
            };
        }
        return y;
    }

    /// <summary>erf(x) = 2/√π·e^(−x²)·Σₙ 2ⁿx^(2n+1)/(1·3·…·(2n+1)): positive terms, so no cancellation at any |x| ≤ 6.</summary>
    private static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax > 6)
            return Math.Sign(x);
        double term = ax, sum = ax;
        for (int n = 1; n < 400; n++)
        {
            term *= 2 * ax * ax / (2 * n + 1);
            sum += term;
        }
        return Math.Sign(x) * 2 / Math.Sqrt(Math.PI) * Math.Exp(-ax * ax) * sum;
    }

    /// <summary>
    /// Rotary embedding of the first <paramref name="rotaryDim"/> values of each head: pair i is (2i, 2i+1) or, half-split,
    /// (i, i + rotaryDim/2), turned by t·θ^(−2i/rotaryDim); the rest of the head is copied.
    /// </summary>
    public static double[] Rope(double[] x, int rows, int width, int seq, int headDim, int rotaryDim, double theta, bool halfSplit)
    {
        var y = (double[])x.Clone();
        int pairs = rotaryDim / 2;
        for (int r = 0; r < rows; r++)
        {
            int t = r % seq;
            for (int h = 0; h < width / headDim; h++)
                for (int i = 0; i < pairs; i++)
                {
                    double angle = t * Math.Pow(theta, -2.0 * i / rotaryDim);
                    int a = r * width + h * headDim + (halfSplit ? i : 2 * i), b = a + (halfSplit ? pairs : 1);
                    y[a] = x[a] * Math.Cos(angle) - x[b] * Math.Sin(angle);
                    y[b] = x[a] * Math.Sin(angle) + x[b] * Math.Cos(angle);
                }
        }
        return y;
    }

    /// <summary>
    /// A decoder's loss from named tensors (GGUF names) for the choices of <see cref="DecoderConfig"/> the trainer runs,
    /// written from the maths: embeddings (+ learned positions), per block norm → q/k/v (+ bias) → rotary → causal
    /// attention → output (+ bias), joined to the residual sequentially or in parallel, an MLP gated (SwiGLU) or not,
    /// then the final norm, the head (+ bias) and the cross-entropy.
    /// </summary>
    public static double DecoderLoss(IReadOnlyDictionary<string, double[]> p, DecoderConfig c, int[] tokens, int[] targets, int batch, int seq)
    {
        int n = batch * seq, dim = c.HiddenSize, headDim = c.ResolvedHeadDim, qWidth = c.HeadCount * headDim, kvWidth = c.KvHeadCount * headDim;
        int ffn = c.FeedForwardSize, vocab = c.VocabSize;
        double eps = c.NormEpsilon;
        double[]? Get(string name) => p.TryGetValue(name, out double[]? v) ? v : null;
        double[] Norm(double[] x, string stem) => c.Norm == NormKind.RmsNorm
            ? RmsNorm(x, n, dim, p[stem + ".weight"], eps)
            : LayerNorm(x, n, dim, p[stem + ".weight"], Get(stem + ".bias"), eps);
        double[] Linear(double[] x, int inF, string stem, int outF)
        {
            double[] y = MatMul(x, n, inF, p[stem + ".weight"], outF);
            return Get(stem + ".bias") is { } bias ? AddBias(y, bias) : y;
        }
        double[] Rotate(double[] x, int width) => c.Positions == PositionKind.Rope
            ? Rope(x, n, width, seq, headDim, c.ResolvedRotaryDim, c.RopeTheta, c.RopeLayout == RopeLayout.NeoX)
            : x;

        double[] x = Embedding(p["token_embd.weight"], dim, tokens);
        if (c.Positions == PositionKind.Learned)
            x = Add(x, Embedding(p["position_embd.weight"], dim, [.. Enumerable.Range(0, n).Select(r => r % seq + c.PositionOffset)]));
        for (int l = 0; l < c.LayerCount; l++)
        {
            string b = $"blk.{l}.";
            double[] h = Norm(x, b + "attn_norm");
            double[] q = Rotate(Linear(h, dim, b + "attn_q", qWidth), qWidth);
            double[] k = Rotate(Linear(h, dim, b + "attn_k", kvWidth), kvWidth);
            double[] v = Linear(h, dim, b + "attn_v", kvWidth);
            double[] attention = Linear(Attention(q, k, v, batch, seq, c.HeadCount, c.KvHeadCount, headDim), qWidth, b + "attn_output", dim);
            double[] MlpOf(double[] m) => Linear(
                c.GatedFeedForward ? SwiGlu(Linear(m, dim, b + "ffn_gate", ffn), Linear(m, dim, b + "ffn_up", ffn)) : Activation(Linear(m, dim, b + "ffn_up", ffn), c.Activation),
                ffn, b + "ffn_down", dim);
            x = c.Residual switch
            {
                ResidualKind.Sequential => Add(Add(x, attention), MlpOf(Norm(Add(x, attention), b + "ffn_norm"))),
                ResidualKind.ParallelSharedNorm => Add(Add(x, attention), MlpOf(h)),
                _ => Add(Add(x, attention), MlpOf(Norm(x, b + "ffn_norm"))),
            };
        }
        double[] final = c.FinalNorm ? Norm(x, "output_norm") : x;
        double[] logits = c.TiedEmbeddings ? MatMul(final, n, dim, p["token_embd.weight"], vocab) : Linear(final, dim, "output", vocab);
        return CrossEntropy(logits, n, vocab, targets, -1);
    }

    /// <summary>Σ y ⊙ r: turns a tensor output into the scalar whose gradient backward computes with seed r.</summary>
    public static double Project(double[] y, double[] r)
    {
        double sum = 0;
        for (int i = 0; i < y.Length; i++)
            sum += y[i] * r[i];
        return sum;
    }

    /// <summary>Central differences of <paramref name="f"/> with respect to every element of <paramref name="x"/> (restored afterwards).</summary>
    public static double[] NumericGradient(double[] x, Func<double> f, double step = 1e-5)
    {
        var g = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double saved = x[i];
            x[i] = saved + step;
            double plus = f();
            x[i] = saved - step;
            double minus = f();
            x[i] = saved;
            g[i] = (plus - minus) / (2 * step);
        }
        return g;
    }

    /// <summary>max |analytic − numeric| / max |numeric|: the error relative to the gradient's scale.</summary>
    public static double RelativeError(double[] analytic, double[] numeric)
    {
        double worst = 0, scale = 0;
        for (int i = 0; i < numeric.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(analytic[i] - numeric[i]));
            scale = Math.Max(scale, Math.Abs(numeric[i]));
        }
        return worst / Math.Max(scale, 1e-300);
    }

    public static double[] Random(Random rng, int length, double scale = 1)
    {
        var a = new double[length];
        for (int i = 0; i < length; i++)
            a[i] = (rng.NextDouble() * 2 - 1) * scale;
        return a;
    }
}
