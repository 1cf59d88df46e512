using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>
/// How one kind of checkpoint names and stores the tensors of the shared decoder. Tensors are asked for by their
/// llama.cpp role ("token_embd", "attn_q", "ffn_down", …) and a layer index (−1 outside the blocks); the layout turns
/// that into the file's stem, to which ".weight" or ".bias" is appended.
/// </summary>
public sealed class TensorLayout
{
    /// <param name="stem">(role, layer) → the file's name stem, or null when the family has no such tensor.</param>
    public TensorLayout(Func<string, int, string?> stem) => Stem = stem;

    public Func<string, int, string?> Stem { get; }

    /// <summary>Row order of a fused query/key/value projection.</summary>
    public QkvLayout FusedQkv { get; init; } = QkvLayout.Concatenated;

    /// <summary>GPT-2's Conv1D: linear weights are stored [in, out] rather than [out, in].</summary>
    public bool TransposedLinears { get; init; }

    /// <summary>Added to every norm weight on load (Gemma's (1 + w) RMSNorm, Nemotron's LayerNorm1p).</summary>
    public float NormWeightOffset { get; init; }

    /// <summary>llama.cpp's names: token_embd.weight, blk.N.attn_q.weight, … (llama2.c checkpoints are exposed this way too).</summary>
    public static TensorLayout Gguf { get; } = new((role, layer) => layer < 0 ? role : $"blk.{layer}.{role}");

