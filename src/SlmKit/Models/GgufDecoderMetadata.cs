using SlmKit.Formats;

namespace SlmKit.Models;

/// <summary>
/// llama.cpp's <c>{arch}.*</c> hyperparameter keys for a decoder, from the runtime's <see cref="DecoderConfig"/>: the one
/// writer behind the Hugging Face folder converter (<see cref="HuggingFaceGgufSource"/>) and the trainer's GGUF export.
/// </summary>
public static class GgufDecoderMetadata
{
    /// <summary>
    /// Sizes, head counts (key/value length only when the head size is not hidden ÷ heads), the norm ε under the key of
    /// its kind, rotary settings where the model rotates (linear scaling only), and the vocabulary size, in this order.
    /// </summary>
    public static void Write(GgufWriter writer, string architecture, DecoderConfig c)
    {
        string a = architecture;
        bool rope = c.Positions == PositionKind.Rope;
        if (rope && c.RopeScaling is { Type: not "linear" } scaling)
            throw new SlmKitException($"rope scaling '{scaling.Type}' cannot be written to GGUF yet");
        writer.Set($"{a}.context_length", (uint)c.ContextLength);
        writer.Set($"{a}.embedding_length", (uint)c.HiddenSize);
        writer.Set($"{a}.block_count", (uint)c.LayerCount);
        writer.Set($"{a}.feed_forward_length", (uint)c.FeedForwardSize);
        if (rope)
            writer.Set($"{a}.rope.dimension_count", (uint)c.ResolvedRotaryDim);
        writer.Set($"{a}.attention.head_count", (uint)c.HeadCount);
        writer.Set($"{a}.attention.head_count_kv", (uint)c.KvHeadCount);
        if (c.ResolvedHeadDim != c.HiddenSize / c.HeadCount)
        {
            writer.Set($"{a}.attention.key_length", (uint)c.ResolvedHeadDim);
            writer.Set($"{a}.attention.value_length", (uint)c.ResolvedHeadDim);
        }
        writer.Set(c.Norm == NormKind.RmsNorm ? $"{a}.attention.layer_norm_rms_epsilon" : $"{a}.attention.layer_norm_epsilon", c.NormEpsilon);
        if (rope)
        {
            writer.Set($"{a}.rope.freq_base", c.RopeTheta);
            if (c.RopeScaling is { } linear)
            {
                writer.Set($"{a}.rope.scaling.type", "linear");
                writer.Set($"{a}.rope.scaling.factor", linear.Factor);
            }
        }
        writer.Set($"{a}.vocab_size", (uint)c.VocabSize);
    }
}
