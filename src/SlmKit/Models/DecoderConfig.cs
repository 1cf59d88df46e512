using SlmKit.Kernels;

namespace SlmKit.Models;

/// <summary>Which normalisation a decoder uses; whether it has a weight and a bias is said separately.</summary>
public enum NormKind
{
    /// <summary>x / √(mean(x²) + ε) · w.</summary>
    RmsNorm,

    /// <summary>(x − mean) / √(var + ε) · w + b.</summary>
    LayerNorm,
}

/// <summary>How the attention and MLP branches join the residual stream.</summary>
public enum ResidualKind
{
    /// <summary>x += Attn(norm₁(x)); x += MLP(norm₂(x)) (Llama, GPT-2).</summary>
    Sequential,

    /// <summary>x += Attn(n) + MLP(n) with n = norm₁(x) (Phi-2, GPT-J, StableLM 2 12B).</summary>
    ParallelSharedNorm,

    /// <summary>x += Attn(norm₁(x)) + MLP(norm₂(x)) (GPT-NeoX, Pythia).</summary>
    ParallelTwoNorms,
}

/// <summary>Where a decoder gets its positional information.</summary>
public enum PositionKind
{
    /// <summary>Rotary embedding of (part of) each query and key head.</summary>
    Rope,

    /// <summary>A learned table added to the token embeddings (GPT-2, OPT with an offset).</summary>
    Learned,

    /// <summary>Linear biases on the attention scores (BLOOM).</summary>
    Alibi,

    /// <summary>
    /// fairseq's fixed sinusoids added to the token embeddings (XGLM): row p holds sin(p·ωᵢ) in its first half and
    /// cos(p·ωᵢ) in its second, ωᵢ = 10000^(−i/(d/2 − 1)), a zero last column for odd d; position t reads row t + PositionOffset.
    /// </summary>
    Sinusoidal,
}

/// <summary>How a fused query/key/value projection orders its output rows.</summary>
public enum QkvLayout
{
    /// <summary>All query heads, then all key heads, then all value heads (GGUF, Phi-3, GPT-2, Qwen 1).</summary>
    Concatenated,

    /// <summary>Head by head: q, k, v of head 0, then of head 1, … (GPT-NeoX and BLOOM checkpoints).</summary>
    PerHeadInterleaved,
}

/// <summary>
/// The choices that make a decoder-only transformer one family or another, plus its sizes. A family file
/// reads these from GGUF metadata or a Hugging Face config.json; <see cref="DecoderModel"/> runs any combination.
/// </summary>
public sealed record DecoderConfig
{
    public required int HiddenSize { get; init; }
    public required int LayerCount { get; init; }
    public required int HeadCount { get; init; }
    public required int KvHeadCount { get; init; }
    public required int FeedForwardSize { get; init; }
    public required int VocabSize { get; init; }

    /// <summary>Size of a head; 0 means HiddenSize / HeadCount.</summary>
    public int HeadDim { get; init; }
    public int ContextLength { get; init; } = 2048;

    // Normalisation.
    public NormKind Norm { get; init; } = NormKind.RmsNorm;
    public bool NormHasWeight { get; init; } = true;
    public bool NormHasBias { get; init; }
    public float NormEpsilon { get; init; } = 1e-5f;

    /// <summary>Gemma 2: RMSNorm after the attention and after the MLP, before each joins the residual.</summary>
    public bool PostNorms { get; init; }

    /// <summary>
    /// False for OLMo 2's reordered norms: the branches read the residual stream itself and only their outputs are
    /// normalised (<see cref="PostNorms"/>), x += norm(Attn(x)); x += norm(MLP(x)).
    /// </summary>
    public bool PreNorms { get; init; } = true;

    /// <summary>BLOOM: LayerNorm on the token embeddings.</summary>
    public bool EmbeddingNorm { get; init; }

    /// <summary>
    /// Post-norm blocks (OPT-350m): each branch joins the residual first and the block's norm is applied to the sum,
    /// x = norm₁(x + Attn(x)); x = norm₂(x + MLP(x)). Needs <see cref="ResidualKind.Sequential"/>.
    /// </summary>
    public bool PostLayerNorm { get; init; }

    /// <summary>False when the stack has no final norm before the head (OPT-350m and other post-norm OPTs).</summary>
    public bool FinalNorm { get; init; } = true;

    public ResidualKind Residual { get; init; } = ResidualKind.Sequential;

    /// <summary>MiniCPM: each branch is multiplied by this before it joins the residual.</summary>
    public float ResidualScale { get; init; } = 1f;

    // Attention.
    public bool QkvBias { get; init; }
    public bool AttentionOutputBias { get; init; }

