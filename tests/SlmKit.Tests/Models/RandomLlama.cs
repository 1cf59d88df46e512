using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SlmKit.Formats;
using SlmKit.Tensors;

namespace SlmKit.Tests.Models;

/// <summary>The shape of a random Llama-family test model.</summary>
public sealed record RandomLlamaSpec(
    string Name, int Dim, int Layers, int Heads, int KvHeads, int HeadDim, int Ffn, int Vocab,
    bool Tied, float RopeTheta, GgmlType Type, int Seed, int ContextLength = 512)
{
    public override string ToString() => Name;
}

/// <summary>
/// Builds random-weight Llama models and writes them with SlmKit's own writers: a GGUF (tensor names and
/// metadata exactly as llama.cpp expects, with a synthetic SentencePiece vocabulary so llama.cpp will load it)
/// and a Hugging Face twin (safetensors + config.json, q/k rows permuted the way transformers stores them).
/// </summary>
public sealed class RandomLlama
{
    private readonly Dictionary<string, (long[] Dims, float[] Values)> _tensors = new(StringComparer.Ordinal);

    public RandomLlama(RandomLlamaSpec spec)
    {
        Spec = spec;
        var random = new Random(spec.Seed);
        int qDim = spec.Heads * spec.HeadDim, kvDim = spec.KvHeads * spec.HeadDim;

        // Values are drawn at the storage precision, so the GGUF (F32 norms) and the HF twin (all F16) hold the same numbers.
        float[] Uniform(int count, double scale, double offset = 0) => RandomLlama.Uniform(random, count, scale, offset, spec.Type == GgmlType.F16);
        void Matrix(string name, int rows, int cols) => _tensors[name] = ([rows, cols], Uniform(rows * cols, 1.0 / Math.Sqrt(cols) * 1.5));
        void Norm(string name, int n) => _tensors[name] = ([n], Uniform(n, 0.2, 1.0));

        _tensors["token_embd.weight"] = ([spec.Vocab, spec.Dim], Uniform(spec.Vocab * spec.Dim, 1.0));
        for (int i = 0; i < spec.Layers; i++)
        {
            Norm($"blk.{i}.attn_norm.weight", spec.Dim);
            Matrix($"blk.{i}.attn_q.weight", qDim, spec.Dim);
            Matrix($"blk.{i}.attn_k.weight", kvDim, spec.Dim);
            Matrix($"blk.{i}.attn_v.weight", kvDim, spec.Dim);
            Matrix($"blk.{i}.attn_output.weight", spec.Dim, qDim);
            Norm($"blk.{i}.ffn_norm.weight", spec.Dim);
            Matrix($"blk.{i}.ffn_gate.weight", spec.Ffn, spec.Dim);
            Matrix($"blk.{i}.ffn_up.weight", spec.Ffn, spec.Dim);
            Matrix($"blk.{i}.ffn_down.weight", spec.Dim, spec.Ffn);
        }
        Norm("output_norm.weight", spec.Dim);
        if (!spec.Tied)
            Matrix("output.weight", spec.Vocab, spec.Dim);
    }

    public RandomLlamaSpec Spec { get; }

    /// <summary>Writes the model as GGUF (matrices in Spec.Type, norms in F32 as llama.cpp's converter does).</summary>
    public string WriteGguf(string path)
    {
        var s = Spec;
        var writer = new GgufWriter();
        writer.Set("general.architecture", "llama");
        writer.Set("general.name", "slmkit-random-" + s.Name);
        writer.Set("llama.context_length", (uint)s.ContextLength);
        writer.Set("llama.embedding_length", (uint)s.Dim);
        writer.Set("llama.block_count", (uint)s.Layers);
        writer.Set("llama.feed_forward_length", (uint)s.Ffn);
        writer.Set("llama.rope.dimension_count", (uint)s.HeadDim);
        writer.Set("llama.attention.head_count", (uint)s.Heads);
        writer.Set("llama.attention.head_count_kv", (uint)s.KvHeads);
        writer.Set("llama.attention.key_length", (uint)s.HeadDim);
        writer.Set("llama.attention.value_length", (uint)s.HeadDim);
        writer.Set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        writer.Set("llama.rope.freq_base", s.RopeTheta);
        writer.Set("general.file_type", s.Type == GgmlType.F16 ? 1u : 0u);
        SetSyntheticTokenizer(writer, s.Vocab);
        foreach (var (name, (dims, values)) in _tensors)
            writer.AddTensor(name, dims, values, dims.Length == 1 ? GgmlType.F32 : s.Type);
        writer.Write(path);
        return path;
    }

