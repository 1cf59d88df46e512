namespace SlmKit.Models;

/// <summary>Facts about a loaded model, for <c>slm info</c> and for callers.</summary>
public sealed record ModelInfo(
    string Architecture,
    string Family,
    long ParameterCount,
    IReadOnlyDictionary<string, long> ParametersByType,
    int ContextLength,
    int VocabSize,
    int LayerCount,
    int HiddenSize,
    int HeadCount,
    int KvHeadCount,
    int HeadDim,
    int FeedForwardSize,
    bool TiedEmbeddings,
    string SourceFormat);

/// <summary>
/// A decoder-only language model: tokens in, next-token logits out. Each family (Llama, Qwen2, …) derives from
/// this and builds its forward pass from shared building blocks.
/// </summary>
public abstract class LanguageModel : IDisposable
{
    public abstract ModelInfo Info { get; }

    public int VocabSize => Info.VocabSize;

    /// <summary>A fresh, empty cache for one sequence of up to <paramref name="contextSize"/> positions.</summary>
    public abstract KvCache CreateCache(int contextSize);

    /// <summary>
    /// Feeds <paramref name="tokens"/> at positions cache.Length… and advances the cache. Writes the logits of the
    /// last token (<paramref name="allPositions"/> false: VocabSize floats) or of every token
    /// (tokens.Length × VocabSize floats) into <paramref name="logits"/>.
    /// </summary>
    public abstract void Forward(KvCache cache, ReadOnlySpan<int> tokens, Span<float> logits, bool allPositions);

    public virtual void Dispose()
    {
        GC.SuppressFinalize(this);
    }
}
