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
    /// its kind, rotary settings where the model rotates, the vocabulary size, and then the keys llama.cpp reads for
    /// some architectures only (Gemma 2's soft caps and window, Gemma 3's window, GPT-NeoX's residual, MiniCPM's
    /// scales, OLMo's clamp), in this order. Rope scaling: linear as metadata; Llama 3's and long-rope's also need their
    /// tables as tensors (rope_freqs, rope_factors_short/long), which the caller adds when
    /// <paramref name="ropeTablesAdded"/> is true.
    /// </summary>
    public static void Write(GgufWriter writer, string architecture, DecoderConfig c, bool ropeTablesAdded = false)
    {
        string a = architecture;
        bool rope = c.Positions == PositionKind.Rope;
        if (rope && c.RopeScaling is { Type: not "linear" } scaling && !(ropeTablesAdded && scaling.Type is "llama3" or "longrope"))
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
            if (c.RopeScaling is { Type: "linear" } linear)
            {
                writer.Set($"{a}.rope.scaling.type", "linear");
                writer.Set($"{a}.rope.scaling.factor", linear.Factor);
            }
            else if (c.RopeScaling is { Type: "longrope" } longRope)
            {
                // convert_hf_to_gguf's Phi3MiniModel: the original length and the attention factor on cos and sin.
                writer.Set($"{a}.rope.scaling.original_context_length", (uint)longRope.OriginalContextLength);
                writer.Set($"{a}.rope.scaling.attn_factor", longRope.AttentionFactor);
            }
        }
        writer.Set($"{a}.vocab_size", (uint)c.VocabSize);
        switch (a)
        {
            case "gemma2":
                writer.Set($"{a}.attn_logit_softcapping", c.AttentionSoftCap);
                writer.Set($"{a}.final_logit_softcapping", c.FinalLogitSoftCap);
                writer.Set($"{a}.attention.sliding_window", (uint)c.SlidingWindow);
                break;
            case "gemma3":
                writer.Set($"{a}.attention.sliding_window", (uint)c.SlidingWindow);
                break;
            case "gptneox":
                writer.Set($"{a}.use_parallel_residual", c.Residual != ResidualKind.Sequential);
                break;
            case "minicpm":
                // llama.cpp divides the logits by logit_scale (hidden ÷ dim_model_base); the config holds the multiplier.
                writer.Set($"{a}.embedding_scale", c.EmbeddingScale);
                writer.Set($"{a}.residual_scale", c.ResidualScale);
                writer.Set($"{a}.logit_scale", 1f / c.LogitScale);
                break;
            case "olmo" when c.ClipQkv > 0:
                writer.Set($"{a}.attention.clamp_kqv", c.ClipQkv);
                break;
        }
    }
}
