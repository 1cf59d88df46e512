using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// BLOOM / BLOOMZ: ALiBi instead of position embeddings, LayerNorm on the token embeddings, LayerNorm blocks with
/// biases everywhere, GELU (tanh) MLP, a tied head, and a fused qkv that Hugging Face checkpoints interleave head
/// by head (llama.cpp's converter reorders it to q, k, v).
/// </summary>
public sealed class Bloom : ModelFamily
{
    public static Bloom Family { get; } = new();

    public override string Name => "bloom";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["bloom"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["bloom"];

    public override DecoderConfig FromGguf(GgufFile file) => Common(CommonGguf(file));

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        int hidden = config.GetInt("hidden_size") ?? Required(config, "n_embed");
        int heads = config.GetInt("n_head") ?? Required(config, "num_attention_heads");
        if (config.GetBool("apply_residual_connection_post_layernorm") == true)
            throw new ModelFileException(config.SourcePath, "apply_residual_connection_post_layernorm true is not supported for bloom");
        return Common(new DecoderConfig
        {
            HiddenSize = hidden,
            LayerCount = config.GetInt("n_layer") ?? Required(config, "num_hidden_layers"),
            HeadCount = heads,
            KvHeadCount = heads,
            FeedForwardSize = 4 * hidden,
            VocabSize = Required(config, "vocab_size"),
            ContextLength = config.GetInt("seq_length") ?? 2048,
            NormEpsilon = (float)(config.GetDouble("layer_norm_epsilon") ?? 1e-5),
            TiedEmbeddings = config.GetBool("tie_word_embeddings") ?? true,
        });
    }

    private static DecoderConfig Common(DecoderConfig c) => c with
    {
        Positions = PositionKind.Alibi,
        EmbeddingNorm = true,
        Norm = NormKind.LayerNorm,
        NormHasBias = true,
        QkvBias = true,
        AttentionOutputBias = true,
        GatedFeedForward = false,
        Activation = ActivationKind.GeluTanh,
        FeedForwardBias = true,
    };

    public override TensorLayout HuggingFaceLayout(IWeightSource source)
    {
        string p = PrefixOf(source, "word_embeddings.weight", "transformer.");
        return new(TensorLayout.FromTable(new Dictionary<string, string>
        {
            ["token_embd"] = p + "word_embeddings",
            ["token_embd_norm"] = p + "word_embeddings_layernorm",
            ["output_norm"] = p + "ln_f",
            ["output"] = "lm_head",
            ["attn_norm"] = p + "h.{0}.input_layernorm",
            ["attn_qkv"] = p + "h.{0}.self_attention.query_key_value",
            ["attn_output"] = p + "h.{0}.self_attention.dense",
            ["ffn_norm"] = p + "h.{0}.post_attention_layernorm",
            ["ffn_up"] = p + "h.{0}.mlp.dense_h_to_4h",
            ["ffn_down"] = p + "h.{0}.mlp.dense_4h_to_h",
        }).Stem)
        { FusedQkv = QkvLayout.PerHeadInterleaved };
    }

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
