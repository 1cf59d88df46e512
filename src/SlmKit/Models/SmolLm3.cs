using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// SmolLM 3: Llama's blocks where every fourth layer attends without rotary positions (NoPE), transformers'
/// no_rope_layers (1: rotate, 0: not). llama.cpp's converter permutes q/k rows as for Llama, and its smollm3 graph
/// skips the rotation in layers 3, 7, 11, ….
/// </summary>
public sealed class SmolLm3 : ModelFamily
{
    /// <summary>llama.cpp's fixed step: layer i rotates unless (i + 1) is a multiple of it.</summary>
    private const int NoRopeStep = 4;

    public static SmolLm3 Family { get; } = new();

    public override string Name => "smollm3";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["smollm3"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["smollm3"];

    public override DecoderConfig FromGguf(GgufFile file)
    {
        var c = Llama.Family.FromGguf(file);
        return c with { NoRopeLayers = StepLayers(c.LayerCount, NoRopeStep) };
    }

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        if (config.GetBool("use_sliding_window") == true)
            throw new ModelFileException(config.SourcePath, "use_sliding_window true is not supported for smollm3");
        var c = CommonHuggingFace(config, tiedByDefault: true);
        if (config.GetBool("attention_bias") == true || config.GetBool("mlp_bias") == true)
            throw new ModelFileException(config.SourcePath, "attention_bias and mlp_bias true are not supported for smollm3");
        int[]? flags = config.GetIntArray("no_rope_layers");
        if (flags is not null && flags.Length != c.LayerCount)
            throw new ModelFileException(config.SourcePath, $"no_rope_layers has {flags.Length} entries for {c.LayerCount} layers");
        bool[] noRope = flags is not null
            ? Array.ConvertAll(flags, flag => flag == 0)
            : StepLayers(c.LayerCount, config.GetInt("no_rope_layer_interval") ?? NoRopeStep);
        return c with { NoRopeLayers = noRope };
    }

    /// <summary>Layer i skips the rotation when (i + 1) is a multiple of <paramref name="step"/> (llama.cpp's smollm3 fixes four).</summary>
    internal static bool[] StepLayers(int layers, int step = NoRopeStep)
    {
        var noRope = new bool[layers];
        for (int l = 0; l < layers; l++)
            noRope[l] = (l + 1) % step == 0;
        return noRope;
    }

    public override TensorLayout HuggingFaceLayout(IWeightSource source) => TensorLayout.FromTable(LlamaStyleNames());

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
