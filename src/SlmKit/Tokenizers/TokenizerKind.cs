namespace SlmKit.Tokenizers;

/// <summary>The subword algorithms SlmKit implements.</summary>
public enum TokenizerKind
{
    /// <summary>
    /// SentencePiece-style BPE with byte fallback (Llama 2, TinyLlama, Phi-3, llama2.c): spaces become "▁"
    /// (or stay literal in llama2.c files), a dummy space is prefixed, unknown characters fall back to &lt;0xXX&gt; tokens.
    /// </summary>
    SentencePieceBpe,

    /// <summary>
    /// GPT-2-style byte-level BPE (GPT-2, SmolLM, Llama 3, Qwen2, Falcon, DeepSeek, StarCoder…): text is split by a
    /// pre-tokenizer regex, each UTF-8 byte is mapped to a printable character, then merges apply by rank.
    /// </summary>
    ByteLevelBpe,

    /// <summary>
    /// SentencePiece Unigram (T5, Flan-T5): the most probable segmentation under per-piece log probabilities, after
    /// SentencePiece's compiled normalization rules; spaces become "▁".
    /// </summary>
    Unigram,
}
