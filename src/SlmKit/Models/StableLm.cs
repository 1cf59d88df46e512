using SlmKit.Formats;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// StableLM / StableLM 2: Llama's SwiGLU blocks with LayerNorm (weight and bias), partial rotary (25 %), optional
/// q/k/v biases and an optional parallel residual (attention and MLP off the same norm).
/// </summary>
public sealed class StableLm : ModelFamily
{
    public static StableLm Family { get; } = new();

    public override string Name => "stablelm";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["stablelm"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["stablelm"];

    public override DecoderConfig FromGguf(GgufFile file)
    {
        if (file.Find("blk.0.attn_q_norm.weight") is not null)
            throw new ModelFileException(file.SourcePath, "StableLM per-head q/k LayerNorms are not supported yet");
        return Common(CommonGguf(file), qkvBias: file.Find("blk.0.attn_q.bias") is not null, parallel: file.Find("blk.0.ffn_norm.weight") is null);
    }

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        if (config.GetBool("qk_layernorm") == true)
            throw new ModelFileException(config.SourcePath, "qk_layernorm true is not supported for stablelm yet");
        var c = CommonHuggingFace(config, tiedByDefault: false) with
        {
            NormEpsilon = (float)(config.GetDouble("layer_norm_eps") ?? 1e-5),
            Activation = ActivationFromHuggingFace(config, "hidden_act", "silu"),
        };
        return Common(c, config.GetBool("use_qkv_bias") ?? false, config.GetBool("use_parallel_residual") ?? false);
    }

    private static DecoderConfig Common(DecoderConfig c, bool qkvBias, bool parallel) => c with
    {
        Norm = NormKind.LayerNorm,
        NormHasBias = true,
        QkvBias = qkvBias,
        Residual = parallel ? ResidualKind.ParallelSharedNorm : ResidualKind.Sequential,
    };

    public override TensorLayout HuggingFaceLayout(IWeightSource source) => TensorLayout.FromTable(LlamaStyleNames());

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
