namespace SlmKit.Tokenizers;

/// <summary>Everything a loader works out about a vocabulary; the <see cref="Tokenizer"/> constructor takes it whole.</summary>
internal sealed class TokenizerDefinition
{
    public required TokenizerKind Kind { get; init; }

    public required string[] Pieces { get; init; }

    public float[]? Scores { get; init; }

    public required TokenAttributes[] Attributes { get; init; }

    /// <summary>"left right" → rank; null for score-ordered SentencePiece merges.</summary>
    public Dictionary<string, int>? MergeRanks { get; init; }

    public PreTokenizer? PreTokenizer { get; init; }

    /// <summary>Hugging Face normalizer; applied to text between added tokens.</summary>
    public Normalizer? Normalizer { get; init; }

    /// <summary>Tokens split out of the raw text (by length, longest first).</summary>
    public int[] RawSplitIds { get; init; } = [];

    /// <summary>Hugging Face added tokens with normalized=true: split out after normalization.</summary>
    public int[] NormalizedSplitIds { get; init; } = [];

    /// <summary>lstrip/rstrip remove Unicode whitespace (Hugging Face) rather than ASCII whitespace (llama.cpp).</summary>
    public bool UnicodeWhitespaceStrip { get; init; }

    /// <summary>SentencePiece dummy prefix: a space before text at the start or after a special token.</summary>
    public bool AddSpacePrefix { get; init; }

    /// <summary>Replace spaces with "▁" before the SentencePiece merges (GGUF "llama" vocabularies).</summary>
    public bool EscapeSpaces { get; init; }

    /// <summary>Pieces store spaces as "▁" (decode turns them back).</summary>
    public bool SpacesAreMetaspace { get; init; }

    public bool StripLeadingSpaceOnDecode { get; init; }

    /// <summary>The <c>tokenizer.ggml.pre</c> this vocabulary was read under, when it came from a GGUF file: written back unchanged.</summary>
    public string? GgufPreTokenizer { get; init; }

    /// <summary>A pre-tokenized word that is itself a vocabulary entry is taken whole (Llama 3).</summary>
    public bool IgnoreMerges { get; init; }

    public bool ByteFallback { get; init; }

    /// <summary>Unigram: the text splits on whitespace before each word gets its "▁" (T5's WhitespaceSplit + Metaspace).</summary>
    public bool UnigramSplitOnWhitespace { get; init; }

    /// <summary>Unigram: SentencePiece's compiled normalization rules, kept for writing the vocabulary to GGUF.</summary>
    public PrecompiledCharsMap? CharsMap { get; init; }

    public int? UnkId { get; init; }

    public int? BosId { get; init; }

    public int? EosId { get; init; }

    public int[] PrefixIds { get; init; } = [];

    public int[] SuffixIds { get; init; } = [];

    public IReadOnlyList<int> EndOfGenerationIds { get; init; } = [];

    public string? ChatTemplate { get; init; }

    /// <summary>Token texts that end generation in chat models (llama.cpp's list, by text).</summary>
    private static readonly HashSet<string> s_endOfGenerationTexts = new(StringComparer.Ordinal)
    {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>",
        "<|end_of_text|>", "<end_of_utterance>", "<｜end▁of▁sentence｜>", "</s>", "<|return|>", "<|call|>",
        "<|flush|>", "<|calls|>", "[EOT]", "[EOS]", "<eos>", "<turn|>", "<|tool_response>", "[e~[",
    };

    /// <summary>EOS plus every vocabulary entry whose text is a known end-of-turn marker.</summary>
    public static int[] FindEndOfGenerationIds(string[] pieces, int? eosId, params int?[] extra)
    {
        var ids = new SortedSet<int>();
        if (eosId is int eos)
            ids.Add(eos);
        foreach (int? id in extra)
        {
            if (id is int x && x >= 0 && x < pieces.Length)
                ids.Add(x);
        }
        for (int i = 0; i < pieces.Length; i++)
        {
            if (s_endOfGenerationTexts.Contains(pieces[i]))
                ids.Add(i);
        }
        return ids.ToArray();
    }

    public static bool IsEndOfTurnText(string piece) => s_endOfGenerationTexts.Contains(piece);
}
