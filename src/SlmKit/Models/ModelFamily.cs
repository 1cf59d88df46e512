using System.Text.Json;
using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// One family of decoder-only models: how its config is read from GGUF metadata and from a Hugging Face
/// config.json, and how a Hugging Face checkpoint names its tensors. The forward pass itself is the shared
/// <see cref="DecoderModel"/>; a family is its list of choices.
/// </summary>
public abstract class ModelFamily
{
    /// <summary>The family's name as <c>slm info</c> shows it.</summary>
    public abstract string Name { get; }

    /// <summary>llama.cpp's <c>general.architecture</c> values of this family (empty when llama.cpp lacks it).</summary>
    public abstract IReadOnlyList<string> GgufArchitectures { get; }

    /// <summary>transformers' <c>model_type</c> values of this family.</summary>
    public abstract IReadOnlyList<string> HuggingFaceModelTypes { get; }

    /// <summary>Reads the config from llama.cpp's metadata keys.</summary>
    public virtual DecoderConfig FromGguf(GgufFile file) =>
        throw new ModelFileException(file.SourcePath, $"llama.cpp has no '{Name}' architecture");

    /// <summary>Reads the config from transformers' config.json fields.</summary>
    public abstract DecoderConfig FromHuggingFace(HuggingFaceConfig config);

    /// <summary>How a Hugging Face checkpoint of this family names and lays out its tensors.</summary>
    public abstract TensorLayout HuggingFaceLayout(IWeightSource source);

    /// <summary>Every family this build runs, Llama first.</summary>
    public static IReadOnlyList<ModelFamily> All { get; } =
    [
        Llama.Family, Qwen2.Family, Qwen3.Family, Gemma.Family, Gemma2.Family, Gemma3.Family, Phi2.Family, Phi3.Family, SmolLm3.Family, StableLm.Family,
        GptNeoX.Family, Gpt2.Family, Olmo.Family, Olmo2.Family, OpenElm.Family, MiniCpm.Family, Nemotron.Family, Bloom.Family, Qwen.Family,
        Opt.Family, GptNeo.Family, Xglm.Family,
    ];

    public static ModelFamily? ForGgufArchitecture(string architecture)
    {
        foreach (var family in All)
        {
            if (family.GgufArchitectures.Contains(architecture))
                return family;
        }
        return null;
    }

    public static ModelFamily? ForHuggingFaceModelType(string modelType)
    {
        foreach (var family in All)
        {
            if (family.HuggingFaceModelTypes.Contains(modelType))
                return family;
        }
        return null;
    }

    /// <summary>The sizes and options every llama.cpp architecture stores under <c>{arch}.*</c>.</summary>
    protected static DecoderConfig CommonGguf(GgufFile file)
    {
        var keys = new GgufKeys(file);
        int layers = keys.Required("block_count");
        // llama.cpp accepts a per-layer array wherever a layer's head count or MLP width is asked for (OpenELM writes them so).
        var (heads, layerHeads) = keys.PerLayer("attention.head_count", layers);
        var (kvHeads, layerKvHeads) = keys.PerLayer("attention.head_count_kv", layers, heads, layerHeads);
        var (feedForward, layerFeedForward) = keys.PerLayer("feed_forward_length", layers);
        var embedding = file.Find("token_embd.weight") ?? throw new ModelFileException(file.SourcePath, "tensor 'token_embd.weight' is missing");
        int vocab = keys.Optional("vocab_size") ?? file.GetStringArray("tokenizer.ggml.tokens")?.Length ?? GgufKeys.ToInt(file.SourcePath, "token_embd rows", embedding.Dimensions[0]);
        RopeScaling? scaling = file.GetString($"{keys.Architecture}.rope.scaling.type") switch
        {
            null or "none" => null,
            "linear" => RopeScaling.Linear((float)(keys.Number("rope.scaling.factor") ?? 1)),
            string other => throw new ModelFileException(file.SourcePath, $"rope scaling type '{other}' is not supported (supported: none, linear)"),
        };
        return new DecoderConfig
        {
            HiddenSize = keys.Required("embedding_length"),
            LayerCount = layers,
            HeadCount = heads,
            KvHeadCount = kvHeads,
            FeedForwardSize = feedForward,
            LayerHeadCounts = layerHeads,
            LayerKvHeadCounts = layerKvHeads,
            LayerFeedForwardSizes = layerFeedForward,
            VocabSize = vocab,
            HeadDim = keys.Optional("attention.key_length") ?? 0,
            RotaryDim = keys.Optional("rope.dimension_count") ?? 0,
            ContextLength = keys.Optional("context_length") ?? 2048,
            NormEpsilon = (float)(keys.Number("attention.layer_norm_rms_epsilon") ?? keys.Number("attention.layer_norm_epsilon") ?? 1e-5),
            RopeTheta = (float)(keys.Number("rope.freq_base") ?? 10000),
            RopeScaling = scaling,
            RopeLayout = RopeLayout.NeoX,
            TiedEmbeddings = file.Find("output.weight") is null,
        };
    }

