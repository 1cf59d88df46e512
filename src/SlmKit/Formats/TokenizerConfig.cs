using System.Text.Json;

namespace SlmKit.Formats;

/// <summary>
/// A Hugging Face <c>tokenizer_config.json</c>: special tokens, whether BOS/EOS are added, and the chat template.
/// Special tokens may be written as a string or as an AddedToken object with a "content"; both read as the string.
/// </summary>
public sealed class TokenizerConfig
{
    /// <summary>The file name Hugging Face uses.</summary>
    public const string FileName = "tokenizer_config.json";

    /// <summary>Above this, <c>model_max_length</c> is transformers' "no limit" sentinel (int(1e30)).</summary>
    private const double NoLimitThreshold = 1e18;

    private TokenizerConfig(string path, JsonElement root, string? fallbackTemplate)
    {
        SourcePath = path;
        Root = root;
        AddBosToken = JsonFiles.GetBool(path, root, "add_bos_token");
        AddEosToken = JsonFiles.GetBool(path, root, "add_eos_token");
        BosToken = Token(path, root, "bos_token");
        EosToken = Token(path, root, "eos_token");
        UnkToken = Token(path, root, "unk_token");
        PadToken = Token(path, root, "pad_token");
        ChatTemplates = Templates(path, root);
        if (ChatTemplates.Count == 0 && fallbackTemplate is not null)
            ChatTemplates = new Dictionary<string, string> { ["default"] = fallbackTemplate };
        ChatTemplate = ChatTemplates.TryGetValue("default", out string? t) ? t : null;
        if (JsonFiles.TryGet(root, "model_max_length", out JsonElement max))
        {
            if (max.ValueKind != JsonValueKind.Number)
                throw JsonFiles.WrongType(path, "model_max_length", "a number", max);
            double d = max.GetDouble();
            ModelMaxLength = d >= NoLimitThreshold ? null : JsonFiles.GetLong(path, root, "model_max_length");
        }
    }

    /// <summary>The file this was read from.</summary>
    public string SourcePath { get; }

    /// <summary>The whole document (added_tokens_decoder and the rest).</summary>
    public JsonElement Root { get; }

    /// <summary><c>add_bos_token</c>, or null when the file does not say.</summary>
    public bool? AddBosToken { get; }

    /// <summary><c>add_eos_token</c>, or null when the file does not say.</summary>
    public bool? AddEosToken { get; }

    /// <summary>The BOS token's text.</summary>
    public string? BosToken { get; }

    /// <summary>The EOS token's text.</summary>
    public string? EosToken { get; }

    /// <summary>The unknown token's text.</summary>
    public string? UnkToken { get; }

    /// <summary>The padding token's text.</summary>
    public string? PadToken { get; }

    /// <summary>
    /// The chat template: the string, or the entry named "default" when the file lists named templates. When the
    /// config has none, <see cref="TryLoadFromFolder"/> takes it from <c>chat_template.jinja</c> or <c>chat_template.json</c>.
    /// </summary>
    public string? ChatTemplate { get; }

    /// <summary>Every named template ("default", "tool_use", "rag" …); a plain string template is named "default".</summary>
    public IReadOnlyDictionary<string, string> ChatTemplates { get; }

    /// <summary><c>model_max_length</c>; null when absent or when it is transformers' "no limit" sentinel (1e30).</summary>
    public long? ModelMaxLength { get; }

    /// <summary>Reads and parses <paramref name="path"/>.</summary>
    /// <exception cref="ModelFileException">Missing, malformed, or a key of the wrong type.</exception>
    public static TokenizerConfig Load(string path) => Load(path, null);

    /// <summary>
    /// Loads <c>tokenizer_config.json</c> from <paramref name="folder"/>, or returns null when there is none. Newer
    /// repositories keep the chat template beside it in <c>chat_template.jinja</c> or <c>chat_template.json</c>;
    /// those are used when the config itself has no template.
    /// </summary>
    public static TokenizerConfig? TryLoadFromFolder(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
            return null;
        string? fallback = null;
        string jinja = Path.Combine(folder, "chat_template.jinja");
        string json = Path.Combine(folder, "chat_template.json");
        try
        {
            if (File.Exists(jinja))
                fallback = File.ReadAllText(jinja);
        }
        catch (IOException e)
        {
            throw new ModelFileException(jinja, e.Message, e);
        }
        if (fallback is null && File.Exists(json))
            fallback = JsonFiles.GetString(json, JsonFiles.Load(json), "chat_template");
        return Load(path, fallback);
    }

    private static TokenizerConfig Load(string path, string? fallbackTemplate)
    {
        JsonElement root = JsonFiles.Load(path);
        if (root.ValueKind != JsonValueKind.Object)
            throw new ModelFileException(path, $"the document is a JSON {JsonFiles.Kind(root)}, expected an object");
        return new TokenizerConfig(path, root, fallbackTemplate);
    }

    private static string? Token(string path, JsonElement root, string key)
    {
        if (!JsonFiles.TryGet(root, key, out JsonElement v))
            return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => JsonFiles.Text(path, key, v),
            JsonValueKind.Object => JsonFiles.GetString(path, v, "content") is { } s ? s
                : throw new ModelFileException(path, $"'{key}' is an object without a string 'content'"),
            _ => throw JsonFiles.WrongType(path, key, "a string or an object with \"content\"", v),
        };
    }

    private static Dictionary<string, string> Templates(string path, JsonElement root)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!JsonFiles.TryGet(root, "chat_template", out JsonElement v))
            return result;
        if (v.ValueKind == JsonValueKind.String)
        {
            result["default"] = JsonFiles.Text(path, "chat_template", v);
            return result;
        }
        if (v.ValueKind != JsonValueKind.Array)
            throw JsonFiles.WrongType(path, "chat_template", "a string or a list of {name, template}", v);
        int i = 0;
        foreach (JsonElement item in v.EnumerateArray())
        {
            string? name = JsonFiles.GetString(path, item, "name");
            string? template = JsonFiles.GetString(path, item, "template");
            if (item.ValueKind != JsonValueKind.Object || name is null || template is null)
                throw new ModelFileException(path, $"'chat_template'[{i}] is not an object with string 'name' and 'template'");
            result[name] = template;
            i++;
        }
        return result;
    }
}
