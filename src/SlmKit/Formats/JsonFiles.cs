using System.Text.Json;

namespace SlmKit.Formats;

/// <summary>
/// Loading and typed reading of JSON files with <see cref="JsonDocument"/> only (no reflection, so trim- and
/// AOT-safe). Every failure becomes a <see cref="ModelFileException"/> naming the file and the key.
/// </summary>
internal static class JsonFiles
{
    /// <summary>Configuration files are small; a larger one is refused before it is read into memory.</summary>
    private const long MaxFileBytes = 256L << 20;

    private static readonly JsonDocumentOptions s_options = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        MaxDepth = 256,
    };

    /// <summary>Reads and parses <paramref name="path"/>; the root is a standalone clone (no document to dispose).</summary>
    public static JsonElement Load(string path)
    {
        using JsonDocument document = LoadDocument(path);
        return document.RootElement.Clone();
    }

    /// <summary>Reads and parses <paramref name="path"/> into a document the caller disposes (no copy of a large file's tree).</summary>
    public static JsonDocument LoadDocument(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
                throw new ModelFileException(path, "file not found");
            if (info.Length > MaxFileBytes)
                throw new ModelFileException(path, $"file is {info.Length} bytes; JSON files over {MaxFileBytes} bytes are refused");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new ModelFileException(path, e.Message, e);
        }
        return Parse(path, bytes, "file");
    }

    /// <summary>Parses <paramref name="utf8"/>; malformed JSON becomes a one-line error with its line and position.</summary>
    public static JsonDocument Parse(string path, ReadOnlyMemory<byte> utf8, string what)
    {
        // JsonDocument validates UTF-8 inside strings only when they are read, which would surface later as an
        // InvalidOperationException from a getter; checking the whole text once keeps every failure here.
        if (!System.Text.Unicode.Utf8.IsValid(utf8.Span))
            throw new ModelFileException(path, $"{what} is not valid UTF-8");
        try
        {
            return JsonDocument.Parse(utf8, s_options);
        }
        catch (JsonException e)
        {
            // JsonException counts lines and bytes from zero; people count from one.
            string where = e.LineNumber is long line ? $" at line {line + 1}, position {(e.BytePositionInLine ?? 0) + 1}" : "";
            string reason = e.Message;
            int cut = reason.IndexOf(" LineNumber:", StringComparison.Ordinal);
            if (cut > 0)
                reason = reason[..cut];
            throw new ModelFileException(path, $"{what} is not valid JSON{where}: {reason.ReplaceLineEndings(" ").TrimEnd(' ', '.')}", e);
        }
        catch (ArgumentException e)
        {
            throw new ModelFileException(path, $"{what} is not valid JSON: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }

    /// <summary>"object", "array", "string", "number", "true/false" or "null", for messages.</summary>
    public static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    /// <summary>The property <paramref name="key"/> of <paramref name="obj"/>; false when absent or JSON null.</summary>
    public static bool TryGet(JsonElement obj, string key, out JsonElement value)
    {
        if (obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null)
            return true;
        value = default;
        return false;
    }

    public static ModelFileException WrongType(string path, string key, string expected, JsonElement actual) =>
        new(path, $"'{key}' is a JSON {Kind(actual)}, expected {expected}");

    public static int? GetInt(string path, JsonElement obj, string key) =>
        TryGet(obj, key, out JsonElement v) ? AsInt(path, key, v) : null;

    public static long? GetLong(string path, JsonElement obj, string key)
    {
        if (!TryGet(obj, key, out JsonElement v))
            return null;
        if (v.ValueKind != JsonValueKind.Number)
            throw WrongType(path, key, "an integer", v);
        if (v.TryGetInt64(out long l))
            return l;
        double d = v.GetDouble();
        return Math.Floor(d) == d && d >= long.MinValue && d < long.MaxValue
            ? (long)d
            : throw new ModelFileException(path, $"'{key}' = {v.GetRawText()} is not a 64-bit integer");
    }

    public static int AsInt(string path, string key, JsonElement v)
    {
        if (v.ValueKind != JsonValueKind.Number)
            throw WrongType(path, key, "an integer", v);
        if (v.TryGetInt32(out int i))
            return i;
        // Python writes some integers as floats (e.g. 32000.0); accept those that are whole and in range.
        double d = v.GetDouble();
        if (Math.Floor(d) == d && d >= int.MinValue && d <= int.MaxValue)
            return (int)d;
        throw new ModelFileException(path, $"'{key}' = {v.GetRawText()} is not a 32-bit integer");
    }

    public static double? GetDouble(string path, JsonElement obj, string key)
    {
        if (!TryGet(obj, key, out JsonElement v))
            return null;
        return v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw WrongType(path, key, "a number", v);
    }

    public static string? GetString(string path, JsonElement obj, string key)
    {
        if (!TryGet(obj, key, out JsonElement v))
            return null;
        return v.ValueKind == JsonValueKind.String ? Text(path, key, v) : throw WrongType(path, key, "a string", v);
    }

    /// <summary>A JSON string's value; an escaped lone surrogate (which cannot become UTF-16 text) is a file error.</summary>
    public static string Text(string path, string key, JsonElement v)
    {
        try
        {
            return v.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw new ModelFileException(path, $"'{key}' holds text that cannot be decoded", e);
        }
    }

    public static bool? GetBool(string path, JsonElement obj, string key)
    {
        if (!TryGet(obj, key, out JsonElement v))
            return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(path, key, "true or false", v),
        };
    }

    public static int[]? GetIntArray(string path, JsonElement obj, string key)
    {
        if (!TryGet(obj, key, out JsonElement v))
            return null;
        if (v.ValueKind != JsonValueKind.Array)
            throw WrongType(path, key, "an array of integers", v);
        var result = new int[v.GetArrayLength()];
        int i = 0;
        foreach (JsonElement e in v.EnumerateArray())
        {
            result[i] = AsInt(path, $"{key}[{i}]", e);
            i++;
        }
        return result;
    }

    public static double[]? GetDoubleArray(string path, JsonElement obj, string key)
    {
        if (!TryGet(obj, key, out JsonElement v))
            return null;
        if (v.ValueKind == JsonValueKind.Number)
            return [v.GetDouble()];
        if (v.ValueKind != JsonValueKind.Array)
            throw WrongType(path, key, "a number or an array of numbers", v);
        var result = new double[v.GetArrayLength()];
        int i = 0;
        foreach (JsonElement e in v.EnumerateArray())
        {
            result[i] = e.ValueKind == JsonValueKind.Number ? e.GetDouble() : throw WrongType(path, $"{key}[{i}]", "a number", e);
            i++;
        }
        return result;
    }

    public static bool TryGetObject(string path, JsonElement obj, string key, out JsonElement value)
    {
        if (!TryGet(obj, key, out value))
            return false;
        return value.ValueKind == JsonValueKind.Object ? true : throw WrongType(path, key, "an object", value);
    }
}