    /// <summary>The fields most transformers configs share (Llama's names); families with other names read their own.</summary>
    protected static DecoderConfig CommonHuggingFace(HuggingFaceConfig c, bool tiedByDefault)
    {
        int heads = Required(c, "num_attention_heads");
        int hidden = Required(c, "hidden_size");
        int headDim = c.GetInt("head_dim") ?? 0;
        double partial = c.GetDouble("partial_rotary_factor") ?? 1.0;
        int resolvedHeadDim = headDim > 0 ? headDim : hidden / heads;
        return new DecoderConfig
        {
            HiddenSize = hidden,
            LayerCount = Required(c, "num_hidden_layers"),
            HeadCount = heads,
            KvHeadCount = c.GetInt("num_key_value_heads") ?? heads,
            FeedForwardSize = Required(c, "intermediate_size"),
            VocabSize = Required(c, "vocab_size"),
            HeadDim = headDim,
            RotaryDim = partial < 1.0 ? (int)(resolvedHeadDim * partial) : 0,
            ContextLength = c.GetInt("max_position_embeddings") ?? 2048,
            NormEpsilon = (float)(c.GetDouble("rms_norm_eps") ?? c.GetDouble("layer_norm_eps") ?? c.GetDouble("norm_eps") ?? 1e-6),
            RopeTheta = (float)(c.GetDouble("rope_theta") ?? 10000),
            RopeScaling = RopeScalingFromHuggingFace(c),
            RopeLayout = RopeLayout.NeoX,
            TiedEmbeddings = c.GetBool("tie_word_embeddings") ?? tiedByDefault,
            // transformers' Llama-style MLPs apply ACT2FN[hidden_act]; families with another field set their own.
            Activation = ActivationFromHuggingFace(c, "hidden_act", "silu"),
        };
    }

    protected static int Required(HuggingFaceConfig c, string key) =>
        c.GetInt(key) ?? throw new ModelFileException(c.SourcePath, $"field '{key}' is missing");

    /// <summary>The MLP activation named by a transformers <c>hidden_act</c> / <c>activation_function</c>.</summary>
    protected static ActivationKind ActivationFromHuggingFace(HuggingFaceConfig c, string key, string fallback) =>
        (c.GetString(key) ?? fallback) switch
        {
            "silu" or "swish" => ActivationKind.Silu,
            "gelu" => ActivationKind.GeluErf,
            "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => ActivationKind.GeluTanh,
            "relu" => ActivationKind.Relu,
            "relu2" => ActivationKind.SquaredRelu,
            string other => throw new ModelFileException(c.SourcePath, $"{key} '{other}' is not supported (supported: silu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, relu2)"),
        };

    /// <summary>transformers' <c>rope_scaling</c> object (none, linear, llama3).</summary>
    protected static RopeScaling? RopeScalingFromHuggingFace(HuggingFaceConfig config)
    {
        if (!config.TryGetObject("rope_scaling", out JsonElement rope) || rope.ValueKind != JsonValueKind.Object)
            return null;
        string type = (rope.TryGetProperty("rope_type", out var t) || rope.TryGetProperty("type", out t)) && t.ValueKind == JsonValueKind.String
            ? t.GetString()!
            : "default";
        float Number(string name, float fallback) =>
            rope.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetSingle() : fallback;
        return type switch
        {
            "default" => null,
            "linear" => RopeScaling.Linear(Number("factor", 1)),
            "llama3" => RopeScaling.Llama3(Number("factor", 8), Number("low_freq_factor", 1), Number("high_freq_factor", 4), (int)Number("original_max_position_embeddings", 8192)),
            "longrope" or "su" => LongRopeFromHuggingFace(config, rope),
            _ => throw new ModelFileException(config.SourcePath, $"rope_scaling type '{type}' is not supported (supported: linear, llama3, longrope)"),
        };
    }

