using SlmKit.Kernels;
using SlmKit.Models;

namespace SlmKit.Training;

/// <summary>What a run trains: a runtime model family (for export) and the config of its choices and sizes.</summary>
/// <param name="Family">The family whose files the exports are: its GGUF architecture and Hugging Face model_type.</param>
/// <param name="Config">The choices and sizes, as the family's own file produces them.</param>
public sealed record TrainingArchitecture(ModelFamily Family, DecoderConfig Config);

/// <summary>Named Llama shapes to train from scratch.</summary>
public static class ModelPresets
{
    /// <summary>
    /// A Llama of the given sizes with every choice as <see cref="SlmKit.Models.Llama"/> reads it from a GGUF file: RMSNorm
    /// (ε 1e-5), rotary positions in adjacent pairs (GGUF's q/k row order), SwiGLU, no biases.
    /// </summary>
    public static DecoderConfig Llama(int vocabSize, int dim, int layers, int heads, int kvHeads, int ffn, bool tiedEmbeddings = true,
        int contextLength = 2048, float ropeTheta = 10000f) => new()
        {
            VocabSize = vocabSize,
            HiddenSize = dim,
            LayerCount = layers,
            HeadCount = heads,
            KvHeadCount = kvHeads,
            FeedForwardSize = ffn,
            ContextLength = contextLength,
            NormEpsilon = 1e-5f,
            RopeTheta = ropeTheta,
            RopeLayout = RopeLayout.Normal,
            TiedEmbeddings = tiedEmbeddings,
        };

    /// <summary>llama2.c's 15M "stories" model: dim 288, 6 layers, 6 heads, vocabulary 32000, SwiGLU width 768.</summary>
    public static DecoderConfig Stories15M { get; } = Llama(32000, 288, 6, 6, 6, 768);

    /// <summary>llama2.c's stories260K: dim 64, 5 layers, 8 heads sharing 4 key/value heads, vocabulary 512, SwiGLU width 172.</summary>
    public static DecoderConfig Stories260K { get; } = Llama(512, 64, 5, 8, 4, 172);
}
