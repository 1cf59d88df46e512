using System.Text.Json;

namespace SlmKit.Tokenizers;

/// <summary>
/// A model's chat template (the Jinja2 text in <c>tokenizer_config.json</c>'s <c>chat_template</c>, a
/// <c>chat_template.jinja</c> file or GGUF <c>tokenizer.chat_template</c>), rendered the way Hugging Face's
/// <c>apply_chat_template</c> renders it: <c>trim_blocks</c> and <c>lstrip_blocks</c> on, undefined values print as
/// empty text, <c>tojson</c> keeps non-ASCII text, and <c>raise_exception</c> and <c>strftime_now</c> are available.
/// </summary>
/// <remarks>
/// Only the subset of Jinja2 that chat templates use is supported; anything else is rejected by
/// <see cref="Parse(string, TimeProvider?)"/> or reported while rendering, with its line and column, never ignored.
/// A parsed template is immutable and may be rendered from several threads at once.
/// </remarks>
public sealed class ChatTemplate
{
    private readonly List<TemplateNode> _nodes;
    private readonly TimeProvider _clock;

    private ChatTemplate(string source, List<TemplateNode> nodes, TimeProvider clock)
    {
        Source = source;
        _nodes = nodes;
        _clock = clock;
    }

    /// <summary>The template text as given to <see cref="Parse(string, TimeProvider?)"/>.</summary>
    public string Source { get; }

    /// <summary>Parses a template.</summary>
    /// <param name="source">The Jinja2 template text.</param>
    /// <param name="clock">The clock <c>strftime_now</c> reads (local time); the system clock when null. Tests pass a fixed one.</param>
    /// <exception cref="ChatTemplateException">The template uses syntax outside the supported subset or is malformed.</exception>
    public static ChatTemplate Parse(string source, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new ChatTemplate(source, ChatTemplateParser.Parse(source), clock ?? TimeProvider.System);
    }

    /// <summary>Renders a conversation into the prompt text the model expects.</summary>
    /// <param name="messages">The conversation so far.</param>
    /// <param name="addGenerationPrompt">Whether to end with the header that starts the assistant's reply.</param>
    /// <param name="bosToken">The model's beginning-of-sequence token text (<c>bos_token</c>); undefined when null.</param>
    /// <param name="eosToken">The model's end-of-sequence token text (<c>eos_token</c>); undefined when null.</param>
    /// <param name="tools">Tool definitions (JSON objects, usually <c>{"type": "function", "function": {...}}</c>); <c>tools</c> is none when null.</param>
    /// <param name="extraVariables">
    /// Further template variables, such as <c>enable_thinking</c> or <c>date_string</c>. Values may be strings,
    /// numbers, booleans, null, <see cref="JsonElement"/>, dictionaries or sequences. They override the standard ones.
    /// </param>
    /// <returns>The rendered prompt.</returns>
    /// <exception cref="ChatTemplateException">
    /// The template failed while rendering, or called <c>raise_exception</c> (then
    /// <see cref="ChatTemplateException.RaisedByTemplate"/> is true and the message is the template's).
    /// </exception>
    public string Render(
        IReadOnlyList<ChatMessage> messages,
        bool addGenerationPrompt,
        string? bosToken = null,
        string? eosToken = null,
        IReadOnlyList<JsonElement>? tools = null,
        IReadOnlyDictionary<string, object?>? extraVariables = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var root = new TemplateScope(null);
        var messageList = new List<object?>(messages.Count);
        foreach (var message in messages)
            messageList.Add(ToTemplateValue(message));
        root.Set("messages", messageList);
        root.Set("add_generation_prompt", addGenerationPrompt);
        if (bosToken is not null)
            root.Set("bos_token", bosToken);
        if (eosToken is not null)
            root.Set("eos_token", eosToken);
        // Hugging Face always passes tools and documents, as None when absent: templates test 'tools is not none'.
        if (tools is null)
        {
            root.Set("tools", null);
        }
        else
        {
            var toolList = new List<object?>(tools.Count);
            foreach (var tool in tools)
                toolList.Add(PythonValues.FromJson(tool));
            root.Set("tools", toolList);
        }
        root.Set("documents", null);
        if (extraVariables is not null)
        {
            foreach (var (name, value) in extraVariables)
                root.Set(name, PythonValues.FromClr(value));
        }
        return new ChatTemplateRenderer(_clock).Render(_nodes, root);
    }

    // Messages reach the template as dicts shaped like Hugging Face's: optional keys are absent rather than None,
    // because templates test 'message.tool_calls is defined' before iterating it.
    private static TemplateDict ToTemplateValue(ChatMessage message)
    {
        var dict = new TemplateDict
        {
            ["role"] = message.Role,
            ["content"] = message.Content,
        };
        if (message.ToolCalls is not null)
        {
            var calls = new List<object?>(message.ToolCalls.Count);
            foreach (var call in message.ToolCalls)
            {
                calls.Add(new TemplateDict
                {
                    ["id"] = call.Id,
                    ["type"] = "function",
                    ["function"] = new TemplateDict
                    {
                        ["name"] = call.Name,
                        ["arguments"] = ParseArguments(call.ArgumentsJson),
                    },
                });
            }
            dict["tool_calls"] = calls;
        }
        if (message.ToolCallId is not null)
            dict["tool_call_id"] = message.ToolCallId;
        if (message.Name is not null)
            dict["name"] = message.Name;
        return dict;
    }

    // Hugging Face's convention is arguments as a parsed object; text that is not JSON is passed on unchanged
    // so that a template can still print it.
    private static object? ParseArguments(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return PythonValues.FromJson(document.RootElement);
        }
        catch (JsonException)
        {
            return json;
        }
    }
}
