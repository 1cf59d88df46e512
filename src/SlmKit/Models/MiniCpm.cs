using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// MiniCPM (1/2): Llama blocks with embeddings × <c>scale_emb</c>, each branch × <c>scale_depth</c>/√layers before it
/// joins the residual, and logits × <c>dim_model_base</c>/hidden. llama.cpp's converter permutes q/k rows as for Llama.
/// </summary>
public sealed class MiniCpm : ModelFamily
{
    public static MiniCpm Family { get; } = new();

    public override string Name => "minicpm";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["minicpm"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["minicpm"];

    public override DecoderConfig FromGguf(GgufFile file)
    {
        var keys = new GgufKeys(file);
        return CommonGguf(file) with
        {
            RopeLayout = RopeLayout.Normal,
            EmbeddingScale = (float)(keys.Number("embedding_scale") ?? 1),
            ResidualScale = (float)(keys.Number("residual_scale") ?? 1),
            LogitScale = 1f / (float)(keys.Number("logit_scale") ?? 1),
        };
    }

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        var c = CommonHuggingFace(config, tiedByDefault: true);
        return c with
        {
            EmbeddingScale = (float)(config.GetDouble("scale_emb") ?? 1),
            ResidualScale = (float)((config.GetDouble("scale_depth") ?? 1) / Math.Sqrt(c.LayerCount)),
            LogitScale = (float)((config.GetDouble("dim_model_base") ?? c.HiddenSize) / c.HiddenSize),
        };
    }

    public override TensorLayout HuggingFaceLayout(IWeightSource source) => TensorLayout.FromTable(LlamaStyleNames());

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
