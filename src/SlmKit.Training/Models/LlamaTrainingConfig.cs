namespace SlmKit.Training;

/// <summary>
/// The shape of a Llama-family model to train: the same hyper-parameters the runtime reads from GGUF metadata
/// (llama.embedding_length, block_count, attention.head_count, attention.head_count_kv, feed_forward_length,
/// rope.freq_base, attention.layer_norm_rms_epsilon).
/// </summary>
/// <param name="VocabSize">Tokens in the vocabulary.</param>
/// <param name="Dim">Width of the residual stream.</param>
/// <param name="LayerCount">Transformer blocks.</param>
/// <param name="HeadCount">Query heads.</param>
/// <param name="KvHeadCount">Key/value heads (grouped-query attention when fewer than <paramref name="HeadCount"/>).</param>
/// <param name="FfnDim">Hidden width of the SwiGLU feed-forward block.</param>
/// <param name="TiedEmbeddings">Whether the output projection reuses <c>token_embd.weight</c> (no <c>output.weight</c>).</param>
public sealed record LlamaTrainingConfig(int VocabSize, int Dim, int LayerCount, int HeadCount, int KvHeadCount, int FfnDim, bool TiedEmbeddings = true)
{
    /// <summary>RoPE base frequency θ.</summary>
    public double RopeTheta { get; init; } = 10000;

    /// <summary>RMSNorm epsilon.</summary>
    public double NormEpsilon { get; init; } = 1e-5;

    /// <summary>Values per attention head.</summary>
    public int HeadDim => Dim / HeadCount;

    /// <summary>llama2.c's 15M "stories" model: dim 288, 6 layers, 6 heads, vocabulary 32000, SwiGLU width 768.</summary>
    public static LlamaTrainingConfig Stories15M { get; } = new(32000, 288, 6, 6, 6, 768);

    /// <summary>Throws <see cref="SlmKitException"/> naming the first inconsistent field.</summary>
    public void Validate()
    {
        if (VocabSize <= 0 || Dim <= 0 || LayerCount <= 0 || HeadCount <= 0 || KvHeadCount <= 0 || FfnDim <= 0)
            throw new SlmKitException($"model sizes must be positive: {this}");
        if (Dim % HeadCount != 0)
            throw new SlmKitException($"dim {Dim} is not a multiple of the head count {HeadCount}");
        if (HeadDim % 2 != 0)
            throw new SlmKitException($"head size {HeadDim} must be even for rotary embedding");
        if (HeadCount % KvHeadCount != 0)
            throw new SlmKitException($"head count {HeadCount} is not a multiple of the key/value head count {KvHeadCount}");
        if (RopeTheta <= 0 || NormEpsilon <= 0)
            throw new SlmKitException($"rope theta {RopeTheta} and norm epsilon {NormEpsilon} must be positive");
    }
}
