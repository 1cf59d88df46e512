using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// OLMo (1): Llama blocks with LayerNorms that have no learnable parameters, and q, k, v optionally clamped to
/// ±<c>clip_qkv</c>. llama.cpp's converter permutes q/k rows as for Llama.
/// </summary>
public sealed class Olmo : ModelFamily
{
    public static Olmo Family { get; } = new();

    public override string Name => "olmo";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["olmo"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["olmo"];

    public override DecoderConfig FromGguf(GgufFile file) =>
        Common(CommonGguf(file) with { RopeLayout = RopeLayout.Normal, ClipQkv = (float)(new GgufKeys(file).Number("attention.clamp_kqv") ?? 0) });

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config) =>
        Common(CommonHuggingFace(config, tiedByDefault: false) with { NormEpsilon = 1e-5f, ClipQkv = (float)(config.GetDouble("clip_qkv") ?? 0) });

    private static DecoderConfig Common(DecoderConfig c) => c with { Norm = NormKind.LayerNorm, NormHasWeight = false, NormHasBias = false };

    public override TensorLayout HuggingFaceLayout(IWeightSource source) => TensorLayout.FromTable(LlamaStyleNames());

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