    /// <summary>OpenELM: RMSNorm (or StableLM: LayerNorm) of every query and key head before the rotation.</summary>
    public bool QkNorm { get; init; }

    /// <summary>OLMo 2: the q and k norms span the whole projection (all heads, one weight per row) instead of each head.</summary>
    public bool QkNormAcrossHeads { get; init; }

    /// <summary>Multiplies q·k; null means 1/√HeadDim.</summary>
    public float? AttentionScale { get; init; }
    public float AttentionSoftCap { get; init; }

    /// <summary>OLMo: q, k and v are clamped to [−ClipQkv, ClipQkv] when positive.</summary>
    public float ClipQkv { get; init; }

    /// <summary>Keys a sliding-window layer sees (the query's own position included); 0 for none.</summary>
    public int SlidingWindow { get; init; }

    /// <summary>Which layers use <see cref="SlidingWindow"/>; null means all of them when it is set.</summary>
    public bool[]? SlidingLayers { get; init; }

    // Positions.
    public PositionKind Positions { get; init; } = PositionKind.Rope;

    /// <summary>Rows of the learned or sinusoidal position table skipped at position 0 (OPT, XGLM: 2).</summary>
    public int PositionOffset { get; init; }
    public float RopeTheta { get; init; } = 10000f;

    /// <summary>Layers that skip the rotation (SmolLM 3's NoPE layers); null: every layer rotates.</summary>
    public bool[]? NoRopeLayers { get; init; }

    /// <summary>
    /// When positive, the sliding-window layers rotate with this base and no <see cref="RopeScaling"/> (Gemma 3's
    /// rope_local_base_freq); 0: every layer rotates alike.
    /// </summary>
    public float SlidingRopeTheta { get; init; }

    /// <summary>Dimensions of each head that are rotated; 0 means all of them.</summary>
    public int RotaryDim { get; init; }
    public RopeLayout RopeLayout { get; init; } = RopeLayout.NeoX;
    public RopeScaling? RopeScaling { get; init; }

    // MLP.
    /// <summary>True for gate·act(…)⊙up MLPs (SwiGLU, GeGLU); false for down(act(up(x))).</summary>
    public bool GatedFeedForward { get; init; } = true;
    public ActivationKind Activation { get; init; } = ActivationKind.Silu;
    public bool FeedForwardBias { get; init; }

    // Embeddings and head.
    public bool TiedEmbeddings { get; init; }

    /// <summary>
    /// Width of the token embeddings and of the head's input; 0 means HiddenSize. When it differs (OPT-350m's
    /// word_embed_proj_dim), a bias-free input projection maps each embedding up to HiddenSize before positions are
    /// added, and a bias-free output projection maps the final hidden state down to it before the head.
    /// </summary>
    public int EmbeddingSize { get; init; }

    /// <summary>Token embeddings are multiplied by this (Gemma: √hidden, MiniCPM: scale_emb).</summary>
    public float EmbeddingScale { get; init; } = 1f;

    /// <summary>Logits are multiplied by this (MiniCPM: dim_model_base / hidden).</summary>
    public float LogitScale { get; init; } = 1f;
    public float FinalLogitSoftCap { get; init; }
    public bool HeadBias { get; init; }

    /// <summary>OpenELM: per-layer numbers of heads, KV heads and MLP widths (null: the same in every layer).</summary>
    public int[]? LayerHeadCounts { get; init; }
    public int[]? LayerKvHeadCounts { get; init; }
    public int[]? LayerFeedForwardSizes { get; init; }

    public int ResolvedEmbeddingSize => EmbeddingSize > 0 ? EmbeddingSize : HiddenSize;
    public bool ProjectsEmbeddings => ResolvedEmbeddingSize != HiddenSize;
    public int ResolvedHeadDim => HeadDim > 0 ? HeadDim : HiddenSize / HeadCount;
    public int ResolvedRotaryDim => RotaryDim > 0 ? RotaryDim : ResolvedHeadDim;
    public float ResolvedAttentionScale => AttentionScale ?? 1f / MathF.Sqrt(ResolvedHeadDim);

    public int HeadsOf(int layer) => LayerHeadCounts?[layer] ?? HeadCount;
    public int KvHeadsOf(int layer) => LayerKvHeadCounts?[layer] ?? KvHeadCount;
    public int FeedForwardOf(int layer) => LayerFeedForwardSizes?[layer] ?? FeedForwardSize;
    public int WindowOf(int layer) => SlidingWindow > 0 && (SlidingLayers is null || SlidingLayers[layer]) ? SlidingWindow : 0;

