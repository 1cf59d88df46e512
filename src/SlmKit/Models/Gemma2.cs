using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Gemma 2: Gemma plus RMSNorm after the attention and after the MLP (pre- and post-norms), soft-capped attention
/// scores and final logits, sliding-window attention on even layers, and q scaled by 1/√query_pre_attn_scalar.
/// </summary>
public sealed class Gemma2 : ModelFamily
{
    public static Gemma2 Family { get; } = new();

    public override string Name => "gemma2";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["gemma2"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["gemma2"];

    public override DecoderConfig FromGguf(GgufFile file)
    {
        var c = Gemma.Family.FromGguf(file);
        var keys = new GgufKeys(file);
        return Common(c, (float)(keys.Number("attn_logit_softcapping") ?? 50), (float)(keys.Number("final_logit_softcapping") ?? 30),
            keys.Optional("attention.sliding_window") ?? 4096, LlamaCppQueryScale(c, LayersOf27B));
    }

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        var c = Gemma.Family.FromHuggingFace(config);
        float queryScalar = (float)(config.GetDouble("query_pre_attn_scalar") ?? c.ResolvedHeadDim);
        return Common(c, (float)(config.GetDouble("attn_logit_softcapping") ?? 0), (float)(config.GetDouble("final_logit_softcapping") ?? 0),
            config.GetInt("sliding_window") ?? 4096, 1f / MathF.Sqrt(queryScalar));
    }

    /// <summary>Layers of Gemma 2 27B, the one shape llama.cpp scales queries by 1/√(hidden ÷ heads).</summary>
    internal const int LayersOf27B = 46;

    /// <summary>
    /// The query scale llama.cpp's gemma2 and gemma3 graphs use: 1/√(hidden ÷ heads) for the 27B model (46 layers in
    /// Gemma 2, 62 in Gemma 3), 1/√head size otherwise. transformers takes it from query_pre_attn_scalar.
    /// </summary>
    internal static float LlamaCppQueryScale(DecoderConfig c, int layersOf27B) =>
        c.LayerCount == layersOf27B ? 1f / MathF.Sqrt(c.HiddenSize / (float)c.HeadCount) : 1f / MathF.Sqrt(c.ResolvedHeadDim);

    private static DecoderConfig Common(DecoderConfig c, float attentionCap, float finalCap, int window, float scale)
    {
        var sliding = new bool[c.LayerCount];
        for (int l = 0; l < sliding.Length; l++)
            sliding[l] = l % 2 == 0;
        return c with
        {
            PostNorms = true,
            AttentionSoftCap = attentionCap,
            FinalLogitSoftCap = finalCap,
            SlidingWindow = window,
            SlidingLayers = sliding,
            AttentionScale = scale,
        };
    }

    public override TensorLayout HuggingFaceLayout(IWeightSource source)
    {
        var names = LlamaStyleNames();
        names["post_attention_norm"] = "model.layers.{0}.post_attention_layernorm";
        names["ffn_norm"] = "model.layers.{0}.pre_feedforward_layernorm";
        names["post_ffw_norm"] = "model.layers.{0}.post_feedforward_layernorm";
        return new(TensorLayout.FromTable(names).Stem) { NormWeightOffset = 1f };
    }

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
