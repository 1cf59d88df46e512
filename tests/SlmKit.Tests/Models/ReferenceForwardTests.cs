using System.Runtime.InteropServices;
using SlmKit.Formats;
using SlmKit.Models;
using SlmKit.Tensors;

namespace SlmKit.Tests.Models;

/// <summary>
/// The families llama.cpp lacks (OPT, GPT-Neo, XGLM) against a float64 forward pass written here, directly from the
/// published definitions (transformers' modeling_opt.py, modeling_gpt_neo.py, modeling_xglm.py), as plain loops over
/// the weights this test generates under their Hugging Face names. No production code is on the reference path: the
/// production side is <see cref="ModelLoader.Load(string)"/> of the folder this test writes (safetensors + config.json).
/// </summary>
public sealed class ReferenceForwardTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-reference-").FullName;

    private const int Vocab = 100;

    /// <summary>Random F32 weights by Hugging Face name, written to a safetensors file and read back here as doubles.</summary>
    private sealed class Checkpoint(int seed)
    {
        private readonly Random _random = new(seed);
        private readonly Dictionary<string, (long[] Dims, float[] Values)> _tensors = new(StringComparer.Ordinal);

        public long ElementCount => _tensors.Values.Sum(t => (long)t.Values.Length);

        public void Add(string name, long[] dims, double scale, double offset = 0)
        {
            var values = new float[dims.Aggregate(1L, (a, b) => a * b)];
            for (int i = 0; i < values.Length; i++)
                values[i] = (float)(offset + (_random.NextDouble() * 2 - 1) * scale);
            _tensors.Add(name, (dims, values));
        }

        public void Linear(string stem, int rows, int cols, bool bias)
        {
            Add(stem + ".weight", [rows, cols], 1.5 / Math.Sqrt(cols));
            if (bias)
                Add(stem + ".bias", [rows], 0.1);
        }

        public void LayerNorm(string stem, int d)
        {
            Add(stem + ".weight", [d], 0.2, 1.0);
            Add(stem + ".bias", [d], 0.1);
        }

        public double[] this[string name] => Array.ConvertAll(_tensors[name].Values, v => (double)v);

        public void Write(string folder, string configJson)
        {
            Directory.CreateDirectory(folder);
            SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), _tensors.Select(t =>
                new SafeTensorEntry(t.Key, GgmlType.F32, t.Value.Dims, MemoryMarshal.AsBytes(t.Value.Values.AsSpan()).ToArray())));
            File.WriteAllText(Path.Combine(folder, "config.json"), configJson);
        }
    }

    // ---- float64 building blocks ----

    private static double[] LayerNorm(double[] x, double[] w, double[] b, double eps = 1e-5)
    {
        double mean = x.Average();
        double variance = x.Select(v => (v - mean) * (v - mean)).Average();
        double inv = 1 / Math.Sqrt(variance + eps);
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
            y[i] = (x[i] - mean) * inv * w[i] + b[i];
        return y;
    }

    /// <summary>y = W·x + b with W stored [out, in] (torch.nn.Linear).</summary>
    private static double[] Linear(double[] x, double[] w, double[]? b)
    {
        int cols = x.Length, rows = w.Length / cols;
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double sum = b?[r] ?? 0;
            for (int c = 0; c < cols; c++)
                sum += w[r * cols + c] * x[c];
            y[r] = sum;
        }
        return y;
    }

    private static double[] Add(double[] a, double[] b) => [.. a.Zip(b, (x, y) => x + y)];

    private static double Relu(double x) => Math.Max(0, x);

    private static double GeluNew(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    /// <summary>Exact GELU, x·Φ(x), with erf from its Maclaurin series (|x| ≤ 6; ±1 beyond to double precision).</summary>
    private static double GeluErf(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));

    private static double Erf(double x)
    {
        if (Math.Abs(x) > 6)
            return Math.Sign(x);
        double term = x, sum = x;
        for (int n = 1; n < 200; n++)
        {
            term *= -x * x / n;
            sum += term / (2 * n + 1);
        }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }

    /// <summary>
    /// Causal multi-head attention over all positions: scores = scale·q·k, key j visible to query i when j ≤ i and
    /// (window = 0 or i − j &lt; window); softmax; weighted sum of v. q, k, v: [position][heads·headDim].
    /// </summary>
    private static double[][] Attention(double[][] q, double[][] k, double[][] v, int heads, double scale, int window)
    {
        int n = q.Length, headDim = q[0].Length / heads;
        var output = new double[n][];
        for (int i = 0; i < n; i++)
        {
            output[i] = new double[heads * headDim];
            for (int h = 0; h < heads; h++)
            {
                var scores = new double[i + 1];
                double max = double.NegativeInfinity;
                for (int j = 0; j <= i; j++)
                {
                    if (window > 0 && i - j >= window)
                    {
                        scores[j] = double.NegativeInfinity;
                        continue;
                    }
                    double dot = 0;
                    for (int e = 0; e < headDim; e++)
                        dot += q[i][h * headDim + e] * k[j][h * headDim + e];
                    scores[j] = dot * scale;
                    max = Math.Max(max, scores[j]);
                }
                double total = 0;
                for (int j = 0; j <= i; j++)
                {
                    scores[j] = double.IsNegativeInfinity(scores[j]) ? 0 : Math.Exp(scores[j] - max);
                    total += scores[j];
                }
                for (int j = 0; j <= i; j++)
                {
                    for (int e = 0; e < headDim; e++)
                        output[i][h * headDim + e] += scores[j] / total * v[j][h * headDim + e];
                }
            }
        }
        return output;
    }

    /// <summary>Row <paramref name="index"/> of a [rows, d] table.</summary>
    private static double[] Row(double[] table, int index, int d) => table.AsSpan(index * d, d).ToArray();

    /// <summary>logits = E·x for a head tied to the token embeddings [vocab, d].</summary>
    private static double[] TiedHead(double[] x, double[] embedding) => Linear(x, embedding, null);

    // ---- OPT (modeling_opt.py: pre-norm with do_layer_norm_before true, post-norm without; project_in/out when
    // word_embed_proj_dim ≠ hidden_size) ----

    private static Checkpoint OptCheckpoint(string prefix, int d, int layers, int ffn, int context, int seed, bool preNorm = true, int embedDim = 0)
    {
        var w = new Checkpoint(seed);
        string p = prefix + "decoder.";
        int e = embedDim > 0 ? embedDim : d;
        w.Add(p + "embed_tokens.weight", [Vocab, e], 1.0);
        w.Add(p + "embed_positions.weight", [context + 2, d], 0.5); // OPTLearnedPositionalEmbedding: max_position_embeddings + offset 2 rows, hidden wide
        if (e != d)
        {
            w.Linear(p + "project_in", d, e, bias: false);
            w.Linear(p + "project_out", e, d, bias: false);
        }
        for (int l = 0; l < layers; l++)
        {
            string b = $"{p}layers.{l}.";
            w.LayerNorm(b + "self_attn_layer_norm", d);
            foreach (string proj in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
                w.Linear(b + "self_attn." + proj, d, d, bias: true);
            w.LayerNorm(b + "final_layer_norm", d);
            w.Linear(b + "fc1", ffn, d, bias: true);
            w.Linear(b + "fc2", d, ffn, bias: true);
        }
        if (preNorm) // OPTDecoder has a final_layer_norm only with do_layer_norm_before (and no _remove_final_layer_norm)
            w.LayerNorm(p + "final_layer_norm", d);
        return w;
    }

    private static double[][] OptReference(Checkpoint w, string prefix, int[] tokens, int d, int heads, int layers, bool preNorm = true, int embedDim = 0)
    {
        string p = prefix + "decoder.";
        int n = tokens.Length, e = embedDim > 0 ? embedDim : d;
        double[] embed = w[p + "embed_tokens.weight"], positions = w[p + "embed_positions.weight"];
        // No padding: attention_mask is all ones, positions = cumsum(mask) − 1 = t, looked up at t + 2. project_in
        // (no bias) maps the e-wide token embedding to d before the d-wide position row is added.
        var x = new double[n][];
        for (int t = 0; t < n; t++)
        {
            var token = Row(embed, tokens[t], e);
            if (e != d)
                token = Linear(token, w[p + "project_in.weight"], null);
            x[t] = Add(token, Row(positions, t + 2, d));
        }
        for (int l = 0; l < layers; l++)
        {
            string b = $"{p}layers.{l}.";
            // Pre-norm: h = LN(x), x += Attn(h). Post-norm (OPT-350m): h = x, x = LN(x + Attn(h)).
            var h = preNorm ? x.Select(v => LayerNorm(v, w[b + "self_attn_layer_norm.weight"], w[b + "self_attn_layer_norm.bias"])).ToArray() : x;
            // OPTAttention: q_proj(h) · head_dim^−0.5.
            var q = h.Select(v => Linear(v, w[b + "self_attn.q_proj.weight"], w[b + "self_attn.q_proj.bias"])).ToArray();
            var k = h.Select(v => Linear(v, w[b + "self_attn.k_proj.weight"], w[b + "self_attn.k_proj.bias"])).ToArray();
            var v2 = h.Select(v => Linear(v, w[b + "self_attn.v_proj.weight"], w[b + "self_attn.v_proj.bias"])).ToArray();
            var attended = Attention(q, k, v2, heads, 1 / Math.Sqrt(d / heads), window: 0);
            var next = new double[n][];
            for (int t = 0; t < n; t++)
            {
                next[t] = Add(x[t], Linear(attended[t], w[b + "self_attn.out_proj.weight"], w[b + "self_attn.out_proj.bias"]));
                if (!preNorm)
                    next[t] = LayerNorm(next[t], w[b + "self_attn_layer_norm.weight"], w[b + "self_attn_layer_norm.bias"]);
            }
            x = next;
            for (int t = 0; t < n; t++)
            {
                var m = preNorm ? LayerNorm(x[t], w[b + "final_layer_norm.weight"], w[b + "final_layer_norm.bias"]) : x[t];
                var up = Linear(m, w[b + "fc1.weight"], w[b + "fc1.bias"]).Select(Relu).ToArray();
                x[t] = Add(x[t], Linear(up, w[b + "fc2.weight"], w[b + "fc2.bias"]));
                if (!preNorm)
                    x[t] = LayerNorm(x[t], w[b + "final_layer_norm.weight"], w[b + "final_layer_norm.bias"]);
            }
        }
        // The decoder's final_layer_norm (pre-norm only), then project_out (no bias) back to e, then the tied head.
        return [.. x.Select(v =>
        {
            var y = preNorm ? LayerNorm(v, w[p + "final_layer_norm.weight"], w[p + "final_layer_norm.bias"]) : v;
            return TiedHead(e != d ? Linear(y, w[p + "project_out.weight"], null) : y, embed);
        })];
    }

    // ---- GPT-Neo (modeling_gpt_neo.py) ----

    private static Checkpoint GptNeoCheckpoint(int d, int layers, int ffn, int context, int seed)
    {
        var w = new Checkpoint(seed);
        w.Add("transformer.wte.weight", [Vocab, d], 1.0);
        w.Add("transformer.wpe.weight", [context, d], 0.5);
        for (int l = 0; l < layers; l++)
        {
            string b = $"transformer.h.{l}.";
            w.LayerNorm(b + "ln_1", d);
            foreach (string proj in new[] { "q_proj", "k_proj", "v_proj" })
                w.Linear(b + "attn.attention." + proj, d, d, bias: false);
            w.Linear(b + "attn.attention.out_proj", d, d, bias: true);
            w.LayerNorm(b + "ln_2", d);
            w.Linear(b + "mlp.c_fc", ffn, d, bias: true);
            w.Linear(b + "mlp.c_proj", d, ffn, bias: true);
        }
        w.LayerNorm("transformer.ln_f", d);
        return w;
    }

    private static double[][] GptNeoReference(Checkpoint w, int[] tokens, int d, int heads, string[] attentionLayers, int window)
    {
        int n = tokens.Length;
        double[] wte = w["transformer.wte.weight"], wpe = w["transformer.wpe.weight"];
        var x = new double[n][];
        for (int t = 0; t < n; t++)
            x[t] = Add(Row(wte, tokens[t], d), Row(wpe, t, d));
        for (int l = 0; l < attentionLayers.Length; l++)
        {
            string b = $"transformer.h.{l}.";
            var h = x.Select(v => LayerNorm(v, w[b + "ln_1.weight"], w[b + "ln_1.bias"])).ToArray();
            var q = h.Select(v => Linear(v, w[b + "attn.attention.q_proj.weight"], null)).ToArray();
            var k = h.Select(v => Linear(v, w[b + "attn.attention.k_proj.weight"], null)).ToArray();
            var v2 = h.Select(v => Linear(v, w[b + "attn.attention.v_proj.weight"], null)).ToArray();
            // GPTNeoSelfAttention: raw q·k (no 1/√d); a "local" layer masks keys at distance ≥ window_size.
            var attended = Attention(q, k, v2, heads, scale: 1, window: attentionLayers[l] == "local" ? window : 0);
            for (int t = 0; t < n; t++)
                x[t] = Add(x[t], Linear(attended[t], w[b + "attn.attention.out_proj.weight"], w[b + "attn.attention.out_proj.bias"]));
            for (int t = 0; t < n; t++)
            {
                var m = LayerNorm(x[t], w[b + "ln_2.weight"], w[b + "ln_2.bias"]);
                var up = Linear(m, w[b + "mlp.c_fc.weight"], w[b + "mlp.c_fc.bias"]).Select(GeluNew).ToArray();
                x[t] = Add(x[t], Linear(up, w[b + "mlp.c_proj.weight"], w[b + "mlp.c_proj.bias"]));
            }
        }
        return [.. x.Select(v => TiedHead(LayerNorm(v, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"]), wte))];
    }

    // ---- XGLM (modeling_xglm.py) ----

    private static Checkpoint XglmCheckpoint(int d, int layers, int ffn, int seed)
    {
        var w = new Checkpoint(seed);
        w.Add("model.embed_tokens.weight", [Vocab, d], 0.3);
        for (int l = 0; l < layers; l++)
        {
            string b = $"model.layers.{l}.";
            w.LayerNorm(b + "self_attn_layer_norm", d);
            foreach (string proj in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
                w.Linear(b + "self_attn." + proj, d, d, bias: true);
            w.LayerNorm(b + "final_layer_norm", d);
            w.Linear(b + "fc1", ffn, d, bias: true);
            w.Linear(b + "fc2", d, ffn, bias: true);
        }
        w.LayerNorm("model.layer_norm", d);
        return w;
    }

    /// <summary>
    /// XGLMSinusoidalPositionalEmbedding.get_embedding, row <paramref name="index"/>: with half = d/2 and
    /// f_i = exp(−i·ln 10000/(half − 1)), the row is [sin(index·f_0..half−1), cos(index·f_0..half−1)] (+ a 0 for odd d).
    /// </summary>
    private static double[] XglmSinusoid(int index, int d)
    {
        int half = d / 2;
        var row = new double[d];
        for (int i = 0; i < half; i++)
        {
            double frequency = Math.Exp(i * -(Math.Log(10000) / (half - 1)));
            row[i] = Math.Sin(index * frequency);
            row[half + i] = Math.Cos(index * frequency);
        }
        return row;
    }

    private static double[][] XglmReference(Checkpoint w, int[] tokens, int d, int heads, int layers)
    {
        int n = tokens.Length;
        double[] embed = w["model.embed_tokens.weight"];
        // scale_embedding: inputs_embeds · √d_model; positions t + offset 2 (padding_idx 1 + 1 without padding).
        var x = new double[n][];
        for (int t = 0; t < n; t++)
            x[t] = Add([.. Row(embed, tokens[t], d).Select(v => v * Math.Sqrt(d))], XglmSinusoid(t + 2, d));
        for (int l = 0; l < layers; l++)
        {
            string b = $"model.layers.{l}.";
            var h = x.Select(v => LayerNorm(v, w[b + "self_attn_layer_norm.weight"], w[b + "self_attn_layer_norm.bias"])).ToArray();
            var q = h.Select(v => Linear(v, w[b + "self_attn.q_proj.weight"], w[b + "self_attn.q_proj.bias"])).ToArray();
            var k = h.Select(v => Linear(v, w[b + "self_attn.k_proj.weight"], w[b + "self_attn.k_proj.bias"])).ToArray();
            var v2 = h.Select(v => Linear(v, w[b + "self_attn.v_proj.weight"], w[b + "self_attn.v_proj.bias"])).ToArray();
            var attended = Attention(q, k, v2, heads, 1 / Math.Sqrt(d / heads), window: 0);
            for (int t = 0; t < n; t++)
                x[t] = Add(x[t], Linear(attended[t], w[b + "self_attn.out_proj.weight"], w[b + "self_attn.out_proj.bias"]));
            for (int t = 0; t < n; t++)
            {
                var m = LayerNorm(x[t], w[b + "final_layer_norm.weight"], w[b + "final_layer_norm.bias"]);
                var up = Linear(m, w[b + "fc1.weight"], w[b + "fc1.bias"]).Select(GeluErf).ToArray();
                x[t] = Add(x[t], Linear(up, w[b + "fc2.weight"], w[b + "fc2.bias"]));
            }
        }
        return [.. x.Select(v => TiedHead(LayerNorm(v, w["model.layer_norm.weight"], w["model.layer_norm.bias"]), embed))];
    }

    // ---- shared comparison ----

    private static int[] Tokens(int count, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(i => i == 0 ? 2 : random.Next(3, Vocab))];
    }

    /// <summary>Loads the folder, checks family and parameter count, and compares every position's logits with the
    /// reference, once as one prompt and once fed token by token through the cache.</summary>
    private static void AssertMatches(string folder, string family, long parameters, int[] tokens, double[][] expected)
    {
        using var model = ModelLoader.Load(folder);
        Assert.Equal(family, model.Info.Family);
        Assert.Equal(parameters, model.Info.ParameterCount);
        Assert.Equal(((DecoderModel)model).Config.ParameterCount(), model.Info.ParameterCount);
        Assert.Equal(Vocab, model.VocabSize);

        double scale = expected.SelectMany(r => r).Max(Math.Abs);
        Assert.True(scale > 1, $"logit scale {scale} too small for a meaningful comparison");
        double tolerance = 1e-4 * scale;

        var all = new float[tokens.Length * Vocab];
        model.Forward(model.CreateCache(tokens.Length), tokens, all, allPositions: true);
        var stepCache = model.CreateCache(tokens.Length);
        var step = new float[Vocab];
        for (int t = 0; t < tokens.Length; t++)
        {
            model.Forward(stepCache, [tokens[t]], step, allPositions: false);
            for (int i = 0; i < Vocab; i++)
            {
                Assert.True(Math.Abs(all[t * Vocab + i] - expected[t][i]) <= tolerance,
                    $"prompt, position {t}, logit {i}: {all[t * Vocab + i]} vs reference {expected[t][i]} (scale {scale:G4})");
                Assert.True(Math.Abs(step[i] - expected[t][i]) <= tolerance,
                    $"token by token, position {t}, logit {i}: {step[i]} vs reference {expected[t][i]} (scale {scale:G4})");
            }
        }
    }

    [Theory]
    [InlineData("model.", true, 48)] // saved from OPTForCausalLM
    [InlineData("", true, 48)] // saved from the bare OPTModel, as facebook/opt-125m is
    [InlineData("", false, 32)] // OPT-350m's shape: post-norm blocks, no final norm, project_in/out (embeddings narrower than hidden)
    [InlineData("model.", false, 64)] // the same with embeddings wider than hidden
    public void Opt_matches_the_float64_reference_at_every_position(string prefix, bool preNorm, int embedDim)
    {
        const int d = 48, heads = 4, layers = 2, ffn = 128, context = 64;
        var w = OptCheckpoint(prefix, d, layers, ffn, context, seed: 501, preNorm, embedDim);
        string folder = Path.Combine(_folder, $"opt{prefix.TrimEnd('.')}-{preNorm}-{embedDim}");
        w.Write(folder, $$"""
            {"_name_or_path": "random-opt", "activation_dropout": 0.0, "activation_function": "relu", "architectures": ["OPTForCausalLM"],
             "attention_dropout": 0.0, "bos_token_id": 2, "do_layer_norm_before": {{(preNorm ? "true" : "false")}}, "dropout": 0.1, "enable_bias": true, "eos_token_id": 2,
             "ffn_dim": {{ffn}}, "hidden_size": {{d}}, "init_std": 0.02, "layer_norm_elementwise_affine": true, "layerdrop": 0.0,
             "max_position_embeddings": {{context}}, "model_type": "opt", "num_attention_heads": {{heads}}, "num_hidden_layers": {{layers}},
             "pad_token_id": 1, "prefix": "</s>", "torch_dtype": "float32", "use_cache": true, "vocab_size": {{Vocab}}, "word_embed_proj_dim": {{embedDim}}}
            """);
        int[] tokens = Tokens(20, 502);
        AssertMatches(folder, "opt", w.ElementCount, tokens, OptReference(w, prefix, tokens, d, heads, layers, preNorm, embedDim));
    }

    [Fact]
    public void Gpt_neo_matches_the_float64_reference_at_every_position()
    {
        // window_size 5 instead of 256 so the local layer's window matters within 20 tokens.
        const int d = 64, heads = 4, ffn = 4 * d, context = 64, window = 5;
        string[] kinds = ["global", "local"];
        var w = GptNeoCheckpoint(d, kinds.Length, ffn, context, seed: 601);
        string folder = Path.Combine(_folder, "gptneo");
        w.Write(folder, $$"""
            {"activation_function": "gelu_new", "architectures": ["GPTNeoForCausalLM"], "attention_dropout": 0, "attention_types": [[["global", "local"], 1]],
             "bos_token_id": 50256, "embed_dropout": 0, "eos_token_id": 50256, "gradient_checkpointing": false, "hidden_size": {{d}},
             "initializer_range": 0.02, "intermediate_size": null, "layer_norm_epsilon": 1e-05, "max_position_embeddings": {{context}},
             "model_type": "gpt_neo", "num_heads": {{heads}}, "num_layers": 2, "resid_dropout": 0, "torch_dtype": "float32", "use_cache": true,
             "vocab_size": {{Vocab}}, "window_size": {{window}}}
            """);
        int[] tokens = Tokens(20, 602);
        var expected = GptNeoReference(w, tokens, d, heads, kinds, window);
        AssertMatches(folder, "gptneo", w.ElementCount, tokens, expected);

        // The window is observable: the same weights with both layers global give other logits past position 4.
        var allGlobal = GptNeoReference(w, tokens, d, heads, ["global", "global"], window);
        Assert.Equal(expected[4], allGlobal[4]);
        Assert.True(Enumerable.Range(0, Vocab).Max(i => Math.Abs(expected[19][i] - allGlobal[19][i])) > 1e-2);
    }

    [Fact]
    public void Xglm_matches_the_float64_reference_at_every_position()
    {
        const int d = 48, heads = 4, layers = 2, ffn = 128;
        var w = XglmCheckpoint(d, layers, ffn, seed: 701);
        string folder = Path.Combine(_folder, "xglm");
        w.Write(folder, $$"""
            {"activation_dropout": 0.0, "activation_function": "gelu", "architectures": ["XGLMForCausalLM"], "attention_dropout": 0.1,
             "attention_heads": {{heads}}, "bos_token_id": 0, "d_model": {{d}}, "decoder_start_token_id": 2, "dropout": 0.1, "eos_token_id": 2,
             "ffn_dim": {{ffn}}, "init_std": 0.02, "layerdrop": 0.0, "max_position_embeddings": 64, "model_type": "xglm",
             "num_layers": {{layers}}, "pad_token_id": 1, "scale_embedding": true, "torch_dtype": "float32", "use_cache": true,
             "vocab_size": {{Vocab}}}
            """);
        int[] tokens = Tokens(20, 702);
        AssertMatches(folder, "xglm", w.ElementCount, tokens, XglmReference(w, tokens, d, heads, layers));
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
