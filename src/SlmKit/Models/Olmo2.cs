using SlmKit.Formats;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// OLMo 2: Llama's attention and SwiGLU MLP with the norms reordered — no norm before either branch, an RMSNorm on
/// each branch's output before it joins the residual (x += norm(Attn(x)); x += norm(MLP(x))) — and an RMSNorm over
/// the whole q and k projections (all heads together) before the rotation.
/// </summary>
public sealed class Olmo2 : ModelFamily
{
    public static Olmo2 Family { get; } = new();

    public override string Name => "olmo2";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["olmo2"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["olmo2"];

    public override DecoderConfig FromGguf(GgufFile file) => Common(CommonGguf(file));

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        if (config.GetBool("attention_bias") == true)
            throw new ModelFileException(config.SourcePath, "attention_bias true is not supported for olmo2");
        return Common(CommonHuggingFace(config, tiedByDefault: false));
    }

    private static DecoderConfig Common(DecoderConfig c) => c with { PreNorms = false, PostNorms = true, QkNorm = true, QkNormAcrossHeads = true };

    public override TensorLayout HuggingFaceLayout(IWeightSource source)
    {
        var names = LlamaStyleNames();
        names.Remove("attn_norm");
        names.Remove("ffn_norm");
        names["post_attention_norm"] = "model.layers.{0}.post_attention_layernorm";
        names["post_ffw_norm"] = "model.layers.{0}.post_feedforward_layernorm";
        names["attn_q_norm"] = "model.layers.{0}.self_attn.q_norm";
        names["attn_k_norm"] = "model.layers.{0}.self_attn.k_norm";
        return TensorLayout.FromTable(names);
    }

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
