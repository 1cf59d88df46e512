using SlmKit.Formats;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>Qwen 1.5 / 2 / 2.5: Llama with biases on q, k and v, a large rope theta, tied or untied head.</summary>
public sealed class Qwen2 : ModelFamily
{
    public static Qwen2 Family { get; } = new();

    public override string Name => "qwen2";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["qwen2"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["qwen2"];

    public override DecoderConfig FromGguf(GgufFile file) => CommonGguf(file) with { QkvBias = true };

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config) =>
        CommonHuggingFace(config, tiedByDefault: false) with { QkvBias = true, SlidingWindow = SlidingWindowOf(config) };

    public override TensorLayout HuggingFaceLayout(IWeightSource source) => TensorLayout.FromTable(LlamaStyleNames());

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();

    // Published Qwen2 configs carry sliding_window but switch it off (use_sliding_window false).
    private static int SlidingWindowOf(HuggingFaceConfig config) =>
        config.GetBool("use_sliding_window") == true
            ? throw new ModelFileException(config.SourcePath, "use_sliding_window true is not supported for qwen2 (max_window_layers)")
            : 0;
}