    /// <summary>
    /// transformers' _compute_longrope_parameters: short_factor / long_factor per rotary pair; the original length from
    /// rope_scaling or the config's top level (Phi-3 keeps it there); attention_factor when given, else
    /// √(1 + ln s / ln original) with s = rope_scaling.factor or max_position_embeddings / original (1 when s ≤ 1).
    /// </summary>
    private static RopeScaling LongRopeFromHuggingFace(HuggingFaceConfig config, JsonElement rope)
    {
        float[] Factors(string name) =>
            rope.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
                ? [.. v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number ? e.GetSingle() : throw new ModelFileException(config.SourcePath, $"rope_scaling.{name} holds a non-number"))]
                : throw new ModelFileException(config.SourcePath, $"rope_scaling.{name} is missing");
        double? Number(string name) => rope.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
        int maxPositions = config.GetInt("max_position_embeddings") ?? 2048;
        int original = (int?)Number("original_max_position_embeddings") ?? config.GetInt("original_max_position_embeddings") ?? maxPositions;
        if (original <= 0)
            throw new ModelFileException(config.SourcePath, $"original_max_position_embeddings must be positive (got {original})");
        double factor = Number("factor") ?? (double)maxPositions / original;
        double attention = Number("attention_factor") ?? (factor <= 1 ? 1 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original)));
        return RopeScaling.LongRope(original, (float)attention, Factors("short_factor"), Factors("long_factor"));
    }

    /// <summary>The Hugging Face names of the Llama-style checkpoints (model.layers.N.self_attn.q_proj, …).</summary>
    protected static Dictionary<string, string> LlamaStyleNames() => new(StringComparer.Ordinal)
    {
        ["token_embd"] = "model.embed_tokens",
        ["output_norm"] = "model.norm",
        ["output"] = "lm_head",
        ["attn_norm"] = "model.layers.{0}.input_layernorm",
        ["attn_q"] = "model.layers.{0}.self_attn.q_proj",
        ["attn_k"] = "model.layers.{0}.self_attn.k_proj",
        ["attn_v"] = "model.layers.{0}.self_attn.v_proj",
        ["attn_output"] = "model.layers.{0}.self_attn.o_proj",
        ["ffn_norm"] = "model.layers.{0}.post_attention_layernorm",
        ["ffn_gate"] = "model.layers.{0}.mlp.gate_proj",
        ["ffn_up"] = "model.layers.{0}.mlp.up_proj",
        ["ffn_down"] = "model.layers.{0}.mlp.down_proj",
    };

    /// <summary>"transformer." when the checkpoint was saved from the *ForCausalLM wrapper, "" when from the bare model.</summary>
    protected static string PrefixOf(IWeightSource source, string probe, string prefix) =>
        source.Find(prefix + probe) is not null ? prefix : "";

    /// <summary>Typed access to <c>{arch}.*</c> metadata.</summary>
    internal readonly struct GgufKeys(GgufFile file)
    {
        public string Architecture { get; } = file.Architecture ?? "llama";

        public int Required(string key) =>
            ToInt(file.SourcePath, key, file.GetInteger($"{Architecture}.{key}") ?? throw new ModelFileException(file.SourcePath, $"metadata key '{Architecture}.{key}' is missing"));

        public int? Optional(string key) => file.GetInteger($"{Architecture}.{key}") is long v ? ToInt(file.SourcePath, key, v) : null;

        /// <summary>
        /// A number stored once or as one entry per layer: (layer 0's value, the per-layer values or null when stored once).
        /// Absent keys take <paramref name="fallback"/> / <paramref name="fallbackPerLayer"/>, or are required when no fallback is given.
        /// </summary>
        public (int First, int[]? PerLayer) PerLayer(string key, int layers, int? fallback = null, int[]? fallbackPerLayer = null)
        {
            string full = $"{Architecture}.{key}";
            if (file.Metadata.TryGetValue(full, out object? value) && value is GgufArray)
            {
                int[] values = file.GetInt32Array(full)!;
                if (values.Length != layers)
                    throw new ModelFileException(file.SourcePath, $"metadata '{full}' has {values.Length} entries for {layers} layers");
                return (values[0], values.Distinct().Count() == 1 ? null : values);
            }
            if (Optional(key) is int single)
                return (single, null);
            return fallback is int f ? (f, fallbackPerLayer) : (Required(key), null);
        }

        public double? Number(string key) => file.GetNumber($"{Architecture}.{key}");

        public bool? Bool(string key) => file.GetBool($"{Architecture}.{key}");

        public static int ToInt(string path, string key, long value) =>
            value is >= int.MinValue and <= int.MaxValue ? (int)value : throw new ModelFileException(path, $"value of '{key}' ({value}) is out of range");
    }
}
