using System.Text.Json;
using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// GPT-Neo (transformers' <c>gpt_neo</c>): GPT-2's block (learned positions, LayerNorm, GELU MLP with biases, tied
/// head) with q/k/v projections without bias, an out_proj with bias, attention scores NOT scaled by 1/√d, and layers
/// that alternate global attention with local attention over the last <c>window_size</c> (256) positions, as
/// <c>attention_layers</c> / <c>attention_types</c> say. llama.cpp has no GPT-Neo architecture.
/// </summary>
public sealed class GptNeo : ModelFamily
{
    public static GptNeo Family { get; } = new();

    public override string Name => "gptneo";
    public override IReadOnlyList<string> GgufArchitectures { get; } = [];
    public override IReadOnlyList<string> HuggingFaceModelTypes { get; } = ["gpt_neo"];

    public override DecoderConfig FromHuggingFace(HuggingFaceConfig config)
    {
        int hidden = Required(config, "hidden_size"), heads = Required(config, "num_heads"), layers = Required(config, "num_layers");
        var kinds = AttentionLayers(config);
        if (kinds.Count != layers)
            throw new ModelFileException(config.SourcePath, $"gpt_neo attention layer list has {kinds.Count} entries for {layers} layers");
        var local = new bool[layers];
        for (int l = 0; l < layers; l++)
        {
            local[l] = kinds[l] switch
            {
                "local" => true,
                "global" => false,
                string other => throw new ModelFileException(config.SourcePath, $"gpt_neo attention type '{other}' is not supported (supported: global, local)"),
            };
        }
        return new DecoderConfig
        {
            HiddenSize = hidden,
            LayerCount = layers,
            HeadCount = heads,
            KvHeadCount = heads,
            FeedForwardSize = config.GetInt("intermediate_size") ?? 4 * hidden,
            VocabSize = Required(config, "vocab_size"),
            ContextLength = config.GetInt("max_position_embeddings") ?? 2048,
            Positions = PositionKind.Learned,
            Norm = NormKind.LayerNorm,
            NormHasBias = true,
            NormEpsilon = (float)(config.GetDouble("layer_norm_epsilon") ?? 1e-5),
            AttentionScale = 1f,
            SlidingWindow = config.GetInt("window_size") ?? 256,
            SlidingLayers = local,
            QkvBias = false,
            AttentionOutputBias = true,
            GatedFeedForward = false,
            Activation = ActivationFromHuggingFace(config, "activation_function", "gelu_new"),
            FeedForwardBias = true,
            TiedEmbeddings = config.GetBool("tie_word_embeddings") ?? true,
        };
    }

    /// <summary><c>attention_layers</c> when the config has it, else <c>attention_types</c> ([[["global", "local"], 12]]) expanded.</summary>
    private static List<string> AttentionLayers(HuggingFaceConfig config)
    {
        var result = new List<string>();
        ModelFileException Malformed(string key) => new(config.SourcePath, $"gpt_neo field '{key}' is malformed");
        if (config.Root.TryGetProperty("attention_layers", out var layers) && layers.ValueKind == JsonValueKind.Array)
        {
            foreach (var kind in layers.EnumerateArray())
                result.Add(kind.ValueKind == JsonValueKind.String ? kind.GetString()! : throw Malformed("attention_layers"));
            return result;
        }
        if (!config.Root.TryGetProperty("attention_types", out var types) || types.ValueKind != JsonValueKind.Array)
            throw new ModelFileException(config.SourcePath, "field 'attention_types' is missing");
        foreach (var group in types.EnumerateArray())
        {
            if (group.ValueKind != JsonValueKind.Array || group.GetArrayLength() != 2 || group[0].ValueKind != JsonValueKind.Array
                || group[1].ValueKind != JsonValueKind.Number || !group[1].TryGetInt32(out int repeats) || repeats < 0 || repeats > 100_000)
                throw Malformed("attention_types");
            for (int r = 0; r < repeats; r++)
            {
                foreach (var kind in group[0].EnumerateArray())
                    result.Add(kind.ValueKind == JsonValueKind.String ? kind.GetString()! : throw Malformed("attention_types"));
            }
        }
        return result;
    }

    public override TensorLayout HuggingFaceLayout(IWeightSource source)
    {
        string p = PrefixOf(source, "wte.weight", "transformer.");
        return TensorLayout.FromTable(new Dictionary<string, string>
        {
            ["token_embd"] = p + "wte",
            ["position_embd"] = p + "wpe",
            ["output_norm"] = p + "ln_f",
            ["output"] = "lm_head",
            ["attn_norm"] = p + "h.{0}.ln_1",
            ["attn_q"] = p + "h.{0}.attn.attention.q_proj",
            ["attn_k"] = p + "h.{0}.attn.attention.k_proj",
            ["attn_v"] = p + "h.{0}.attn.attention.v_proj",
            ["attn_output"] = p + "h.{0}.attn.attention.out_proj",
            ["ffn_norm"] = p + "h.{0}.ln_2",
            ["ffn_up"] = p + "h.{0}.mlp.c_fc",
            ["ffn_down"] = p + "h.{0}.mlp.c_proj",
        });
    }

    public static long ParameterCount(DecoderConfig config) => config.ParameterCount();
}
