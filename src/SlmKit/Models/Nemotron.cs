using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Nemotron / Minitron: an MLP without gate using squared ReLU, LayerNorm1p (LayerNorm whose weight is used as
/// 1 + w; llama.cpp's converter stores 1 + w), partial rotary, optional attention and MLP biases.
/// </summary>
public sealed class Nemotron : ModelFamily
{
    public static Nemotron Family { get; } = new();

    public override string Name => "nemotron";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["nemotron"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["nemotron"];

    public override DecoderConfig FromGguf(GgufFile file) =>
        Common(CommonGguf(file), attentionBias: file.Find("blk.0.attn_q.bias") is not null, mlpBias: file.Find("blk.0.ffn_up.bias") is not null);

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        var c = CommonHuggingFace(config, tiedByDefault: false) with { NormEpsilon = (float)(config.GetDouble("norm_eps") ?? 1e-5) };
        if (ActivationFromHuggingFace(config, "hidden_act", "relu2") != ActivationKind.SquaredRelu)
            throw new ModelFileException(config.SourcePath, "nemotron supports hidden_act 'relu2' only");
        bool attentionBias = config.GetBool("attention_bias") ?? false;
        return Common(c, attentionBias, config.GetBool("mlp_bias") ?? false);
    }

    private static DecoderConfig Common(DecoderConfig c, bool attentionBias, bool mlpBias) => c with
    {
        Norm = NormKind.LayerNorm,
        NormHasBias = true,
        GatedFeedForward = false,
        Activation = ActivationKind.SquaredRelu,
        QkvBias = attentionBias,
        AttentionOutputBias = attentionBias,
        FeedForwardBias = mlpBias,
    };

    public override TensorLayout HuggingFaceLayout(IWeightSource source) =>
        new(TensorLayout.FromTable(LlamaStyleNames()).Stem) { NormWeightOffset = 1f };

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
