using SlmKit.Formats;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Phi-3 / 3.5 mini: Llama blocks with a fused <c>qkv_proj</c> (q, k, v rows in turn) and a fused
/// <c>gate_up_proj</c> (gate rows first), and a sliding window over the keys. Long-rope scaling is not yet supported.
/// </summary>
public sealed class Phi3 : ModelFamily
{
    public static Phi3 Family { get; } = new();

    public override string Name => "phi3";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["phi3"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["phi3"];

    public override DecoderConfig FromGguf(GgufFile file)
    {
        if (file.Find("rope_factors_long.weight") is not null)
            throw new ModelFileException(file.SourcePath, "Phi-3 long-rope scaling (rope_factors_long) is not supported yet");
        // llama.cpp switches Phi-3's sliding window off (ggml-org/llama.cpp#13676); so does this path, to match it.
        return CommonGguf(file);
    }

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config) =>
        CommonHuggingFace(config, tiedByDefault: false) with { SlidingWindow = config.GetInt("sliding_window") ?? 0 };

    public override TensorLayout HuggingFaceLayout(IWeightSource source)
    {
        var names = LlamaStyleNames();
        names.Remove("attn_q");
        names.Remove("attn_k");
        names.Remove("attn_v");
        names.Remove("ffn_gate");
        names["attn_qkv"] = "model.layers.{0}.self_attn.qkv_proj";
        names["ffn_up"] = "model.layers.{0}.mlp.gate_up_proj";
        return TensorLayout.FromTable(names);
    }

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