    /// <summary>A layout from a table of role → stem, where "{0}" stands for the layer index.</summary>
    public static TensorLayout FromTable(IReadOnlyDictionary<string, string> stems) =>
        new((role, layer) => stems.TryGetValue(role, out var stem) ? stem.Replace("{0}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal) : null);
}

/// <summary>A normalisation's parameters; both null for a parameter-free norm (OLMo).</summary>
internal sealed record NormWeights(float[]? Weight, float[]? Bias);

/// <summary>y = W·x (+ b).</summary>
internal sealed record Linear(WeightTensor Weight, float[]? Bias);

internal sealed class DecoderLayer
{
    /// <summary>Null where the blocks have no pre-norms (<see cref="DecoderConfig.PreNorms"/>).</summary>
    public NormWeights? AttentionNorm { get; init; }
    public NormWeights? FeedForwardNorm { get; init; }
    public NormWeights? PostAttentionNorm { get; init; }
    public NormWeights? PostFeedForwardNorm { get; init; }

    /// <summary>Either Qkv (fused) or Query, Key and Value.</summary>
    public Linear? Qkv { get; init; }
    public Linear? Query { get; init; }
    public Linear? Key { get; init; }
    public Linear? Value { get; init; }
    public NormWeights? QueryNorm { get; init; }
    public NormWeights? KeyNorm { get; init; }
    public required Linear Output { get; init; }

    /// <summary>Gate is null for ungated MLPs and for a fused gate+up in Up (gate rows first).</summary>
    public Linear? Gate { get; init; }
    public required Linear Up { get; init; }
    public required Linear Down { get; init; }
    public bool FusedGateUp { get; init; }
}

/// <summary>Every tensor of a decoder, bound and shape-checked against its config.</summary>
internal sealed class DecoderWeights
{
    public required WeightTensor Embedding { get; init; }
    public WeightTensor? PositionEmbedding { get; init; }
    public NormWeights? EmbeddingNorm { get; init; }
    public required DecoderLayer[] Layers { get; init; }
    public NormWeights? FinalNorm { get; init; }

    /// <summary>Embedding width → hidden and back (null unless <see cref="DecoderConfig.ProjectsEmbeddings"/>).</summary>
    public Linear? InputProjection { get; init; }
    public Linear? OutputProjection { get; init; }
    public required Linear Output { get; init; }
    public float[]? RopeFrequencyFactors { get; init; }

    /// <summary>Phi-3 long-rope's long factors (GGUF rope_factors_long; the short ones are <see cref="RopeFrequencyFactors"/>).</summary>
    public float[]? RopeLongFactors { get; init; }

    public static DecoderWeights Bind(WeightBinder w, IWeightSource source, DecoderConfig c, TensorLayout layout)
    {
        int d = c.HiddenSize, e = c.ResolvedEmbeddingSize, headDim = c.ResolvedHeadDim;

        string Name(string role, int layer, string kind = "weight") =>
            (layout.Stem(role, layer) ?? throw new ModelFileException(source.SourcePath, $"this family has no '{role}' tensor")) + "." + kind;
        bool Has(string role, int layer) => layout.Stem(role, layer) is { } stem && source.Find(stem + ".weight") is not null;

        NormWeights Norm(string role, int layer, int length = 0)
        {
            length = length > 0 ? length : d;
            float[]? weight = c.NormHasWeight ? w.Vector(Name(role, layer), length) : null;
            if (weight is not null && layout.NormWeightOffset != 0)
            {
                for (int i = 0; i < weight.Length; i++)
                    weight[i] += layout.NormWeightOffset;
            }
            float[]? bias = c.NormHasBias ? w.Vector(Name(role, layer, "bias"), length) : null;
            return new NormWeights(weight, bias);
        }

        Linear Project(string role, int layer, int rows, int cols, bool bias)
        {
            string name = Name(role, layer);
            var weight = layout.TransposedLinears ? w.TransposedMatrix(name, rows, cols) : w.Matrix(name, rows, cols);
            return new Linear(weight, bias ? w.Vector(Name(role, layer, "bias"), rows) : null);
        }

        // Long-rope factors are configuration (config.json lists them), so they are read without counting as parameters.
        float[]? LongRopeFactors(string name) =>
            layout == TensorLayout.Gguf && c.RopeScaling?.Type == "longrope" && source.Find(name) is not null
                ? w.Vector(name, c.ResolvedRotaryDim / 2, countAsParameters: false)
                : null;

        var embedding = w.Matrix(Name("token_embd", -1), c.VocabSize, e);
        var layers = new DecoderLayer[c.LayerCount];
        for (int l = 0; l < c.LayerCount; l++)
        {
            int q = c.HeadsOf(l) * headDim, kv = c.KvHeadsOf(l) * headDim, f = c.FeedForwardOf(l);
            bool fusedQkv = Has("attn_qkv", l);
            bool fusedGateUp = c.GatedFeedForward && !Has("ffn_gate", l);
            layers[l] = new DecoderLayer
            {
                AttentionNorm = c.PreNorms ? Norm("attn_norm", l) : null,
                Qkv = fusedQkv ? Project("attn_qkv", l, q + 2 * kv, d, c.QkvBias) : null,
                Query = fusedQkv ? null : Project("attn_q", l, q, d, c.QkvBias),
                Key = fusedQkv ? null : Project("attn_k", l, kv, d, c.QkvBias),
                Value = fusedQkv ? null : Project("attn_v", l, kv, d, c.QkvBias),
                QueryNorm = c.QkNorm ? Norm("attn_q_norm", l, c.QkNormAcrossHeads ? q : headDim) : null,
                KeyNorm = c.QkNorm ? Norm("attn_k_norm", l, c.QkNormAcrossHeads ? kv : headDim) : null,
                Output = Project("attn_output", l, d, q, c.AttentionOutputBias),
                PostAttentionNorm = c.PostNorms ? Norm("post_attention_norm", l) : null,
                FeedForwardNorm = c.Residual == ResidualKind.ParallelSharedNorm || !c.PreNorms ? null : Norm("ffn_norm", l),
                Gate = c.GatedFeedForward && !fusedGateUp ? Project("ffn_gate", l, f, d, c.FeedForwardBias) : null,
                Up = Project("ffn_up", l, fusedGateUp ? 2 * f : f, d, c.FeedForwardBias),
                FusedGateUp = fusedGateUp,
                Down = Project("ffn_down", l, d, f, c.FeedForwardBias),
                PostFeedForwardNorm = c.PostNorms ? Norm("post_ffw_norm", l) : null,
            };
        }

        var finalNorm = c.FinalNorm ? Norm("output_norm", -1) : null;
        bool ownHead = !c.TiedEmbeddings && Has("output", -1);
        var output = ownHead
            ? new Linear(w.Matrix(Name("output", -1), c.VocabSize, e), c.HeadBias ? w.Vector(Name("output", -1, "bias"), c.VocabSize) : null)
            : new Linear(embedding, null);
        return new DecoderWeights
        {
            Embedding = embedding,
            PositionEmbedding = c.Positions == PositionKind.Learned ? w.Matrix(Name("position_embd", -1), c.ContextLength + c.PositionOffset, d) : null,
            EmbeddingNorm = c.EmbeddingNorm ? Norm("token_embd_norm", -1) : null,
            Layers = layers,
            FinalNorm = finalNorm,
            InputProjection = c.ProjectsEmbeddings ? Project("input_proj", -1, d, e, bias: false) : null,
            OutputProjection = c.ProjectsEmbeddings ? Project("output_proj", -1, e, d, bias: false) : null,
            Output = output,
            RopeFrequencyFactors = layout == TensorLayout.Gguf && c.Positions == PositionKind.Rope && source.Find("rope_freqs.weight") is not null
                ? w.Vector("rope_freqs.weight", c.ResolvedRotaryDim / 2)
                : LongRopeFactors("rope_factors_short.weight"),
            RopeLongFactors = LongRopeFactors("rope_factors_long.weight"),
        };
    }
}
