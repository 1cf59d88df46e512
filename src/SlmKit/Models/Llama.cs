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

    private static readonly Dictionary<string, string> s_huggingFaceStems = LlamaStyleNames();

    /// <summary>transformers' name of a llama.cpp tensor name ("blk.3.attn_q.weight" → "model.layers.3.self_attn.q_proj.weight"), or null.</summary>
    public static string? HuggingFaceName(string ggufName)
    {
        string[] parts = ggufName.Split('.');
        (string role, int layer) = parts switch
        {
            [var r, "weight"] => (r, -1),
            ["blk", var n, var r, "weight"] when int.TryParse(n, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i) => (r, i),
            _ => ("", -1),
        };
        if (!s_huggingFaceStems.TryGetValue(role, out string? stem) || stem.Contains("{0}", StringComparison.Ordinal) != layer >= 0)
            return null;
        return stem.Replace("{0}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal) + ".weight";
    }

    /// <summary>llama.cpp's name of a transformers Llama tensor name, or null.</summary>
    public static string? GgufName(string huggingFaceName)
    {
        foreach (var (role, stem) in s_huggingFaceStems)
        {
            int at = stem.IndexOf("{0}", StringComparison.Ordinal);
            if (at < 0)
            {
                if (huggingFaceName == stem + ".weight")
                    return role + ".weight";
                continue;
            }
            string head = stem[..at], tail = stem[(at + 3)..] + ".weight";
            if (huggingFaceName.Length > head.Length + tail.Length && huggingFaceName.StartsWith(head, StringComparison.Ordinal) && huggingFaceName.EndsWith(tail, StringComparison.Ordinal)
                && int.TryParse(huggingFaceName.AsSpan(head.Length, huggingFaceName.Length - head.Length - tail.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int layer))
                return $"blk.{layer}.{role}.weight";
        }
        return null;
    }
}
