using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// OPT and Galactica (transformers' <c>opt</c>): learned positions whose table starts 2 rows in, LayerNorm blocks with
/// biases, separate q/k/v/out projections with biases, a ReLU (Galactica: GELU) MLP fc1 → fc2, and a head tied to the
/// token embeddings. llama.cpp has no OPT architecture. OPT-350m's variations are options of the shared decoder:
/// post-norm blocks (<c>do_layer_norm_before: false</c>, which also drops the final norm, as
/// <c>_remove_final_layer_norm</c> does) and, when <c>word_embed_proj_dim</c> differs from <c>hidden_size</c>, bias-free
/// <c>project_in</c> (embeddings → hidden, before the positions are added) and <c>project_out</c> (hidden → embedding
/// width, before the tied head).
/// </summary>
public sealed class Opt : ModelFamily
{
    public static Opt Family { get; } = new();

    public override string Name => "opt";
    public override IReadOnlyList<string> GgufArchitectures { get; } = [];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["opt"];

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        int hidden = Required(config, "hidden_size"), heads = Required(config, "num_attention_heads");
        bool preNorm = config.GetBool("do_layer_norm_before") ?? true;
        bool bias = config.GetBool("enable_bias") ?? true;
        bool affine = config.GetBool("layer_norm_elementwise_affine") ?? true;
        return new DecoderConfig
        {
            HiddenSize = hidden,
            LayerCount = Required(config, "num_hidden_layers"),
            HeadCount = heads,
            KvHeadCount = heads,
            FeedForwardSize = Required(config, "ffn_dim"),
            VocabSize = Required(config, "vocab_size"),
            ContextLength = config.GetInt("max_position_embeddings") ?? 2048,
            Positions = PositionKind.Learned,
            PositionOffset = 2,
            Norm = NormKind.LayerNorm,
            NormHasWeight = affine,
            NormHasBias = affine,
            NormEpsilon = 1e-5f, // nn.LayerNorm's default; OPT's config has no field for it
            QkvBias = bias,
            AttentionOutputBias = bias,
            GatedFeedForward = false,
            Activation = ActivationFromHuggingFace(config, "activation_function", "relu"),
            FeedForwardBias = bias,
            TiedEmbeddings = config.GetBool("tie_word_embeddings") ?? true,
            PostLayerNorm = !preNorm,
            FinalNorm = preNorm && config.GetBool("_remove_final_layer_norm") != true,
            EmbeddingSize = config.GetInt("word_embed_proj_dim") ?? hidden,
        };
    }

    public override TensorLayout HuggingFaceLayout(IWeightSource source)
    {
        // Saved from OPTForCausalLM ("model.decoder.…") or from the bare OPTModel ("decoder.…", as facebook/opt-125m is).
        string p = PrefixOf(source, "decoder.embed_tokens.weight", "model.") + "decoder.";
        return TensorLayout.FromTable(new Dictionary<string, string>
        {
            ["token_embd"] = p + "embed_tokens",
            ["position_embd"] = p + "embed_positions",
            ["output_norm"] = p + "final_layer_norm",
            ["output"] = "lm_head",
            ["input_proj"] = p + "project_in",
            ["output_proj"] = p + "project_out",
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
