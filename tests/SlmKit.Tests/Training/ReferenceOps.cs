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
