using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Apple's OpenELM: Llama-style SwiGLU blocks with layer-wise scaling — every layer has its own numbers of query and
/// KV heads and its own MLP width — a fused <c>qkv_proj</c> (query, key, value heads in turn), RMSNorm of every query
/// and key head before the rotation, and a head tied to the token embeddings. transformers keeps the MLP's gate and up
/// halves fused in <c>proj_1</c> (gate rows first); llama.cpp's converter splits them into ffn_gate and ffn_up and
/// writes the per-layer head counts and widths as arrays.
/// </summary>
public sealed class OpenElm : ModelFamily
{
    public static OpenElm Family { get; } = new();

    public override string Name => "openelm";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["openelm"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["openelm"];

    // modeling_openelm.py builds every RMSNorm with its default ε, and llama.cpp's converter writes the same.
    private const float Epsilon = 1e-6f;

    public override DecoderConfig FromGguf(GgufFile file) =>
        CommonGguf(file) with { QkNorm = true, TiedEmbeddings = true };

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        string path = config.SourcePath;
        int hidden = Required(config, "model_dim");
        int layers = Required(config, "num_transformer_layers");
        int headDim = Required(config, "head_dim");
        if (config.GetBool("ffn_with_glu") == false)
            throw new ModelFileException(path, "ffn_with_glu false is not supported for openelm");
        if (ActivationFromHuggingFace(config, "activation_fn_name", "swish") != ActivationKind.Silu)
            throw new ModelFileException(path, $"activation_fn_name '{config.GetString("activation_fn_name")}' is not supported for openelm (supported: swish, silu)");

        var (queryHeads, kvHeads) = HeadCounts(config, hidden, layers, headDim);
        int divisor = config.GetInt("ffn_dim_divisor") ?? 256;
        double[] multipliers = PerLayerMultipliers(config, "ffn_multipliers", layers);
        int[] widths = Array.ConvertAll(multipliers, m => MakeDivisible(m * hidden, divisor));

        return new DecoderConfig
        {
            HiddenSize = hidden,
            LayerCount = layers,
            HeadCount = queryHeads[0],
            KvHeadCount = kvHeads[0],
            FeedForwardSize = widths[0],
            LayerHeadCounts = queryHeads,
            LayerKvHeadCounts = kvHeads,
            LayerFeedForwardSizes = widths,
            VocabSize = Required(config, "vocab_size"),
            HeadDim = headDim,
            ContextLength = config.GetInt("max_context_length") ?? 2048,
            NormEpsilon = Epsilon,
            RopeTheta = (float)(config.GetDouble("rope_freq_constant") ?? 10000),
            RopeLayout = RopeLayout.NeoX,
            QkNorm = config.GetBool("normalize_qk_projections") ?? false,
            TiedEmbeddings = config.GetBool("share_input_output_layers") ?? false,
        };
    }

    public override TensorLayout HuggingFaceLayout(IWeightSource source) => TensorLayout.FromTable(new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["token_embd"] = "transformer.token_embeddings",
        ["output_norm"] = "transformer.norm",
        ["output"] = "lm_head",
        ["attn_norm"] = "transformer.layers.{0}.attn_norm",
        ["attn_qkv"] = "transformer.layers.{0}.attn.qkv_proj",
        ["attn_q_norm"] = "transformer.layers.{0}.attn.q_norm",
        ["attn_k_norm"] = "transformer.layers.{0}.attn.k_norm",
        ["attn_output"] = "transformer.layers.{0}.attn.out_proj",
        ["ffn_norm"] = "transformer.layers.{0}.ffn_norm",
        ["ffn_up"] = "transformer.layers.{0}.ffn.proj_1",
        ["ffn_down"] = "transformer.layers.{0}.ffn.proj_2",
    });

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();

    /// <summary>configuration_openelm.py's make_divisible: round to the nearest multiple, never more than 10 % down.</summary>
    public static int MakeDivisible(double value, int divisor)
    {
        int rounded = Math.Max(divisor, (int)(value + divisor / 2.0) / divisor * divisor);
        return rounded < 0.9 * value ? rounded + divisor : rounded;
    }

    /// <summary>
    /// The per-layer query and KV head counts: as saved in config.json (<c>num_query_heads</c>, <c>num_kv_heads</c>),
    /// or, when absent, derived as transformers does from <c>qkv_multipliers</c> and <c>num_gqa_groups</c>.
    /// </summary>
    private static (int[] Query, int[] Kv) HeadCounts(HuggingFaceConfig config, int hidden, int layers, int headDim)
    {
        int[]? query = PerLayerInts(config, "num_query_heads", layers);
        int[]? kv = PerLayerInts(config, "num_kv_heads", layers);
        int groups = config.GetInt("num_gqa_groups") ?? 1;
        if (query is null)
        {
            double[] multipliers = PerLayerMultipliers(config, "qkv_multipliers", layers);
            query = Array.ConvertAll(multipliers, m => MakeDivisible(hidden * m, headDim * groups) / headDim);
        }
        kv ??= Array.ConvertAll(query, q => q / groups);
        return (query, kv);
    }

    private static int[]? PerLayerInts(HuggingFaceConfig config, string key, int layers)
    {
        if (config.GetIntArray(key) is not { } values)
            return null;
        return values.Length == layers
            ? values
            : throw new ModelFileException(config.SourcePath, $"'{key}' has {values.Length} entries for {layers} layers");
    }

    /// <summary>One multiplier per layer from a number (every layer), a [first, last] pair (rounded linear steps) or a full list.</summary>
    private static double[] PerLayerMultipliers(HuggingFaceConfig config, string key, int layers)
    {
        double[] values = config.GetDoubleArray(key) ?? throw new ModelFileException(config.SourcePath, $"field '{key}' is missing");
        if (values.Length == 1)
            return Enumerable.Repeat(values[0], layers).ToArray();
        if (values.Length == layers)
            return values;
        if (values.Length == 2)
        {
            var steps = new double[layers];
            for (int l = 0; l < layers; l++)
                steps[l] = Math.Round(layers == 1 ? values[0] : values[0] + (values[1] - values[0]) * l / (layers - 1), 2, MidpointRounding.ToEven);
            return steps;
        }
        throw new ModelFileException(config.SourcePath, $"'{key}' has {values.Length} entries for {layers} layers");
    }
}
