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
/// A language model as generation sees it: tokens in, next-token logits out. The decoder-only transformer families
/// share <see cref="DecoderModel"/>; <see cref="MambaModel"/> carries a recurrent state instead of a key/value cache;
/// <see cref="T5Model"/> encodes a sequence's first feed and decodes after it.
/// </summary>
public abstract class LanguageModel : IDisposable
{
    public abstract ModelInfo Info { get; }

    public int VocabSize => Info.VocabSize;

    /// <summary>A fresh, empty state (cache) for one sequence of up to <paramref name="contextSize"/> positions.</summary>
    public abstract SequenceState CreateCache(int contextSize);

    /// <summary>
    /// Feeds <paramref name="tokens"/> at positions cache.Length… and advances the cache. Writes the logits of the
    /// last token (<paramref name="allPositions"/> false: VocabSize floats) or of every token
    /// (tokens.Length × VocabSize floats) into <paramref name="logits"/>.
    /// </summary>
    public abstract void Forward(SequenceState cache, ReadOnlySpan<int> tokens, Span<float> logits, bool allPositions);

    /// <summary>
    /// One decoding step for several independent sequences: feeds <paramref name="tokens"/>[i] to
    /// <paramref name="caches"/>[i] (each at its own position) and writes that sequence's next-token logits to row i
    /// of <paramref name="logits"/> ([caches.Count, VocabSize] row-major). The result for each sequence is the same
    /// as a <see cref="Forward"/> of that one token. This default runs the sequences one after another; families
    /// override it to share each weight read across the batch.
    /// </summary>
    public virtual void ForwardBatch(IReadOnlyList<SequenceState> caches, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(caches);
        int vocab = VocabSize;
        if (tokens.Length != caches.Count)
            throw new ArgumentException($"{caches.Count} caches but {tokens.Length} tokens", nameof(tokens));
        if (logits.Length < caches.Count * vocab)
            throw new ArgumentException("logits buffer too small", nameof(logits));
        for (int i = 0; i < caches.Count; i++)
            Forward(caches[i], tokens.Slice(i, 1), logits.Slice(i * vocab, vocab), allPositions: false);
    }

    /// <summary>Whether <see cref="ForwardHidden"/> is implemented for this family.</summary>
    public virtual bool SupportsHiddenStates => false;

    /// <summary>
    /// Feeds <paramref name="tokens"/> like <see cref="Forward"/> but writes the final hidden state of every token (after
    /// the last normalization, before the output head) into <paramref name="hidden"/>: tokens.Length × HiddenSize floats.
    /// Used for embeddings.
    /// </summary>
    public virtual void ForwardHidden(SequenceState cache, ReadOnlySpan<int> tokens, Span<float> hidden) =>
        throw new NotSupportedException($"{Info.Architecture} models do not expose hidden states yet");

    /// <summary>Refuses an empty feed, one that overflows <paramref name="state"/>, or a token outside the vocabulary.</summary>
    protected void CheckFeed(SequenceState state, ReadOnlySpan<int> tokens)
    {
        int vocab = VocabSize;
        if (tokens.IsEmpty)
            throw new ArgumentException("at least one token is needed", nameof(tokens));
        if (state.Length + tokens.Length > state.Capacity)
            throw new SlmKitException($"the context is full: {state.Length} + {tokens.Length} tokens exceed the context size {state.Capacity}");
        foreach (int token in tokens)
        {
            if ((uint)token >= (uint)vocab)
                throw new SlmKitException($"token id {token} is outside the vocabulary (0..{vocab - 1})");
        }
    }

    public virtual void Dispose()
    {
        GC.SuppressFinalize(this);
    }
}
