namespace SlmKit.Tokenizers;

/// <summary>
/// The few GGUF metadata getters the tokenizer needs. It keeps this room independent of the GGUF reader's
/// concrete type: <c>SlmKit.Formats.GgufFile</c> satisfies it with the getters of the same names.
/// </summary>
internal interface ITokenizerMetadata
{
    string? GetString(string key);

    long? GetInteger(string key);

    bool? GetBool(string key);

    string[]? GetStringArray(string key);

    float[]? GetFloatArray(string key);

    int[]? GetInt32Array(string key);
}
