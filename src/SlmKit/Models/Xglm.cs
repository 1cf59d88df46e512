using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// XGLM (transformers' <c>xglm</c>): fairseq's fixed sinusoidal positions, read 2 rows into the table; token
/// embeddings multiplied by √d_model (<c>scale_embedding</c>); pre-norm LayerNorm blocks with biases; q/k/v/out
/// projections with biases; a GELU (exact, erf) MLP fc1 → fc2 with biases; a head tied to the embeddings.
/// llama.cpp has no XGLM architecture.
/// </summary>
public sealed class Xglm : ModelFamily
{
    public static Xglm Family { get; } = new();

    public override string Name => "xglm";
    public override IReadOnlyList<string> GgufArchitectures { get; } = [];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["xglm"];

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        int hidden = Required(config, "d_model"), heads = Required(config, "attention_heads");
        return new DecoderConfig
        {
            HiddenSize = hidden,
            LayerCount = Required(config, "num_layers"),
            HeadCount = heads,
            KvHeadCount = heads,
            FeedForwardSize = Required(config, "ffn_dim"),
            VocabSize = Required(config, "vocab_size"),
            ContextLength = config.GetInt("max_position_embeddings") ?? 2048,
            Positions = PositionKind.Sinusoidal,
            PositionOffset = 2,
            EmbeddingScale = config.GetBool("scale_embedding") ?? true ? MathF.Sqrt(hidden) : 1f,
            Norm = NormKind.LayerNorm,
            NormHasBias = true,
            NormEpsilon = 1e-5f, // nn.LayerNorm's default; XGLM's config has no field for it
            QkvBias = true,
            AttentionOutputBias = true,
            GatedFeedForward = false,
            Activation = ActivationFromHuggingFace(config, "activation_function", "gelu"),
            FeedForwardBias = true,
            TiedEmbeddings = config.GetBool("tie_word_embeddings") ?? true,
        };
    }

    public override TensorLayout HuggingFaceLayout(IWeightSource source)
    {
        string p = PrefixOf(source, "embed_tokens.weight", "model.");
        return TensorLayout.FromTable(new Dictionary<string, string>
        {
            ["token_embd"] = p + "embed_tokens",
            ["output_norm"] = p + "layer_norm",
            ["output"] = "lm_head",
            ["attn_norm"] = p + "layers.{0}.self_attn_layer_norm",
            ["attn_q"] = p + "layers.{0}.self_attn.q_proj",
            ["attn_k"] = p + "layers.{0}.self_attn.k_proj",
            ["attn_v"] = p + "layers.{0}.self_attn.v_proj",
            ["attn_output"] = p + "layers.{0}.self_attn.out_proj",
            ["ffn_norm"] = p + "layers.{0}.final_layer_norm",
            ["ffn_up"] = p + "layers.{0}.fc1",
            ["ffn_down"] = p + "layers.{0}.fc2",
        });
    }

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
