using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Llama 2/3/3.2, TinyLlama, SmolLM, MobileLLM, MobiLlama, H2O-Danube, Fox, MiniMA: pre-RMSNorm blocks, rotary
/// positions, grouped-query attention, SwiGLU MLP — every option of <see cref="DecoderConfig"/> at its default.
/// llama.cpp's converter permutes q/k rows into adjacent rotary pairs, so GGUF weights rotate "normal" pairs.
/// </summary>
public sealed class Llama : ModelFamily
{
    public static Llama Family { get; } = new();

    public override string Name => "llama";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["llama"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["llama"];

    public override DecoderConfig FromGguf(GgufFile file)
    {
        var c = CommonGguf(file);
        // Older Llama GGUFs state the head size only as the rotary dimension.
        return c with { HeadDim = c.HeadDim > 0 ? c.HeadDim : c.RotaryDim, RopeLayout = RopeLayout.Normal };
    }

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config) => CommonHuggingFace(config, tiedByDefault: false);

    public override TensorLayout HuggingFaceLayout(IWeightSource source) => TensorLayout.FromTable(LlamaStyleNames());

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
