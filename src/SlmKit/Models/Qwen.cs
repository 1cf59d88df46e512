using SlmKit.Formats;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// Qwen (1): Llama blocks with a fused <c>c_attn</c> (q, k, v rows in turn, with a bias) and its own tensor names
/// (<c>transformer.h.N.attn.c_attn</c>, <c>mlp.w1</c> = up, <c>mlp.w2</c> = gate). Its config's
/// <c>intermediate_size</c> counts both halves of the MLP, so the MLP width is half of it.
/// </summary>
public sealed class Qwen : ModelFamily
{
    public static Qwen Family { get; } = new();

    public override string Name => "qwen";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["qwen"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["qwen"];

    public override DecoderConfig FromGguf(GgufFile file)
    {
        // llama.cpp's qwen keeps intermediate_size as feed_forward_length and builds the MLP with half of it.
        var c = CommonGguf(file);
        return c with { FeedForwardSize = c.FeedForwardSize / 2, QkvBias = true };
    }

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        int hidden = Required(config, "hidden_size"), heads = Required(config, "num_attention_heads");
        int headDim = config.GetInt("kv_channels") ?? hidden / heads;
        double rotaryPct = config.GetDouble("rotary_pct") ?? 1.0;
        return new DecoderConfig
        {
            HiddenSize = hidden,
            LayerCount = Required(config, "num_hidden_layers"),
            HeadCount = heads,
            KvHeadCount = heads,
            HeadDim = headDim == hidden / heads ? 0 : headDim,
            FeedForwardSize = Required(config, "intermediate_size") / 2,
            VocabSize = Required(config, "vocab_size"),
            ContextLength = config.GetInt("seq_length") ?? config.GetInt("max_position_embeddings") ?? 2048,
            NormEpsilon = (float)(config.GetDouble("layer_norm_epsilon") ?? 1e-6),
            RopeTheta = (float)(config.GetDouble("rotary_emb_base") ?? 10000),
            RotaryDim = rotaryPct < 1 ? (int)(headDim * rotaryPct) : 0,
            TiedEmbeddings = config.GetBool("tie_word_embeddings") ?? false,
            QkvBias = true,
        };
    }

    public override TensorLayout HuggingFaceLayout(IWeightSource source) => TensorLayout.FromTable(new Dictionary<string, string>
    {
        ["token_embd"] = "transformer.wte",
        ["output_norm"] = "transformer.ln_f",
        ["output"] = "lm_head",
        ["attn_norm"] = "transformer.h.{0}.ln_1",
        ["attn_qkv"] = "transformer.h.{0}.attn.c_attn",
        ["attn_output"] = "transformer.h.{0}.attn.c_proj",
        ["ffn_norm"] = "transformer.h.{0}.ln_2",
        ["ffn_up"] = "transformer.h.{0}.mlp.w1",
        ["ffn_gate"] = "transformer.h.{0}.mlp.w2",
        ["ffn_down"] = "transformer.h.{0}.mlp.c_proj",
    });

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
