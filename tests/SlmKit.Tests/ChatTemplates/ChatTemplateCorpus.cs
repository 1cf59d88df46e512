using System.Text.Json;
using SlmKit.Tokenizers;

namespace SlmKit.Tests.ChatTemplates;

/// <summary>Every real-world chat template in ../shared, by a readable name, and the conversations used to exercise them.</summary>
internal static class ChatTemplateCorpus
{
    public static List<(string Name, string Source)> LoadAll()
    {
        var templates = new List<(string, string)>();

        string llamaCpp = SharedAssets.Require("assets/chat-templates/llamacpp");
        foreach (string file in Directory.GetFiles(llamaCpp, "*.jinja").Order(StringComparer.Ordinal))
            templates.Add(("llamacpp/" + Path.GetFileName(file), File.ReadAllText(file)));

        // One JSON object per line: {"family name": "template text"}; every entry in the file is Jinja.
        string ollama = SharedAssets.Require("assets/chat-templates/ollama-templates.jsonl");
        int lineNumber = 0;
        foreach (string line in File.ReadLines(ollama))
        {
            lineNumber++;
            if (line.Length == 0)
                continue;
            using var doc = JsonDocument.Parse(line);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                string text = property.Value.GetString()!;
                if (text.Contains("{%", StringComparison.Ordinal) || text.Contains("{{", StringComparison.Ordinal))
                    templates.Add(($"ollama-templates.jsonl:{lineNumber}:{property.Name}", text));
            }
        }

        string hf = SharedAssets.Require("assets/hf-tokenizers");
        foreach (string dir in Directory.GetDirectories(hf).Order(StringComparer.Ordinal))
        {
            string name = "hf-tokenizers/" + Path.GetFileName(dir);
            string config = Path.Combine(dir, "tokenizer_config.json");
            if (File.Exists(config))
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(config));
                if (doc.RootElement.TryGetProperty("chat_template", out var ct))
                {
                    if (ct.ValueKind == JsonValueKind.String)
                    {
                        templates.Add((name + "/tokenizer_config.json", ct.GetString()!));
                    }
                    else if (ct.ValueKind == JsonValueKind.Array)
                    {
                        // The list form: [{"name": "default", "template": "..."}, {"name": "tool_use", ...}].
                        foreach (var entry in ct.EnumerateArray())
                            templates.Add(($"{name}/tokenizer_config.json:{entry.GetProperty("name").GetString()}", entry.GetProperty("template").GetString()!));
                    }
                }
            }
            string json = Path.Combine(dir, "chat_template.json");
            if (File.Exists(json))
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(json));
                templates.Add((name + "/chat_template.json", doc.RootElement.GetProperty("chat_template").GetString()!));
            }
            string jinja = Path.Combine(dir, "chat_template.jinja");
            if (File.Exists(jinja))
                templates.Add((name + "/chat_template.jinja", File.ReadAllText(jinja)));
        }
        return templates;
    }

    public static readonly ChatMessage[] Standard =
    [
        new("system", "You are a helpful assistant."),
        new("user", "Hello!"),
        new("assistant", "Hi there, how can I help?"),
        new("user", "What is 2 + 2?"),
    ];

    public static readonly ChatMessage[] ToolConversation =
    [
        new("user", "What is the weather in Paris?"),
        new("assistant", null)
        {
            ToolCalls = [new ChatToolCall("call_1", "get_weather", """{"city": "Paris", "unit": "celsius"}""")],
        },
        new("tool", """{"temperature": 21, "condition": "sunny"}""") { ToolCallId = "call_1", Name = "get_weather" },
    ];

    public static IReadOnlyList<JsonElement> Tools { get; } =
    [
        JsonDocument.Parse("""
            {
              "type": "function",
              "function": {
                "name": "get_weather",
                "description": "Get the current weather in a city.",
                "parameters": {
                  "type": "object",
                  "properties": {
                    "city": {"type": "string", "description": "The city name"},
                    "unit": {"type": "string", "description": "Temperature unit", "enum": ["celsius", "fahrenheit"]}
                  },
                  "required": ["city"]
                }
              }
            }
            """).RootElement.Clone(),
    ];

    /// <summary>A conversation to render and what to pass with it.</summary>
    public sealed record Shape(string Label, ChatMessage[] Messages, IReadOnlyList<JsonElement>? Tools = null,
        IReadOnlyDictionary<string, object?>? Variables = null, bool HasNoneContent = false);

    private static readonly Dictionary<string, object?> s_fireFunctionVariables = new()
    {
        ["functions"] = Tools[0].GetRawText(),
        ["datetime"] = "2024-07-26",
    };

    /// <summary>
    /// The plain conversation, then the shapes a template may insist on instead: no system turn (Gemma, StarCoder2),
    /// tools given (templates that exist only for tool use), and firefunction-v2's own variables.
    /// </summary>
    public static Shape[] StandardShapes { get; } =
    [
        new("system,user,assistant,user", Standard),
        new("user,assistant,user", Standard[1..]),
        new("system,user,assistant,user + tools", Standard, Tools),
        new("system,user,assistant,user + tools + functions/datetime", Standard, Tools, s_fireFunctionVariables),
    ];

    /// <summary>
    /// The tool-calling conversation with the assistant's content None (as OpenAI clients send it), then with a
    /// closing user turn (templates that insist on alternation), then with content "" for templates that
    /// concatenate or search the content without checking for None (Hugging Face fails on those the same way).
    /// </summary>
    public static Shape[] ToolShapes { get; } =
    [
        new("user,assistant(tool_calls),tool", ToolConversation, Tools, HasNoneContent: true),
        new("user,assistant(tool_calls),tool,user", [.. ToolConversation, new ChatMessage("user", "Thanks!")], Tools, HasNoneContent: true),
        new("user,assistant(tool_calls, content \"\"),tool", WithEmptyContent(ToolConversation), Tools),
        new("user,assistant(tool_calls, content \"\"),tool,user", [.. WithEmptyContent(ToolConversation), new ChatMessage("user", "Thanks!")], Tools),
        new("user,assistant(tool_calls),tool + functions/datetime", ToolConversation, Tools, s_fireFunctionVariables, HasNoneContent: true),
    ];

    /// <summary>
    /// Templates written for OpenAI-style tool calls whose <c>arguments</c> is JSON text: they concatenate it to a
    /// string. SlmKit passes arguments parsed, as Hugging Face does, so these fail exactly as they do there.
    /// </summary>
    public static IReadOnlySet<string> StringArgumentTemplates { get; } = new HashSet<string>
    {
        "llamacpp/deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
        "llamacpp/meetkai-functionary-medium-v3.2.jinja",
    };

    private static ChatMessage[] WithEmptyContent(ChatMessage[] messages) =>
        Array.ConvertAll(messages, m => m.Content is null ? m with { Content = "" } : m);
}
