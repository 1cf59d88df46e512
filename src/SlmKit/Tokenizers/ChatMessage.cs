namespace SlmKit.Tokenizers;

/// <summary>One turn of a conversation as a chat template sees it (an OpenAI/Hugging Face style message).</summary>
/// <param name="Role">The speaker: usually <c>system</c>, <c>user</c>, <c>assistant</c> or <c>tool</c>.</param>
/// <param name="Content">The text of the turn; null for an assistant turn that only calls tools.</param>
public sealed record ChatMessage(string Role, string? Content)
{
    /// <summary>The tool calls an assistant turn made; null when it made none.</summary>
    public IReadOnlyList<ChatToolCall>? ToolCalls { get; init; }

    /// <summary>For a <c>tool</c> turn, the id of the call this turn answers.</summary>
    public string? ToolCallId { get; init; }

    /// <summary>An optional name of the speaker (for a <c>tool</c> turn, the tool's name).</summary>
    public string? Name { get; init; }
}

/// <summary>One function call made by an assistant turn.</summary>
/// <param name="Id">The call's id, echoed by the <c>tool</c> turn that answers it.</param>
/// <param name="Name">The function's name.</param>
/// <param name="ArgumentsJson">The arguments as JSON text (an object); templates see it parsed, as Hugging Face passes it.</param>
public sealed record ChatToolCall(string Id, string Name, string ArgumentsJson);
