using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Gemma 3 (text: 270M, 1B, and the language model of the larger ones): Gemma 2's blocks (pre- and post-norms, GeGLU,
/// embeddings × √hidden, (1 + w) norms, tied head) with an RMSNorm over each q and k head, no soft-capping, and five
/// sliding-window layers to every global one. The sliding layers rotate with their own base (rope_local_base_freq,
/// 10000) and no scaling; the global layers with rope_theta and rope_scaling.
/// </summary>
public sealed class Gemma3 : ModelFamily
{
    /// <summary>llama.cpp's and transformers' default: every sixth layer is global.</summary>
    private const int SlidingPattern = 6;

    /// <summary>Layers of Gemma 3 27B, the one shape llama.cpp scales queries by 1/√(hidden ÷ heads).</summary>
    internal const int LayersOf27B = 62;

    /// <summary>llama.cpp's fixed base for the sliding layers' rotation (transformers' rope_local_base_freq default).</summary>
    internal const float LocalRopeTheta = 10000f;

    public static Gemma3 Family { get; } = new();

    public override string Name => "gemma3";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["gemma3"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["gemma3_text"];

    public override DecoderConfig FromGguf(GgufFile file)
    {
        var c = Gemma.Family.FromGguf(file);
        return Common(c, new GgufKeys(file).Required("attention.sliding_window"), PatternLayers(c.LayerCount), LocalRopeTheta,
            Gemma2.LlamaCppQueryScale(c, LayersOf27B));
    }

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        var c = Gemma.Family.FromHuggingFace(config);
        if (config.GetDouble("attn_logit_softcapping") is > 0 || config.GetDouble("final_logit_softcapping") is > 0)
            throw new ModelFileException(config.SourcePath, "soft-capping is not supported for gemma3 (its checkpoints have none)");
        float queryScalar = (float)(config.GetDouble("query_pre_attn_scalar") ?? c.ResolvedHeadDim);
        return Common(c, config.GetInt("sliding_window") ?? 4096, SlidingLayers(config, c.LayerCount),
            (float)(config.GetDouble("rope_local_base_freq") ?? LocalRopeTheta), 1f / MathF.Sqrt(queryScalar));
    }

    private static DecoderConfig Common(DecoderConfig c, int window, bool[] sliding, float localTheta, float scale) => c with
    {
        PostNorms = true,
        QkNorm = true,
        SlidingWindow = window,
        SlidingLayers = sliding,
        SlidingRopeTheta = localTheta,
        AttentionScale = scale,
    };

    /// <summary>Layer i slides unless (i + 1) is a multiple of the pattern (llama.cpp's gemma3 fixes six).</summary>
    internal static bool[] PatternLayers(int layers, int pattern = SlidingPattern)
    {
        var sliding = new bool[layers];
        for (int l = 0; l < layers; l++)
            sliding[l] = (l + 1) % pattern != 0;
        return sliding;
    }

    /// <summary>transformers' layer_types ("sliding_attention" / "full_attention") where given, else sliding_window_pattern.</summary>
    private static bool[] SlidingLayers(HuggingFaceConfig config, int layers)
    {
        if (!config.Root.TryGetProperty("layer_types", out var types) || types.ValueKind != System.Text.Json.JsonValueKind.Array)
            return PatternLayers(layers, config.GetInt("sliding_window_pattern") ?? SlidingPattern);
        var sliding = new bool[layers];
        int l = 0;
        foreach (var type in types.EnumerateArray())
        {
            if (l == layers)
                throw new ModelFileException(config.SourcePath, $"layer_types lists more than the {layers} layers");
            sliding[l++] = type.GetString() switch
            {
                "sliding_attention" => true,
                "full_attention" => false,
                var other => throw new ModelFileException(config.SourcePath, $"layer_types entry '{other}' is not supported (sliding_attention, full_attention)"),
            };
        }
        if (l != layers)
            throw new ModelFileException(config.SourcePath, $"layer_types lists {l} of the {layers} layers");
        return sliding;
    }

    public override TensorLayout HuggingFaceLayout(IWeightSource source)
    {
        var names = LlamaStyleNames();
        names["post_attention_norm"] = "model.layers.{0}.post_attention_layernorm";
        names["ffn_norm"] = "model.layers.{0}.pre_feedforward_layernorm";
        names["post_ffw_norm"] = "model.layers.{0}.post_feedforward_layernorm";
        names["attn_q_norm"] = "model.layers.{0}.self_attn.q_norm";
        names["attn_k_norm"] = "model.layers.{0}.self_attn.k_norm";
        return new(TensorLayout.FromTable(names).Stem) { NormWeightOffset = 1f };
    }

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
