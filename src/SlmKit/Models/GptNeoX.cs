using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// GPT-NeoX (Pythia, Dolly-v2): attention and MLP in parallel off two LayerNorms (<c>use_parallel_residual</c>),
/// partial rotary (<c>rotary_pct</c>), biases everywhere, GELU MLP, and a fused qkv that Hugging Face checkpoints
/// interleave head by head (llama.cpp's converter reorders it to q, k, v). llama.cpp computes GELU with the tanh
/// approximation, so GGUF models do too; Hugging Face models use the exact GELU their config names.
/// </summary>
public sealed class GptNeoX : ModelFamily
{
    public static GptNeoX Family { get; } = new();

    public override string Name => "gptneox";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["gptneox"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["gpt_neox"];

    public override DecoderConfig FromGguf(GgufFile file) =>
        Common(CommonGguf(file), new GgufKeys(file).Bool("use_parallel_residual") ?? true, ActivationKind.GeluTanh);

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        var c = CommonHuggingFace(config, tiedByDefault: false);
        int rotary = (int)(c.ResolvedHeadDim * (config.GetDouble("rotary_pct") ?? 0.25));
        c = c with
        {
            NormEpsilon = (float)(config.GetDouble("layer_norm_eps") ?? 1e-5),
            RopeTheta = (float)(config.GetDouble("rotary_emb_base") ?? config.GetDouble("rope_theta") ?? 10000),
            RotaryDim = rotary,
        };
        if (config.GetBool("attention_bias") == false)
            throw new ModelFileException(config.SourcePath, "attention_bias false is not supported for gpt_neox");
        return Common(c, config.GetBool("use_parallel_residual") ?? true, ActivationFromHuggingFace(config, "hidden_act", "gelu"));
    }

    private static DecoderConfig Common(DecoderConfig c, bool parallel, ActivationKind activation) => c with
    {
        Norm = NormKind.LayerNorm,
        NormHasBias = true,
        Residual = parallel ? ResidualKind.ParallelTwoNorms : ResidualKind.Sequential,
        QkvBias = true,
        AttentionOutputBias = true,
        GatedFeedForward = false,
        Activation = activation,
        FeedForwardBias = true,
    };

    public override TensorLayout HuggingFaceLayout(IWeightSource source) => new(TensorLayout.FromTable(new Dictionary<string, string>
    {
        ["token_embd"] = "gpt_neox.embed_in",
        ["output_norm"] = "gpt_neox.final_layer_norm",
        ["output"] = "embed_out",
        ["attn_norm"] = "gpt_neox.layers.{0}.input_layernorm",
        ["attn_qkv"] = "gpt_neox.layers.{0}.attention.query_key_value",
        ["attn_output"] = "gpt_neox.layers.{0}.attention.dense",
        ["ffn_norm"] = "gpt_neox.layers.{0}.post_attention_layernorm",
        ["ffn_up"] = "gpt_neox.layers.{0}.mlp.dense_h_to_4h",
        ["ffn_down"] = "gpt_neox.layers.{0}.mlp.dense_4h_to_h",
    }).Stem)
    { FusedQkv = QkvLayout.PerHeadInterleaved };

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
