using System.Text.Json;

namespace SlmKit.Inference;

/// <summary>A function call found in a model's output.</summary>
/// <param name="Name">The function's name (one of the offered tools).</param>
/// <param name="ArgumentsJson">The arguments as compact JSON object text.</param>
public sealed record ParsedToolCall(string Name, string ArgumentsJson);

/// <summary>
/// Finds tool calls in generated text, in the formats small models are trained on: Hermes/Qwen
/// <c>&lt;tool_call&gt;{"name": …, "arguments": {…}}&lt;/tool_call&gt;</c> blocks (the closing tag may be cut off), or
/// a whole reply that is one such object or an array of them (Llama 3.x writes <c>"parameters"</c> for the arguments).
/// Only calls to offered tools count; anything else stays text.
/// </summary>
public static class ToolCallParser
{
    private const string Open = "<tool_call>";
    private const string Close = "</tool_call>";

    /// <summary>Splits <paramref name="text"/> into the calls it makes and the remaining text.</summary>
    public static (string Content, IReadOnlyList<ParsedToolCall> Calls) Parse(string text, IReadOnlyCollection<string> toolNames)
    {
        ArgumentNullException.ThrowIfNull(text);
        var calls = new List<ParsedToolCall>();
        if (text.Contains(Open, StringComparison.Ordinal))
        {
            var content = new System.Text.StringBuilder();
            int at = 0;
            while (at < text.Length)
            {
                int open = text.IndexOf(Open, at, StringComparison.Ordinal);
                if (open < 0)
                {
                    content.Append(text, at, text.Length - at);
                    break;
                }
                content.Append(text, at, open - at);
                int bodyStart = open + Open.Length;
                int close = text.IndexOf(Close, bodyStart, StringComparison.Ordinal);
                string body = close < 0 ? text[bodyStart..] : text[bodyStart..close];
                int after = close < 0 ? text.Length : close + Close.Length;
                if (TryReadCalls(body, toolNames, calls))
                    at = after;
                else
                {
                    content.Append(text, open, after - open);
                    at = after;
                }
            }
            return (content.ToString().Trim(), calls);
        }
        string trimmed = text.Trim();
        if (trimmed.Length > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && TryReadCalls(trimmed, toolNames, calls))
            return ("", calls);
        return (text, calls);
    }

    /// <summary>Reads one call object, or an array of them, from JSON text; false (adding nothing) when it is not one.</summary>
    public static bool TryReadCalls(string json, IReadOnlyCollection<string> toolNames, List<ParsedToolCall> calls)
    {
        try
        {
            using var document = JsonDocument.Parse(json.Trim());
            var found = new List<ParsedToolCall>();
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in root.EnumerateArray())
                {
                    if (ReadCall(item, toolNames) is not { } call)
                        return false;
                    found.Add(call);
                }
            }
            else if (ReadCall(root, toolNames) is { } call)
            {
                found.Add(call);
            }
            if (found.Count == 0)
                return false;
            calls.AddRange(found);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static ParsedToolCall? ReadCall(JsonElement element, IReadOnlyCollection<string> toolNames)
    {
        if (element.ValueKind != JsonValueKind.Object
            || !element.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String
            || !toolNames.Contains(name.GetString()!))
            return null;
        string arguments = "{}";
        if (element.TryGetProperty("arguments", out var args) || element.TryGetProperty("parameters", out args))
        {
            if (args.ValueKind == JsonValueKind.String)
            {
                // Some models write the arguments as a JSON string; accept it when it holds an object.
                try
                {
                    using var inner = JsonDocument.Parse(args.GetString()!);
                    if (inner.RootElement.ValueKind != JsonValueKind.Object)
                        return null;
                    arguments = System.Text.Encoding.UTF8.GetString(JsonSchemaNode.CompactUtf8(inner.RootElement));
                }
                catch (JsonException)
                {
                    return null;
                }
            }
            else if (args.ValueKind == JsonValueKind.Object)
            {
                arguments = System.Text.Encoding.UTF8.GetString(JsonSchemaNode.CompactUtf8(args));
            }
            else
            {
                return null;
            }
        }
        return new ParsedToolCall(name.GetString()!, arguments);
    }
}
