namespace SlmKit.Tokenizers;

/// <summary>What a vocabulary entry is; mirrors llama.cpp's token attributes so GGUF files behave as they do there.</summary>
[Flags]
internal enum TokenAttributes
{
    None = 0,
    Normal = 1 << 0,
    Unknown = 1 << 1,
    Control = 1 << 2,
    UserDefined = 1 << 3,
    Unused = 1 << 4,
    Byte = 1 << 5,

    // Matching flags of added/special tokens (tokenizer.json added_tokens, llama.cpp per-model overrides).
    LStrip = 1 << 8,
    RStrip = 1 << 9,
    SingleWord = 1 << 10,
}
