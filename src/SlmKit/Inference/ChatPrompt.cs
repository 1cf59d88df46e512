using System.Text;
using System.Text.Json;
using SlmKit.Tokenizers;

namespace SlmKit.Inference;

/// <summary>
/// Turns a conversation into prompt tokens: with the model's own chat template when it has one, otherwise with a plain
/// fallback format (below). Thread-safe; build one per model.
/// </summary>
/// <remarks>
/// The fallback, for base models and models without a template, is plain text that any model can continue:
/// <code>
/// {system text}
///
/// User: {text}
/// Assistant: {text}
/// Tool (name): {result}
/// Assistant:
/// </code>
/// Tools are listed in a preamble that asks for <c>&lt;tool_call&gt;{"name": …, "arguments": {…}}&lt;/tool_call&gt;</c>, and
/// generation stops at <c>"\nUser:"</c> (see <see cref="StopStrings"/>).
/// </remarks>
public sealed class ChatPrompt
{
    private readonly Tokenizer _tokenizer;
    private readonly ChatTemplate? _template;
    private readonly string? _bosText;
    private readonly string? _eosText;

    public ChatPrompt(Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        if (tokenizer.ChatTemplate is { Length: > 0 } source)
        {
            try
            {
                _template = ChatTemplate.Parse(source);
            }
            catch (ChatTemplateException e)
            {
                TemplateProblem = e.Message;
            }
        }
        _bosText = tokenizer.BosId is int bos ? tokenizer.TokenPiece(bos) : null;
        _eosText = tokenizer.EosId is int eos ? tokenizer.TokenPiece(eos) : null;
    }

    /// <summary>Whether the model's own template is used (false: the fallback format).</summary>
    public bool UsesModelTemplate => _template is not null;

    /// <summary>Why the model's template could not be used, when it has one that failed to parse.</summary>
    public string? TemplateProblem { get; }

    /// <summary>Stop strings that go with the format: the fallback's next-turn marker; none for model templates.</summary>
    public IReadOnlyList<string> StopStrings => _template is null ? ["\nUser:"] : [];

    /// <summary>Renders the conversation, ending with the start of the assistant's turn.</summary>
    /// <exception cref="ChatTemplateException">The template rejected the conversation (e.g. roles that must alternate).</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, IReadOnlyList<JsonElement>? tools = null) =>
        _template is not null
            ? _template.Render(messages, addGenerationPrompt: true, _bosText, _eosText, tools is { Count: > 0 } ? tools : null)
            : RenderFallback(messages, tools);

    /// <summary>Encodes rendered prompt text: special-token texts become their ids, and BOS is added unless the text starts with it.</summary>
    public int[] Encode(string rendered)
    {
        bool hasBos = _bosText is { Length: > 0 } && rendered.StartsWith(_bosText, StringComparison.Ordinal);
        int[] tokens = _tokenizer.Encode(rendered, addSpecial: !hasBos, parseSpecial: true);
        if (_tokenizer.AddEos && !hasBos && tokens.Length > 0 && tokens[^1] == _tokenizer.EosId)
            tokens = tokens[..^1];
        return tokens;
    }

    private static string RenderFallback(IReadOnlyList<ChatMessage> messages, IReadOnlyList<JsonElement>? tools)
    {
        var text = new StringBuilder();
        if (tools is { Count: > 0 })
        {
            text.Append("You can call these tools. To call one, answer with <tool_call>{\"name\": \"TOOL NAME\", \"arguments\": {ARGUMENTS}}</tool_call>.\nTools:\n");
            foreach (var tool in tools)
                text.Append(tool.GetRawText()).Append('\n');
            text.Append('\n');
        }
        foreach (var message in messages)
        {
            switch (message.Role)
            {
                case "system" or "developer":
                    text.Append(message.Content).Append("\n\n");
                    break;
                case "user":
                    text.Append("User: ").Append(message.Content).Append('\n');
                    break;
                case "tool":
                    text.Append("Tool");
                    if (message.Name is { Length: > 0 } name)
                        text.Append(" (").Append(name).Append(')');
                    text.Append(": ").Append(message.Content).Append('\n');
                    break;
                default:
                    text.Append("Assistant: ").Append(message.Content);
                    foreach (var call in message.ToolCalls ?? [])
                        text.Append("<tool_call>{\"name\": ").Append(JsonText.Quote(call.Name)).Append(", \"arguments\": ").Append(call.ArgumentsJson).Append("}</tool_call>");
                    text.Append('\n');
                    break;
            }
        }
        text.Append("Assistant:");
        return text.ToString();
    }
}
