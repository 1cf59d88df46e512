using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// GPT-2 (also Cerebras-GPT, Megatron-GPT2, LaMini-GPT): learned absolute positions, LayerNorm, GELU (tanh) MLP,
/// biases everywhere, a fused q/k/v, a tied head. Hugging Face checkpoints store every linear weight as Conv1D,
/// i.e. transposed ([in, out]); they are transposed once on load.
/// </summary>
public sealed class Gpt2 : ModelFamily
{
    public static Gpt2 Family { get; } = new();

    public override string Name => "gpt2";
    public override IReadOnlyList<string> GgufArchitectures { get; } = ["gpt2"];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["gpt2"];

    public override DecoderConfig FromGguf(GgufFile file) => Common(CommonGguf(file), ActivationKind.GeluTanh);

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        int hidden = Required(config, "n_embd"), heads = Required(config, "n_head");
        var c = new DecoderConfig
        {
            HiddenSize = hidden,
            LayerCount = Required(config, "n_layer"),
            HeadCount = heads,
            KvHeadCount = heads,
            FeedForwardSize = config.GetInt("n_inner") ?? 4 * hidden,
            VocabSize = Required(config, "vocab_size"),
            ContextLength = config.GetInt("n_positions") ?? 1024,
            NormEpsilon = (float)(config.GetDouble("layer_norm_epsilon") ?? 1e-5),
            TiedEmbeddings = config.GetBool("tie_word_embeddings") ?? true,
        };
        if (config.GetBool("scale_attn_by_inverse_layer_idx") == true || config.GetBool("reorder_and_upcast_attn") == true)
            throw new ModelFileException(config.SourcePath, "scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported for gpt2");
        return Common(c, ActivationFromHuggingFace(config, "activation_function", "gelu_new"));
    }

    private static DecoderConfig Common(DecoderConfig c, ActivationKind activation) => c with
    {
        Positions = PositionKind.Learned,
        Norm = NormKind.LayerNorm,
        NormHasBias = true,
        QkvBias = true,
        AttentionOutputBias = true,
        GatedFeedForward = false,
        Activation = activation,
        FeedForwardBias = true,
    };

    public override TensorLayout HuggingFaceLayout(IWeightSource source)
    {
        string p = PrefixOf(source, "wte.weight", "transformer.");
        return new(TensorLayout.FromTable(new Dictionary<string, string>
        {
            ["token_embd"] = p + "wte",
            ["position_embd"] = p + "wpe",
            ["output_norm"] = p + "ln_f",
            ["output"] = "lm_head",
            ["attn_norm"] = p + "h.{0}.ln_1",
            ["attn_qkv"] = p + "h.{0}.attn.c_attn",
            ["attn_output"] = p + "h.{0}.attn.c_proj",
            ["ffn_norm"] = p + "h.{0}.ln_2",
            ["ffn_up"] = p + "h.{0}.mlp.c_fc",
            ["ffn_down"] = p + "h.{0}.mlp.c_proj",
        }).Stem)
        { TransposedLinears = true };
    }

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
