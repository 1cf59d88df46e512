using SlmKit.Formats;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Qwen 3 (dense): Qwen 2's blocks without the q/k/v biases (unless attention_bias says otherwise) and with an RMSNorm
/// over each head of q and of k before the rotation (q_norm, k_norm: one weight vector of head_dim per layer, shared by
/// the heads). The head size is stated on its own (128 for Qwen3-0.6B, whose q projection is wider than its hidden size).
/// </summary>
public sealed class Qwen3 : ModelFamily
{
    public static Qwen3 Family { get; } = new();

    public override string Name => "qwen3";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["qwen3"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["qwen3"];

    public override DecoderConfig FromGguf(GgufFile file) =>
        CommonGguf(file) with { QkNorm = true, QkvBias = file.Find("blk.0.attn_q.bias") is not null };

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        if (config.GetBool("use_sliding_window") == true)
            throw new ModelFileException(config.SourcePath, "use_sliding_window true is not supported for qwen3 (max_window_layers)");
        return CommonHuggingFace(config, tiedByDefault: false) with { QkNorm = true, QkvBias = config.GetBool("attention_bias") ?? false };
    }

    public override TensorLayout HuggingFaceLayout(IWeightSource source)
    {
        var names = LlamaStyleNames();
        names["attn_q_norm"] = "model.layers.{0}.self_attn.q_norm";
        names["attn_k_norm"] = "model.layers.{0}.self_attn.k_norm";
        return TensorLayout.FromTable(names);
    }

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
