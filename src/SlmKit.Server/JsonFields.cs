using System.Text.Json;

namespace SlmKit.Server;

/// <summary>
/// Typed access to the fields of one JSON object in a request; every problem becomes a 400 that names the field by
/// its path (e.g. <c>messages[2].content</c>). A null value counts as absent, as OpenAI's API treats it.
/// </summary>
internal readonly struct JsonFields
{
    private readonly JsonElement _object;
    private readonly string _path;

    public JsonFields(JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw ApiException.BadField(path.Length == 0 ? "body" : path, $"expected an object, got {Describe(value)}");
        _object = value;
        _path = path;
    }

    public string PathOf(string name) => _path.Length == 0 ? name : $"{_path}.{name}";

    public JsonElement? Get(string name) =>
        _object.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public string? String(string name, bool required = false)
    {
        if (Get(name) is not { } value)
            return required ? throw ApiException.BadField(PathOf(name), "is required") : null;
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw ApiException.BadField(PathOf(name), $"expected a string, got {Describe(value)}");
    }

    public bool? Bool(string name)
    {
        if (Get(name) is not { } value)
            return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiException.BadField(PathOf(name), $"expected true or false, got {Describe(value)}"),
        };
    }

    public double? Number(string name, double min, double max)
    {
        if (Get(name) is not { } value)
            return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double number) || !double.IsFinite(number))
            throw ApiException.BadField(PathOf(name), $"expected a number, got {Describe(value)}");
        if (number < min || number > max)
            throw ApiException.BadField(PathOf(name), $"must be between {min} and {max} (got {number})");
        return number;
    }

    public long? Integer(string name, long min, long max)
    {
        if (Get(name) is not { } value)
            return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long number))
            throw ApiException.BadField(PathOf(name), $"expected an integer, got {Describe(value)}");
        if (number < min || number > max)
            throw ApiException.BadField(PathOf(name), $"must be between {min} and {max} (got {number})");
        return number;
    }

    public JsonElement? Array(string name, bool required = false)
    {
        if (Get(name) is not { } value)
            return required ? throw ApiException.BadField(PathOf(name), "is required") : null;
        return value.ValueKind == JsonValueKind.Array ? value : throw ApiException.BadField(PathOf(name), $"expected an array, got {Describe(value)}");
    }

    public JsonFields? Object(string name)
    {
        if (Get(name) is not { } value)
            return null;
        return new JsonFields(value, PathOf(name));
    }

    /// <summary>A string or an array of strings (OpenAI's <c>stop</c>).</summary>
    public IReadOnlyList<string> StringOrStrings(string name, int maxCount)
    {
        if (Get(name) is not { } value)
            return [];
        if (value.ValueKind == JsonValueKind.String)
            return [value.GetString()!];
        if (value.ValueKind != JsonValueKind.Array)
            throw ApiException.BadField(PathOf(name), $"expected a string or an array of strings, got {Describe(value)}");
        if (value.GetArrayLength() > maxCount)
            throw ApiException.BadField(PathOf(name), $"at most {maxCount} entries are allowed");
        var list = new List<string>();
        int i = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                throw ApiException.BadField($"{PathOf(name)}[{i}]", $"expected a string, got {Describe(item)}");
            list.Add(item.GetString()!);
            i++;
        }
        return list;
    }

    public static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}
