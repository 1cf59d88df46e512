using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Phi-1 / 1.5 / 2 (transformers <c>phi</c>, llama.cpp <c>phi2</c>): attention and MLP in parallel off one LayerNorm,
/// partial rotary (<c>partial_rotary_factor</c>), GELU (tanh) MLP without gate, biases everywhere, a head with a bias.
/// </summary>
public sealed class Phi2 : ModelFamily
{
    public static Phi2 Family { get; } = new();

    public override string Name => "phi2";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["phi2"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["phi"];

    public override DecoderConfig FromGguf(GgufFile file) => Common(CommonGguf(file) with { Activation = ActivationKind.GeluTanh });

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        if (config.GetBool("qk_layernorm") == true)
            throw new ModelFileException(config.SourcePath, "qk_layernorm true is not supported for phi");
        var c = CommonHuggingFace(config, tiedByDefault: false) with
        {
            NormEpsilon = (float)(config.GetDouble("layer_norm_eps") ?? 1e-5),
            Activation = ActivationFromHuggingFace(config, "hidden_act", "gelu_new"),
        };
        return Common(c);
    }

    private static DecoderConfig Common(DecoderConfig c) => c with
    {
        Norm = NormKind.LayerNorm,
        NormHasBias = true,
        Residual = ResidualKind.ParallelSharedNorm,
        QkvBias = true,
        AttentionOutputBias = true,
        GatedFeedForward = false,
        FeedForwardBias = true,
        HeadBias = true,
    };

    public override TensorLayout HuggingFaceLayout(IWeightSource source) => TensorLayout.FromTable(new Dictionary<string, string>
    {
        ["token_embd"] = "model.embed_tokens",
        ["output_norm"] = "model.final_layernorm",
        ["output"] = "lm_head",
        ["attn_norm"] = "model.layers.{0}.input_layernorm",
        ["attn_q"] = "model.layers.{0}.self_attn.q_proj",
        ["attn_k"] = "model.layers.{0}.self_attn.k_proj",
        ["attn_v"] = "model.layers.{0}.self_attn.v_proj",
        ["attn_output"] = "model.layers.{0}.self_attn.dense",
        ["ffn_up"] = "model.layers.{0}.mlp.fc1",
        ["ffn_down"] = "model.layers.{0}.mlp.fc2",
    });

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