    /// <summary>
    /// Writes the weights as a Hugging Face folder of <paramref name="modelType"/>:
    /// <list type="bullet">
    /// <item>"llama": the same model as <see cref="WriteGguf"/>. transformers keeps q/k rows in "rotate_half" order,
    /// which llama.cpp's converter permutes into adjacent pairs; here the GGUF rows are permuted back.</item>
    /// <item>"qwen2" and "gemma": the same matrices and norms with q/k rows as they are (both architectures' GGUFs keep
    /// transformers' order, so these are different models from the GGUF's). Qwen2 adds random q/k/v biases, which its
    /// checkpoints always have; Gemma has no head of its own (tied, as its checkpoints are) and reads its norms as
    /// 1 + w.</item>
    /// </list>
    /// With <paramref name="tokenizerFolder"/>, its tokenizer.json and tokenizer_config.json are copied in (what
    /// <c>slm convert</c> and <c>slm quantize</c> need); its vocabulary should have Spec.Vocab tokens for llama.cpp to
    /// load the result.
    /// </summary>
    public string WriteHuggingFace(string folder, string? tokenizerFolder = null, string modelType = "llama")
    {
        var s = Spec;
        bool llama = modelType == "llama", qwen2 = modelType == "qwen2", gemma = modelType == "gemma";
        if (!llama && !qwen2 && !gemma)
            throw new ArgumentException($"model type '{modelType}'", nameof(modelType));
        Directory.CreateDirectory(folder);
        var random = new Random(s.Seed + 1000);
        byte[] Stored(float[] values) => StoredBytes(values, s.Type);

        var entries = new List<SafeTensorEntry>();
        foreach (var (name, (dims, values)) in _tensors)
        {
            if (gemma && name == "output.weight")
                continue;
            string hf = name switch
            {
                "token_embd.weight" => "model.embed_tokens.weight",
                "output_norm.weight" => "model.norm.weight",
                "output.weight" => "lm_head.weight",
                _ => HfLayerName(name),
            };
            float[] data = values;
            if (llama && name.EndsWith("attn_q.weight", StringComparison.Ordinal))
                data = ToRotateHalfOrder(values, s.Heads, s.HeadDim, s.Dim);
            else if (llama && name.EndsWith("attn_k.weight", StringComparison.Ordinal))
                data = ToRotateHalfOrder(values, s.KvHeads, s.HeadDim, s.Dim);
            entries.Add(new SafeTensorEntry(hf, s.Type, dims, Stored(data)));
            if (qwen2 && (name.EndsWith("attn_q.weight", StringComparison.Ordinal) || name.EndsWith("attn_k.weight", StringComparison.Ordinal) || name.EndsWith("attn_v.weight", StringComparison.Ordinal)))
            {
                var bias = new float[dims[0]];
                for (int i = 0; i < bias.Length; i++)
                    bias[i] = (float)(Half)((random.NextDouble() * 2 - 1) * 0.5);
                entries.Add(new SafeTensorEntry(hf[..^".weight".Length] + ".bias", s.Type, [dims[0]], Stored(bias)));
            }
        }
        SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), entries);

        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(llama ? "LlamaForCausalLM" : qwen2 ? "Qwen2ForCausalLM" : "GemmaForCausalLM"),
            ["model_type"] = modelType,
            ["hidden_size"] = s.Dim,
            ["intermediate_size"] = s.Ffn,
            ["num_hidden_layers"] = s.Layers,
            ["num_attention_heads"] = s.Heads,
            ["num_key_value_heads"] = s.KvHeads,
            ["vocab_size"] = s.Vocab,
            ["max_position_embeddings"] = 512,
            ["rms_norm_eps"] = llama ? 1e-5 : 1e-6,
            ["rope_theta"] = s.RopeTheta,
            ["torch_dtype"] = s.Type == GgmlType.F16 ? "float16" : "float32",
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
        };
        if (!qwen2)
            config["head_dim"] = s.HeadDim; // Qwen2's config has no head_dim: hidden ÷ heads
        if (!gemma)
            config["tie_word_embeddings"] = s.Tied;
        if (qwen2)
        {
            config["use_sliding_window"] = false;
            config["sliding_window"] = 4096;
        }
        if (gemma)
        {
            config["hidden_act"] = "gelu_pytorch_tanh";
            config["hidden_activation"] = "gelu_pytorch_tanh";
        }
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        if (tokenizerFolder is not null)
        {
            foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json" })
                File.Copy(Path.Combine(tokenizerFolder, file), Path.Combine(folder, file));
        }
        return folder;
    }

    private static string HfLayerName(string gguf)
    {
        // blk.{i}.{part}.weight
        string[] parts = gguf.Split('.');
        string layer = parts[1];
        string hf = parts[2] switch
        {
            "attn_norm" => "input_layernorm",
            "attn_q" => "self_attn.q_proj",
            "attn_k" => "self_attn.k_proj",
            "attn_v" => "self_attn.v_proj",
            "attn_output" => "self_attn.o_proj",
            "ffn_norm" => "post_attention_layernorm",
            "ffn_gate" => "mlp.gate_proj",
            "ffn_up" => "mlp.up_proj",
            "ffn_down" => "mlp.down_proj",
            _ => throw new InvalidOperationException(gguf),
        };
        return $"model.layers.{layer}.{hf}.weight";
    }

    /// <summary>Inverse of convert_hf_to_gguf's permute: GGUF row (h, i, j) [pair i, member j] came from HF row (h, j, i).</summary>
    private static float[] ToRotateHalfOrder(float[] gguf, int heads, int headDim, int cols)
    {
        var hf = new float[gguf.Length];
        int half = headDim / 2;
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < half; i++)
            {
                for (int j = 0; j < 2; j++)
                {
                    int ggufRow = h * headDim + 2 * i + j;
                    int hfRow = h * headDim + j * half + i;
                    Array.Copy(gguf, (long)ggufRow * cols, hf, (long)hfRow * cols, cols);
                }
            }
        }
        return hf;
    }

    /// <summary>
    /// Sets <see cref="SyntheticVocabulary"/> of <paramref name="size"/> tokens as a GGUF's SentencePiece tokenizer
    /// (&lt;unk&gt; 0, &lt;s&gt; 1, &lt;/s&gt; 2), which llama.cpp needs to load a test model of any architecture.
    /// </summary>
    public static void SetSyntheticTokenizer(GgufWriter writer, int size, bool addBos = true)
    {
        var (tokens, scores, types) = SyntheticVocabulary(size);
        writer.Set("tokenizer.ggml.model", "llama");
        writer.Set("tokenizer.ggml.tokens", tokens);
        writer.Set("tokenizer.ggml.scores", scores);
        writer.Set("tokenizer.ggml.token_type", types);
        writer.Set("tokenizer.ggml.bos_token_id", 1u);
        writer.Set("tokenizer.ggml.eos_token_id", 2u);
        writer.Set("tokenizer.ggml.unknown_token_id", 0u);
        if (addBos)
            writer.Set("tokenizer.ggml.add_bos_token", true);
    }

    /// <summary>Values as a safetensors file stores them in <paramref name="type"/> (F16 or F32), little-endian.</summary>
    public static byte[] StoredBytes(float[] values, GgmlType type) => type == GgmlType.F16
        ? MemoryMarshal.AsBytes(Array.ConvertAll(values, v => (Half)v).AsSpan()).ToArray()
        : MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    /// <summary>Copies the tokenizer.json of <paramref name="tokenizerFolder"/> into <paramref name="folder"/> (created if needed).</summary>
    public static void CopyTokenizer(string tokenizerFolder, string folder)
    {
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(tokenizerFolder, "tokenizer.json"), Path.Combine(folder, "tokenizer.json"));
    }

    /// <summary>
    /// <paramref name="count"/> values uniform in offset ± scale, drawn from <paramref name="random"/> and rounded to
    /// F16 where <paramref name="half"/> says, so that a GGUF and its Hugging Face twin hold the same numbers.
    /// </summary>
    public static float[] Uniform(Random random, int count, double scale, double offset, bool half)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            float x = (float)(offset + (random.NextDouble() * 2 - 1) * scale);
            values[i] = half ? (float)(Half)x : x;
        }
        return values;
    }

    /// <summary>
    /// A SentencePiece-style vocabulary llama.cpp accepts: &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, the 256 byte tokens, then
    /// made-up pieces. Logit tests feed token ids directly, so the pieces only need to be distinct.
    /// </summary>
    public static (string[] Tokens, float[] Scores, int[] Types) SyntheticVocabulary(int size)
    {
        var tokens = new string[size];
        var scores = new float[size];
        var types = new int[size];
        tokens[0] = "<unk>";
        types[0] = 2;
        tokens[1] = "<s>";
        types[1] = 3;
        tokens[2] = "</s>";
        types[2] = 3;
        for (int b = 0; b < 256 && 3 + b < size; b++)
        {
            tokens[3 + b] = $"<0x{b:X2}>";
            types[3 + b] = 6;
        }
        const string letters = "etaoinshrdlucmfwypvbgkqjxz";
        for (int i = 259; i < size; i++)
        {
            var piece = new StringBuilder("\u2581");
            int n = i - 259;
            do
            {
                piece.Append(letters[n % letters.Length]);
                n /= letters.Length;
            }
            while (n > 0);
            tokens[i] = piece.ToString();
            scores[i] = -(i - 259);
            types[i] = 1;
        }
        return (tokens, scores, types);
    }

    public static IEnumerable<RandomLlamaSpec> OracleSpecs() =>
    [
        new("mha-tied-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 4, HeadDim: 16, Ffn: 160, Vocab: 300, Tied: true, RopeTheta: 10000f, Type: GgmlType.F32, Seed: 1),
        new("gqa4-untied-f32", Dim: 128, Layers: 3, Heads: 8, KvHeads: 2, HeadDim: 16, Ffn: 256, Vocab: 512, Tied: false, RopeTheta: 500000f, Type: GgmlType.F32, Seed: 2),
        new("mqa-head8-f16", Dim: 96, Layers: 2, Heads: 12, KvHeads: 1, HeadDim: 8, Ffn: 200, Vocab: 1000, Tied: false, RopeTheta: 10000f, Type: GgmlType.F16, Seed: 3),
        new("head128-tied-f16", Dim: 256, Layers: 2, Heads: 2, KvHeads: 1, HeadDim: 128, Ffn: 512, Vocab: 2048, Tied: true, RopeTheta: 1000000f, Type: GgmlType.F16, Seed: 4),
        new("gqa2-4layers-f32", Dim: 128, Layers: 4, Heads: 4, KvHeads: 2, HeadDim: 32, Ffn: 384, Vocab: 777, Tied: false, RopeTheta: 10000f, Type: GgmlType.F32, Seed: 5),
        new("wide-vocab-f16", Dim: 192, Layers: 1, Heads: 6, KvHeads: 3, HeadDim: 32, Ffn: 320, Vocab: 4096, Tied: true, RopeTheta: 100000f, Type: GgmlType.F16, Seed: 6),
        new("headdim-not-dim-over-heads-f32", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 32, Ffn: 128, Vocab: 400, Tied: false, RopeTheta: 10000f, Type: GgmlType.F32, Seed: 7),
    ];
}