    /// <summary>Throws a <see cref="ModelFileException"/> naming the first impossible number.</summary>
    public void Validate(string source)
    {
        void Require(bool ok, string what)
        {
            if (!ok)
                throw new ModelFileException(source, what);
        }

        Require(HiddenSize > 0, $"hidden size must be positive (got {HiddenSize})");
        Require(LayerCount > 0, $"layer count must be positive (got {LayerCount})");
        Require(HeadCount > 0, $"head count must be positive (got {HeadCount})");
        Require(HeadDim > 0 || HiddenSize % HeadCount == 0, $"hidden size {HiddenSize} is not a multiple of the head count {HeadCount}");
        Require(VocabSize > 0, $"vocabulary size must be positive (got {VocabSize})");
        Require(ContextLength > 0, $"context length must be positive (got {ContextLength})");
        Require(ResolvedHeadDim > 0, $"head size must be positive (got {ResolvedHeadDim})");
        Require(EmbeddingSize >= 0, $"embedding size must not be negative (got {EmbeddingSize})");
        Require(!PostLayerNorm || (Residual == ResidualKind.Sequential && !PostNorms), "post-norm blocks need a sequential residual and no extra post-branch norms");
        Require(PreNorms || (PostNorms && Residual == ResidualKind.Sequential && !PostLayerNorm), "blocks without pre-norms need post-branch norms and a sequential residual");
        Require(PositionOffset >= 0, $"position offset must not be negative (got {PositionOffset})");
        if (Positions == PositionKind.Sinusoidal)
            Require(HiddenSize >= 4, $"sinusoidal positions need a hidden size of at least 4 (got {HiddenSize})");
        if (Positions == PositionKind.Rope)
            Require(ResolvedRotaryDim % 2 == 0 && ResolvedRotaryDim <= ResolvedHeadDim, $"rotary dimension {ResolvedRotaryDim} must be even and within the head size {ResolvedHeadDim}");
        foreach (var (name, values) in new[] { ("head counts", LayerHeadCounts), ("KV head counts", LayerKvHeadCounts), ("feed-forward sizes", LayerFeedForwardSizes) })
            Require(values is null || values.Length == LayerCount, $"per-layer {name} list has {values?.Length} entries for {LayerCount} layers");
        Require(SlidingLayers is null || SlidingLayers.Length == LayerCount, "sliding-window layer list does not match the layer count");
        Require(NoRopeLayers is null || NoRopeLayers.Length == LayerCount, "no-rope layer list does not match the layer count");
        for (int l = 0; l < LayerCount; l++)
        {
            Require(HeadsOf(l) > 0 && KvHeadsOf(l) > 0 && HeadsOf(l) % KvHeadsOf(l) == 0, $"layer {l}: KV head count {KvHeadsOf(l)} must divide the head count {HeadsOf(l)}");
            Require(FeedForwardOf(l) > 0, $"layer {l}: feed-forward size must be positive (got {FeedForwardOf(l)})");
        }
    }

    /// <summary>The number of parameters a checkpoint with this config holds (tied heads counted once).</summary>
    public long ParameterCount()
    {
        long d = HiddenSize, headDim = ResolvedHeadDim;
        long normSize = d * ((NormHasWeight ? 1 : 0) + (NormHasBias ? 1 : 0));
        long e = ResolvedEmbeddingSize;
        long total = (long)VocabSize * e;
        if (!TiedEmbeddings)
            total += (long)VocabSize * e + (HeadBias ? VocabSize : 0);
        if (ProjectsEmbeddings)
            total += 2 * e * d; // input and output projections, no biases
        if (Positions == PositionKind.Learned)
            total += (long)(ContextLength + PositionOffset) * d;
        if (EmbeddingNorm)
            total += normSize;
        if (FinalNorm)
            total += normSize;
        for (int l = 0; l < LayerCount; l++)
        {
            long q = HeadsOf(l) * headDim, kv = KvHeadsOf(l) * headDim, f = FeedForwardOf(l);
            total += (PreNorms ? normSize * (Residual == ResidualKind.ParallelSharedNorm ? 1 : 2) : 0) + (PostNorms ? 2 * normSize : 0);
            total += d * (q + 2 * kv) + (QkvBias ? q + 2 * kv : 0);
            total += q * d + (AttentionOutputBias ? d : 0);
            if (QkNorm)
                total += (QkNormAcrossHeads ? q + kv : 2 * headDim) * ((NormHasWeight ? 1 : 0) + (NormHasBias && Norm == NormKind.LayerNorm ? 1 : 0));
            total += (GatedFeedForward ? 3 : 2) * d * f + (FeedForwardBias ? f + d : 0);
        }
        return total;
    }
}
