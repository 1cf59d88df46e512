using System.Text.Json;

namespace SlmKit.Formats;

/// <summary>
/// A Hugging Face <c>config.json</c>: the model's hyperparameters. Getters return null for an absent key or a JSON
/// null, and throw a <see cref="ModelFileException"/> naming the key when it holds the wrong JSON type.
/// </summary>
public sealed class HuggingFaceConfig
{
    /// <summary>The file name Hugging Face uses.</summary>
    public const string FileName = "config.json";

    private HuggingFaceConfig(string path, JsonElement root)
    {
        SourcePath = path;
        Root = root;
    }

    /// <summary>The file this was read from.</summary>
    public string SourcePath { get; }

    /// <summary>The whole document, for keys without a getter (nested configs, rope_scaling …).</summary>
    public JsonElement Root { get; }

    /// <summary>The <c>model_type</c> (e.g. "llama", "qwen2"), or null.</summary>
    public string? ModelType => GetString("model_type");

    /// <summary>Reads and parses <paramref name="path"/>.</summary>
    /// <exception cref="ModelFileException">Missing, unreadable, malformed (with line and position), or not a JSON object.</exception>
    public static HuggingFaceConfig Load(string path)
    {
        JsonElement root = JsonFiles.Load(path);
        if (root.ValueKind != JsonValueKind.Object)
            throw new ModelFileException(path, $"the document is a JSON {JsonFiles.Kind(root)}, expected an object");
        return new HuggingFaceConfig(path, root);
    }

    /// <summary>Loads <c>config.json</c> from <paramref name="folder"/>, or returns null when there is none.</summary>
    public static HuggingFaceConfig? TryLoadFromFolder(string folder)
    {
        string path = Path.Combine(folder, FileName);
        return File.Exists(path) ? Load(path) : null;
    }

    /// <summary>An integer (a whole float such as 32000.0 is accepted).</summary>
    public int? GetInt(string key) => JsonFiles.GetInt(SourcePath, Root, key);

    /// <summary>Any JSON number.</summary>
    public double? GetDouble(string key) => JsonFiles.GetDouble(SourcePath, Root, key);

    /// <summary>A JSON string.</summary>
    public string? GetString(string key) => JsonFiles.GetString(SourcePath, Root, key);

    /// <summary>A JSON true or false.</summary>
    public bool? GetBool(string key) => JsonFiles.GetBool(SourcePath, Root, key);

    /// <summary>An array of integers.</summary>
    public int[]? GetIntArray(string key) => JsonFiles.GetIntArray(SourcePath, Root, key);

    /// <summary>An array of numbers; a single number reads as a one-entry array.</summary>
    public double[]? GetDoubleArray(string key) => JsonFiles.GetDoubleArray(SourcePath, Root, key);

    /// <summary>True with the object at <paramref name="key"/>; false when absent or null; throws for another type.</summary>
    public bool TryGetObject(string key, out JsonElement value) => JsonFiles.TryGetObject(SourcePath, Root, key, out value);
}
