using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Gemma: GeGLU MLP with the tanh GELU, token embeddings × √hidden, RMSNorm whose weight is used as (1 + w), a head
/// size that need not be hidden/heads, and a head tied to the embeddings. llama.cpp's converter stores 1 + w, so
/// only Hugging Face weights get the offset on load.
/// </summary>
public sealed class Gemma : ModelFamily
{
    public static Gemma Family { get; } = new();

    public override string Name => "gemma";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["gemma"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["gemma"];

    public override DecoderConfig FromGguf(GgufFile file)
    {
        var c = CommonGguf(file);
        return c with { Activation = ActivationKind.GeluTanh, EmbeddingScale = MathF.Sqrt(c.HiddenSize), TiedEmbeddings = true };
    }

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        var c = CommonHuggingFace(config, tiedByDefault: true);
        return c with
        {
            Activation = ActivationFromHuggingFace(config, config.GetString("hidden_activation") is null ? "hidden_act" : "hidden_activation", "gelu_pytorch_tanh"),
            EmbeddingScale = MathF.Sqrt(c.HiddenSize),
        };
    }

    public override TensorLayout HuggingFaceLayout(IWeightSource source) =>
        new(TensorLayout.FromTable(LlamaStyleNames()).Stem) { NormWeightOffset = 1f };

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
