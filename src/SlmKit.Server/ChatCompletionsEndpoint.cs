using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SlmKit.Inference;
using SlmKit.Tokenizers;

namespace SlmKit.Server;

/// <summary>
/// <c>POST /v1/chat/completions</c>. Messages are rendered with the model's chat template (or <see cref="ChatPrompt"/>'s
/// fallback); <c>response_format</c> json_object/json_schema and forced tool calls (<c>tool_choice</c> "required" or a
/// named function) are enforced by constrained decoding. With tools and <c>tool_choice</c> "auto", the reply is parsed
/// for tool calls once complete, so a streamed reply arrives in one piece at the end.
/// </summary>
internal static class ChatCompletionsEndpoint
{
    private sealed record Tool(string Name, JsonElement? Parameters, JsonElement Definition);

    private enum ToolMode { None, Auto, Forced }

    public static async Task HandleAsync(HttpContext context, ModelService service)
    {
        using var document = await HttpIo.ReadJsonAsync(context, service.Options.MaxRequestBodyBytes).ConfigureAwait(false);
        var body = new JsonFields(document.RootElement, "");
        body.String("model");
        var messages = ReadMessages(body);
        var (tools, toolMode, forcedTools) = ReadTools(body);
        bool stream = body.Bool("stream") ?? false;
        bool includeUsage = stream && (body.Object("stream_options")?.Bool("include_usage") ?? false);
        bool logprobs = body.Bool("logprobs") ?? false;
        int? topLogprobs = (int?)body.Integer("top_logprobs", 0, 20);
        if (topLogprobs is not null && !logprobs)
            throw ApiException.BadField("top_logprobs", "needs logprobs set to true");
        int? maxTokens = (int?)(body.Integer("max_completion_tokens", 1, int.MaxValue) ?? body.Integer("max_tokens", 1, int.MaxValue));

        JsonGrammar? grammar = ReadResponseFormat(body, service);
        if (toolMode == ToolMode.Forced)
        {
            if (grammar is not null)
                throw ApiException.BadField("response_format", "cannot be combined with a forced tool call (tool_choice)");
            grammar = JsonGrammar.ForToolCall(service.Model.Tokenizer, forcedTools.Select(t => (t.Name, t.Parameters)).ToList());
        }

        string rendered;
        try
        {
            rendered = service.Prompt.Render(messages, tools.Count > 0 ? tools.Select(t => t.Definition).ToList() : null);
        }
        catch (ChatTemplateException e)
        {
            throw ApiException.BadField("messages", $"the model's chat template rejected the conversation: {e.Message}");
        }
        int[] prompt = service.Prompt.Encode(rendered);
        if (prompt.Length > service.ContextSize)
            throw new ApiException(400, $"messages: the prompt has {prompt.Length} tokens, more than the context size {service.ContextSize}",
                "invalid_request_error", "messages", "context_length_exceeded");

        var options = SamplingParameters.Read(body, maxTokens, service.ContextSize - prompt.Length, service.Prompt.StopStrings);
        var request = new GenerationRequest
        {
            PromptTokens = prompt,
            Options = options,
            Grammar = grammar,
            TopLogprobs = logprobs ? topLogprobs ?? 0 : -1,
        };
        var generation = service.Submit(request, context.RequestAborted);

        string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var names = tools.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        bool parseTools = toolMode != ToolMode.None;

        if (!stream)
        {
            var text = new StringBuilder();
            var tokenLogprobs = new List<TokenLogprob>();
            await foreach (var piece in generation.Pieces.ReadAllAsync(context.RequestAborted).ConfigureAwait(false))
            {
                text.Append(piece.Text);
                if (piece.Logprob is { } lp)
                    tokenLogprobs.Add(lp);
            }
            var result = await generation.Completion.ConfigureAwait(false);
            var (content, calls) = parseTools ? ExtractToolCalls(text.ToString(), names, toolMode) : (text.ToString(), []);
            string finish = calls.Count > 0 ? "tool_calls" : SamplingParameters.FinishReasonText(result.Reason);
            await HttpIo.WriteJsonAsync(context, 200, w =>
            {
                w.WriteStartObject();
                WriteHeader(w, id, "chat.completion", created, service.ModelId);
                w.WriteStartArray("choices");
                w.WriteStartObject();
                w.WriteNumber("index", 0);
                w.WriteStartObject("message");
                w.WriteString("role", "assistant");
                if (calls.Count > 0 && content.Length == 0)
                    w.WriteNull("content");
                else
                    w.WriteString("content", content);
                w.WriteNull("refusal");
                if (calls.Count > 0)
                    WriteToolCalls(w, calls, withIndex: false);
                w.WriteEndObject();
                if (logprobs)
                    WriteLogprobs(w, tokenLogprobs);
                else
                    w.WriteNull("logprobs");
                w.WriteString("finish_reason", finish);
                w.WriteEndObject();
                w.WriteEndArray();
                WriteUsage(w, result);
                w.WriteEndObject();
            }).ConfigureAwait(false);
            return;
        }

        HttpIo.StartEventStream(context);
        await HttpIo.WriteEventAsync(context, w => WriteChunk(w, id, created, service.ModelId, delta =>
        {
            delta.WriteString("role", "assistant");
            delta.WriteString("content", "");
        }, null, null)).ConfigureAwait(false);

        var buffered = parseTools ? new StringBuilder() : null;
        var bufferedLogprobs = new List<TokenLogprob>();
        await foreach (var piece in generation.Pieces.ReadAllAsync(context.RequestAborted).ConfigureAwait(false))
        {
            if (buffered is not null)
            {
                buffered.Append(piece.Text);
                if (piece.Logprob is { } held)
                    bufferedLogprobs.Add(held);
                continue;
            }
            if (piece.Text.Length == 0 && piece.Logprob is null)
                continue;
            await HttpIo.WriteEventAsync(context, w => WriteChunk(w, id, created, service.ModelId,
                delta => delta.WriteString("content", piece.Text),
                piece.Logprob is { } lp && logprobs ? [lp] : null, null)).ConfigureAwait(false);
        }
        var final = await generation.Completion.ConfigureAwait(false);
        string finishReason = SamplingParameters.FinishReasonText(final.Reason);
        if (buffered is not null)
        {
            var (content, calls) = ExtractToolCalls(buffered.ToString(), names, toolMode);
            if (calls.Count > 0)
                finishReason = "tool_calls";
            await HttpIo.WriteEventAsync(context, w => WriteChunk(w, id, created, service.ModelId, delta =>
            {
                if (content.Length > 0 || calls.Count == 0)
                    delta.WriteString("content", content);
                if (calls.Count > 0)
                    WriteToolCalls(delta, calls, withIndex: true);
            }, logprobs ? bufferedLogprobs : null, null)).ConfigureAwait(false);
        }
        await HttpIo.WriteEventAsync(context, w => WriteChunk(w, id, created, service.ModelId, _ => { }, null, finishReason)).ConfigureAwait(false);
        if (includeUsage)
        {
            await HttpIo.WriteEventAsync(context, w =>
            {
                w.WriteStartObject();
                WriteHeader(w, id, "chat.completion.chunk", created, service.ModelId);
                w.WriteStartArray("choices");
                w.WriteEndArray();
                WriteUsage(w, final);
                w.WriteEndObject();
            }).ConfigureAwait(false);
        }
        await HttpIo.WriteDoneAsync(context).ConfigureAwait(false);
    }

