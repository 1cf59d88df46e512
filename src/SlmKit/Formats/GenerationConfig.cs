using System.Text.Json;

namespace SlmKit.Formats;

/// <summary>
/// A Hugging Face <c>generation_config.json</c>: the sampling defaults and special token ids a model ships with.
/// Absent keys and JSON nulls are null; a key of the wrong JSON type is a <see cref="ModelFileException"/>.
/// </summary>
public sealed class GenerationConfig
{
    /// <summary>The file name Hugging Face uses.</summary>
    public const string FileName = "generation_config.json";

    private GenerationConfig(string path, JsonElement root)
    {
        SourcePath = path;
        Root = root;
        BosTokenId = JsonFiles.GetInt(path, root, "bos_token_id");
        PadTokenId = JsonFiles.GetInt(path, root, "pad_token_id");
        if (JsonFiles.TryGet(root, "eos_token_id", out JsonElement eos))
        {
            // Newer models list several end tokens (e.g. Llama 3: <|end_of_text|>, <|eot_id|>).
            EosTokenIds = eos.ValueKind == JsonValueKind.Array
                ? JsonFiles.GetIntArray(path, root, "eos_token_id")
                : [JsonFiles.AsInt(path, "eos_token_id", eos)];
        }
        Temperature = JsonFiles.GetDouble(path, root, "temperature");
        TopP = JsonFiles.GetDouble(path, root, "top_p");
        TopK = JsonFiles.GetInt(path, root, "top_k");
        DoSample = JsonFiles.GetBool(path, root, "do_sample");
        RepetitionPenalty = JsonFiles.GetDouble(path, root, "repetition_penalty");
        MaxNewTokens = JsonFiles.GetInt(path, root, "max_new_tokens");
    }

    /// <summary>The file this was read from.</summary>
    public string SourcePath { get; }

    /// <summary>The whole document.</summary>
    public JsonElement Root { get; }

    /// <summary><c>bos_token_id</c>.</summary>
    public int? BosTokenId { get; }

    /// <summary><c>eos_token_id</c>, which may be one id or a list; always an array here.</summary>
    public int[]? EosTokenIds { get; }

    /// <summary><c>pad_token_id</c>.</summary>
    public int? PadTokenId { get; }

    /// <summary><c>temperature</c>.</summary>
    public double? Temperature { get; }

    /// <summary><c>top_p</c>.</summary>
    public double? TopP { get; }

    /// <summary><c>top_k</c>.</summary>
    public int? TopK { get; }

    /// <summary><c>do_sample</c>: false means greedy decoding.</summary>
    public bool? DoSample { get; }

    /// <summary><c>repetition_penalty</c>.</summary>
    public double? RepetitionPenalty { get; }

    /// <summary><c>max_new_tokens</c>.</summary>
    public int? MaxNewTokens { get; }

    /// <summary>Reads and parses <paramref name="path"/>.</summary>
    /// <exception cref="ModelFileException">Missing, malformed, or a key of the wrong type.</exception>
    public static GenerationConfig Load(string path)
    {
        JsonElement root = JsonFiles.Load(path);
        if (root.ValueKind != JsonValueKind.Object)
            throw new ModelFileException(path, $"the document is a JSON {JsonFiles.Kind(root)}, expected an object");
        return new GenerationConfig(path, root);
    }

    /// <summary>Loads <c>generation_config.json</c> from <paramref name="folder"/>, or returns null when there is none.</summary>
    public static GenerationConfig? TryLoadFromFolder(string folder)
    {
        string path = Path.Combine(folder, FileName);
        return File.Exists(path) ? Load(path) : null;
    }
}
