using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Phi-3 / 3.5 mini: Llama blocks with a fused <c>qkv_proj</c> (q, k, v rows in turn) and a fused
/// <c>gate_up_proj</c> (gate rows first), and a sliding window over the keys. Long-rope ("su") scaling: short and long frequency factors per rotary pair,
/// the long ones when the context (the KV cache's size) exceeds the original length as llama.cpp chooses, and an
/// attention factor on cos and sin.
/// </summary>
public sealed class Phi3 : ModelFamily
{
    public static Phi3 Family { get; } = new();

    public override string Name => "phi3";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["phi3"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["phi3"];

    public override DecoderConfig FromGguf(GgufFile file)
    {
        // llama.cpp switches Phi-3's sliding window off (ggml-org/llama.cpp#13676); so does this path, to match it.
        var config = CommonGguf(file);
        bool hasLong = file.Find("rope_factors_long.weight") is not null, hasShort = file.Find("rope_factors_short.weight") is not null;
        if (hasLong != hasShort)
            throw new ModelFileException(file.SourcePath, "Phi-3 long-rope needs both rope_factors_long and rope_factors_short");
        if (!hasLong)
            return config;
        // convert_hf_to_gguf's Phi3MiniModel: the factors as tensors, rope.scaling.attn_factor (√(1 + ln s / ln original),
        // s = max / original positions) and rope.scaling.original_context_length; llama.cpp takes the trained context
        // length when the latter is absent and 1 for a missing attn_factor.
        string a = file.Architecture ?? "phi3";
        int original = file.GetInteger($"{a}.rope.scaling.original_context_length") is long o ? checked((int)o) : config.ContextLength;
        float attention = (float)(file.GetNumber($"{a}.rope.scaling.attn_factor") ?? 1);
        return config with { RopeScaling = RopeScaling.LongRope(original, attention) };
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