    private static (string Content, IReadOnlyList<(string Id, ParsedToolCall Call)> Calls) ExtractToolCalls(string text, HashSet<string> names, ToolMode mode)
    {
        var calls = new List<ParsedToolCall>();
        string content;
        if (mode == ToolMode.Forced)
        {
            content = ToolCallParser.TryReadCalls(text, names, calls) ? "" : text;
        }
        else
        {
            (content, var parsed) = ToolCallParser.Parse(text, names);
            calls.AddRange(parsed);
        }
        return (content, calls.Select(c => ("call_" + Guid.NewGuid().ToString("N")[..24], c)).ToList());
    }

    private static void WriteHeader(Utf8JsonWriter w, string id, string type, long created, string model)
    {
        w.WriteString("id", id);
        w.WriteString("object", type);
        w.WriteNumber("created", created);
        w.WriteString("model", model);
        w.WriteString("system_fingerprint", "slmkit");
    }

    private static void WriteChunk(Utf8JsonWriter w, string id, long created, string model, Action<Utf8JsonWriter> delta,
        IReadOnlyList<TokenLogprob>? logprobs, string? finishReason)
    {
        w.WriteStartObject();
        WriteHeader(w, id, "chat.completion.chunk", created, model);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteStartObject("delta");
        delta(w);
        w.WriteEndObject();
        if (logprobs is not null)
            WriteLogprobs(w, logprobs);
        else
            w.WriteNull("logprobs");
        if (finishReason is null)
            w.WriteNull("finish_reason");
        else
            w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteToolCalls(Utf8JsonWriter w, IReadOnlyList<(string Id, ParsedToolCall Call)> calls, bool withIndex)
    {
        w.WriteStartArray("tool_calls");
        for (int i = 0; i < calls.Count; i++)
        {
            w.WriteStartObject();
            if (withIndex)
                w.WriteNumber("index", i);
            w.WriteString("id", calls[i].Id);
            w.WriteString("type", "function");
            w.WriteStartObject("function");
            w.WriteString("name", calls[i].Call.Name);
            w.WriteString("arguments", calls[i].Call.ArgumentsJson);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WriteLogprobs(Utf8JsonWriter w, IReadOnlyList<TokenLogprob> logprobs)
    {
        w.WriteStartObject("logprobs");
        w.WriteStartArray("content");
        foreach (var lp in logprobs)
        {
            w.WriteStartObject();
            WriteToken(w, lp.Token, lp.Logprob);
            w.WriteStartArray("top_logprobs");
            foreach (var alternative in lp.TopAlternatives)
            {
                w.WriteStartObject();
                WriteToken(w, alternative.Token, alternative.Logprob);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNull("refusal");
        w.WriteEndObject();
    }

    private static void WriteToken(Utf8JsonWriter w, string token, float logprob)
    {
        w.WriteString("token", token);
        w.WriteNumber("logprob", float.IsNegativeInfinity(logprob) ? -9999f : logprob);
        w.WriteStartArray("bytes");
        foreach (byte b in Encoding.UTF8.GetBytes(token))
            w.WriteNumberValue(b);
        w.WriteEndArray();
    }

    internal static void WriteUsage(Utf8JsonWriter w, GenerationResult result)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", result.PromptTokens);
        w.WriteNumber("completion_tokens", result.CompletionTokens);
        w.WriteNumber("total_tokens", result.PromptTokens + result.CompletionTokens);
        w.WriteEndObject();
    }

    private static List<ChatMessage> ReadMessages(JsonFields body)
    {
        var array = body.Array("messages", required: true)!.Value;
        if (array.GetArrayLength() == 0)
            throw ApiException.BadField("messages", "must contain at least one message");
        var messages = new List<ChatMessage>();
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            string path = $"messages[{i++}]";
            var fields = new JsonFields(item, path);
            string role = fields.String("role", required: true)!;
            if (role is not ("system" or "developer" or "user" or "assistant" or "tool"))
                throw ApiException.BadField(fields.PathOf("role"), $"expected system, developer, user, assistant or tool (got '{role}')");
            string? content = ReadContent(fields);
            List<ChatToolCall>? calls = null;
            if (role == "assistant" && fields.Array("tool_calls") is { } toolCalls)
            {
                calls = [];
                int j = 0;
                foreach (var call in toolCalls.EnumerateArray())
                {
                    var callFields = new JsonFields(call, $"{path}.tool_calls[{j++}]");
                    var function = callFields.Object("function") ?? throw ApiException.BadField(callFields.PathOf("function"), "is required");
                    string arguments = function.String("arguments") ?? "{}";
                    try
                    {
                        using var parsed = JsonDocument.Parse(arguments);
                    }
                    catch (JsonException)
                    {
                        throw ApiException.BadField(function.PathOf("arguments"), "is not valid JSON");
                    }
                    calls.Add(new ChatToolCall(callFields.String("id") ?? "", function.String("name", required: true)!, arguments));
                }
            }
            else if (content is null && role != "assistant")
            {
                throw ApiException.BadField(fields.PathOf("content"), "is required");
            }
            messages.Add(new ChatMessage(role == "developer" ? "system" : role, content)
            {
                ToolCalls = calls,
                ToolCallId = fields.String("tool_call_id"),
                Name = fields.String("name"),
            });
        }
        return messages;
    }

    /// <summary>Content as a string, or an array of parts whose text parts are joined; other part types are refused.</summary>
    private static string? ReadContent(JsonFields fields)
    {
        if (fields.Get("content") is not { } content)
            return null;
        if (content.ValueKind == JsonValueKind.String)
            return content.GetString();
        if (content.ValueKind != JsonValueKind.Array)
            throw ApiException.BadField(fields.PathOf("content"), $"expected a string or an array of content parts, got {JsonFields.Describe(content)}");
        var text = new StringBuilder();
        int k = 0;
        foreach (var part in content.EnumerateArray())
        {
            var partFields = new JsonFields(part, $"{fields.PathOf("content")}[{k++}]");
            string type = partFields.String("type", required: true)!;
            if (type != "text")
                throw ApiException.BadField(partFields.PathOf("type"), $"only text content parts are supported (got '{type}')");
            text.Append(partFields.String("text", required: true));
        }
        return text.ToString();
    }

    private static (List<Tool> Tools, ToolMode Mode, List<Tool> Forced) ReadTools(JsonFields body)
    {
        var tools = new List<Tool>();
        if (body.Array("tools") is { } array)
        {
            int i = 0;
            foreach (var item in array.EnumerateArray())
            {
                var fields = new JsonFields(item, $"tools[{i++}]");
                string type = fields.String("type") ?? "function";
                if (type != "function")
                    throw ApiException.BadField(fields.PathOf("type"), $"only function tools are supported (got '{type}')");
                var function = fields.Object("function") ?? throw ApiException.BadField(fields.PathOf("function"), "is required");
                string name = function.String("name", required: true)!;
                if (name.Length == 0 || tools.Any(t => t.Name == name))
                    throw ApiException.BadField(function.PathOf("name"), name.Length == 0 ? "must not be empty" : $"'{name}' is defined twice");
                var parameters = function.Get("parameters");
                if (parameters is { ValueKind: not JsonValueKind.Object })
                    throw ApiException.BadField(function.PathOf("parameters"), "expected a JSON schema object");
                tools.Add(new Tool(name, parameters, item));
            }
        }

        var mode = tools.Count > 0 ? ToolMode.Auto : ToolMode.None;
        var forced = new List<Tool>();
        if (body.Get("tool_choice") is { } choice)
        {
            if (choice.ValueKind == JsonValueKind.String)
            {
                switch (choice.GetString())
                {
                    case "none":
                        mode = ToolMode.None;
                        break;
                    case "auto":
                        break;
                    case "required":
                        if (tools.Count == 0)
                            throw ApiException.BadField("tool_choice", "'required' needs at least one tool in tools");
                        mode = ToolMode.Forced;
                        forced.AddRange(tools);
                        break;
                    default:
                        throw ApiException.BadField("tool_choice", $"expected none, auto, required or a function (got '{choice.GetString()}')");
                }
            }
            else
            {
                var fields = new JsonFields(choice, "tool_choice");
                var function = fields.Object("function") ?? throw ApiException.BadField("tool_choice.function", "is required");
                string name = function.String("name", required: true)!;
                var tool = tools.FirstOrDefault(t => t.Name == name) ?? throw ApiException.BadField("tool_choice.function.name", $"no tool named '{name}' is in tools");
                mode = ToolMode.Forced;
                forced.Add(tool);
            }
        }
        return (tools, mode, forced);
    }

    private static JsonGrammar? ReadResponseFormat(JsonFields body, ModelService service)
    {
        if (body.Object("response_format") is not { } format)
            return null;
        string type = format.String("type", required: true)!;
        switch (type)
        {
            case "text":
                return null;
            case "json_object":
                return service.AnyObjectGrammar;
            case "json_schema":
                var spec = format.Object("json_schema") ?? throw ApiException.BadField("response_format.json_schema", "is required");
                spec.String("name");
                if (spec.Get("schema") is not { } schema)
                    return service.AnyObjectGrammar;
                if (schema.ValueKind != JsonValueKind.Object)
                    throw ApiException.BadField("response_format.json_schema.schema", "expected a JSON schema object");
                return service.SchemaGrammar(schema, "response_format.json_schema.schema");
            default:
                throw ApiException.BadField("response_format.type", $"expected text, json_object or json_schema (got '{type}')");
        }
    }
}
