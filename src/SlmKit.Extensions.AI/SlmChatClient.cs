using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using SlmKit.Inference;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using SlmChatMessage = SlmKit.Tokenizers.ChatMessage;

namespace SlmKit.Extensions.AI;

/// <summary>
/// <see cref="IChatClient"/> over a model loaded in this process: no server, no HTTP. Concurrent calls share the model
/// through a <see cref="BatchScheduler"/> (continuous batching). Maps <see cref="ChatOptions"/>' MaxOutputTokens,
/// Temperature, TopP, TopK, Seed, StopSequences, frequency/presence penalties, ResponseFormat (JSON, with or without
/// schema, enforced by constrained decoding) and Tools/ToolMode (tool calls come back as <see cref="FunctionCallContent"/>;
/// with a required tool mode the call is enforced by constrained decoding). With tools in auto mode the streamed reply
/// arrives in one update at the end, after it has been checked for tool calls.
/// </summary>
public sealed class SlmChatClient : IChatClient
{
    private readonly SlmModel _model;
    private readonly BatchScheduler _scheduler;
    private readonly ChatPrompt _prompt;
    private readonly ChatClientMetadata _metadata;

    /// <param name="model">The loaded model; the caller keeps ownership and disposes it after this client.</param>
    /// <param name="options">Slots and queue; the context size defaults to the model's.</param>
    /// <param name="modelId">The id reported in responses; the architecture name by default.</param>
    public SlmChatClient(SlmModel model, SchedulerOptions? options = null, string? modelId = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _scheduler = new BatchScheduler(model.Model, model.Tokenizer, options ?? new SchedulerOptions { ContextSize = model.ContextSize });
        _prompt = new ChatPrompt(model.Tokenizer);
        ModelId = modelId ?? model.Info.Architecture;
        _metadata = new ChatClientMetadata("slmkit", null, ModelId);
    }

    public string ModelId { get; }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var plan = Plan(messages, options);
        var stream = _scheduler.Submit(plan.Request, cancellationToken);
        var text = new StringBuilder();
        await foreach (var piece in stream.Pieces.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            text.Append(piece.Text);
        var result = await stream.Completion.ConfigureAwait(false);
        var contents = Contents(text.ToString(), plan, out bool calledTools);
        return new ChatResponse(new AiChatMessage(ChatRole.Assistant, contents))
        {
            ResponseId = "chatcmpl-" + Guid.NewGuid().ToString("N"),
            ModelId = ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = calledTools ? ChatFinishReason.ToolCalls : Finish(result.Reason),
            Usage = Usage(result),
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var plan = Plan(messages, options);
        var stream = _scheduler.Submit(plan.Request, cancellationToken);
        string responseId = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var held = plan.Mode == ToolMode.None ? null : new StringBuilder();
        await foreach (var piece in stream.Pieces.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (held is not null)
            {
                held.Append(piece.Text);
                continue;
            }
            if (piece.Text.Length > 0)
                yield return new ChatResponseUpdate(ChatRole.Assistant, piece.Text) { ResponseId = responseId, ModelId = ModelId };
        }
        var result = await stream.Completion.ConfigureAwait(false);
        var last = new ChatResponseUpdate(ChatRole.Assistant, [])
        {
            ResponseId = responseId,
            ModelId = ModelId,
            FinishReason = Finish(result.Reason),
        };
        if (held is not null)
        {
            last.Contents = Contents(held.ToString(), plan, out bool calledTools);
            if (calledTools)
                last.FinishReason = ChatFinishReason.ToolCalls;
        }
        last.Contents.Add(new UsageContent(Usage(result)));
        yield return last;
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
            return null;
        if (serviceType == typeof(ChatClientMetadata))
            return _metadata;
        if (serviceType == typeof(SlmModel))
            return _model;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    public void Dispose() => _scheduler.Dispose();

    private enum ToolMode { None, Auto, Forced }

    private sealed record RequestPlan(GenerationRequest Request, ToolMode Mode, IReadOnlyCollection<string> ToolNames);

    private RequestPlan Plan(IEnumerable<AiChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var conversation = new List<SlmChatMessage>();
        if (options?.Instructions is { Length: > 0 } instructions)
            conversation.Add(new SlmChatMessage("system", instructions));
        foreach (var message in messages)
            AddMessage(conversation, message);

        var functions = options?.Tools?.OfType<AIFunctionDeclaration>().ToList() ?? [];
        var mode = functions.Count == 0 || options?.ToolMode is NoneChatToolMode ? ToolMode.None
            : options?.ToolMode is RequiredChatToolMode ? ToolMode.Forced : ToolMode.Auto;
        var forced = functions;
        if (options?.ToolMode is RequiredChatToolMode { RequiredFunctionName: { } required })
        {
            forced = functions.Where(f => f.Name == required).ToList();
            if (forced.Count == 0)
                throw new ArgumentException($"ToolMode requires '{required}', which is not among the tools", nameof(options));
        }

        JsonGrammar? grammar = options?.ResponseFormat switch
        {
            ChatResponseFormatJson { Schema: { } schema } => JsonGrammar.ForSchema(_model.Tokenizer, schema),
            ChatResponseFormatJson => JsonGrammar.ForAnyObject(_model.Tokenizer),
            _ => null,
        };
        if (mode == ToolMode.Forced)
            grammar = JsonGrammar.ForToolCall(_model.Tokenizer, forced.Select(f => (f.Name, (JsonElement?)f.JsonSchema)).ToList());

        var tools = functions.Count == 0 ? null : functions.Select(ToolDefinition).ToList();
        int[] prompt = _prompt.Encode(_prompt.Render(conversation, tools));
        var defaults = new GenerationOptions();
        var generation = new GenerationOptions
        {
            MaxTokens = options?.MaxOutputTokens ?? Math.Max(_scheduler.Options.ContextSize - prompt.Length, 0),
            Temperature = options?.Temperature ?? defaults.Temperature,
            TopP = options?.TopP ?? defaults.TopP,
            TopK = options?.TopK ?? defaults.TopK,
            FrequencyPenalty = options?.FrequencyPenalty ?? 0,
            PresencePenalty = options?.PresencePenalty ?? 0,
            Seed = options?.Seed is long seed ? unchecked((ulong)seed) : null,
            StopStrings = [.. options?.StopSequences ?? [], .. _prompt.StopStrings],
        };
        var request = new GenerationRequest { PromptTokens = prompt, Options = generation, Grammar = grammar };
        return new RequestPlan(request, mode, functions.Select(f => f.Name).ToHashSet(StringComparer.Ordinal));
    }

    private static void AddMessage(List<SlmChatMessage> conversation, AiChatMessage message)
    {
        var calls = message.Contents.OfType<FunctionCallContent>()
            .Select(c => new SlmKit.Tokenizers.ChatToolCall(c.CallId, c.Name, SerializeArguments(c.Arguments)))
            .ToList();
        var results = message.Contents.OfType<FunctionResultContent>().ToList();
        if (results.Count > 0)
        {
            foreach (var result in results)
                conversation.Add(new SlmChatMessage("tool", ResultText(result.Result)) { ToolCallId = result.CallId });
            return;
        }
        string role = message.Role.Value;
        string? text = message.Text;
        conversation.Add(new SlmChatMessage(role, calls.Count > 0 && text.Length == 0 ? null : text)
        {
            ToolCalls = calls.Count > 0 ? calls : null,
            Name = message.AuthorName,
        });
    }

    private static string SerializeArguments(IDictionary<string, object?>? arguments) =>
        arguments is null ? "{}" : JsonSerializer.Serialize(arguments, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(IDictionary<string, object?>)));

    private static string ResultText(object? result) => result switch
    {
        null => "",
        string s => s,
        JsonElement e => e.GetRawText(),
        _ => JsonSerializer.Serialize(result, AIJsonUtilities.DefaultOptions.GetTypeInfo(result.GetType())),
    };

    private static JsonElement ToolDefinition(AIFunctionDeclaration function)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("type", "function");
            writer.WriteStartObject("function");
            writer.WriteString("name", function.Name);
            if (!string.IsNullOrEmpty(function.Description))
                writer.WriteString("description", function.Description);
            writer.WritePropertyName("parameters");
            function.JsonSchema.WriteTo(writer);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        using var document = JsonDocument.Parse(buffer.WrittenMemory);
        return document.RootElement.Clone();
    }

    private static List<AIContent> Contents(string text, RequestPlan plan, out bool calledTools)
    {
        var calls = new List<ParsedToolCall>();
        string content = text;
        if (plan.Mode == ToolMode.Forced)
        {
            if (ToolCallParser.TryReadCalls(text, plan.ToolNames, calls))
                content = "";
        }
        else if (plan.Mode == ToolMode.Auto)
        {
            (content, var parsed) = ToolCallParser.Parse(text, plan.ToolNames);
            calls.AddRange(parsed);
        }
        var contents = new List<AIContent>();
        if (content.Length > 0)
            contents.Add(new TextContent(content));
        foreach (var call in calls)
        {
            var arguments = JsonSerializer.Deserialize(call.ArgumentsJson, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(Dictionary<string, object?>))) as Dictionary<string, object?>;
            contents.Add(new FunctionCallContent("call_" + Guid.NewGuid().ToString("N")[..24], call.Name, arguments));
        }
        calledTools = calls.Count > 0;
        return contents;
    }

    private static ChatFinishReason Finish(FinishReason reason) => reason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop;

    private static UsageDetails Usage(GenerationResult result) => new()
    {
        InputTokenCount = result.PromptTokens,
        OutputTokenCount = result.CompletionTokens,
        TotalTokenCount = result.PromptTokens + result.CompletionTokens,
    };
}
