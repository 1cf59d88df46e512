using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SlmKit.Inference;

namespace SlmKit.Server;

/// <summary><c>POST /v1/completions</c>: plain text continuation (one prompt string; <c>max_tokens</c> defaults to 16 as in OpenAI's API).</summary>
internal static class CompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext context, ModelService service)
    {
        using var document = await HttpIo.ReadJsonAsync(context, service.Options.MaxRequestBodyBytes).ConfigureAwait(false);
        var body = new JsonFields(document.RootElement, "");
        body.String("model");
        string promptText = ReadPrompt(body);
        bool stream = body.Bool("stream") ?? false;
        bool includeUsage = stream && (body.Object("stream_options")?.Bool("include_usage") ?? false);
        int? logprobs = (int?)body.Integer("logprobs", 0, 20);
        if (body.Bool("echo") == true)
            throw ApiException.BadField("echo", "echoing the prompt is not supported");
        if (body.String("suffix") is { Length: > 0 })
            throw ApiException.BadField("suffix", "suffixes (fill-in-the-middle) are not supported");
        int maxTokens = (int)(body.Integer("max_tokens", 0, int.MaxValue) ?? 16);

        int[] prompt = service.Model.Tokenizer.Encode(promptText, addSpecial: true);
        if (prompt.Length == 0 && service.Model.Tokenizer.BosId is int bos)
            prompt = [bos];
        if (prompt.Length == 0)
            throw ApiException.BadField("prompt", "is empty and the model has no BOS token to start from");
        if (prompt.Length > service.ContextSize)
            throw new ApiException(400, $"prompt: {prompt.Length} tokens, more than the context size {service.ContextSize}",
                "invalid_request_error", "prompt", "context_length_exceeded");

        var options = SamplingParameters.Read(body, maxTokens, service.ContextSize - prompt.Length, []);
        var generation = service.Submit(new GenerationRequest { PromptTokens = prompt, Options = options, TopLogprobs = logprobs ?? -1 }, context.RequestAborted);
        string id = "cmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        if (!stream)
        {
            var text = new StringBuilder();
            var pieces = new List<GeneratedPiece>();
            await foreach (var piece in generation.Pieces.ReadAllAsync(context.RequestAborted).ConfigureAwait(false))
            {
                text.Append(piece.Text);
                pieces.Add(piece);
            }
            var result = await generation.Completion.ConfigureAwait(false);
            await HttpIo.WriteJsonAsync(context, 200, w =>
            {
                w.WriteStartObject();
                WriteHeader(w, id, created, service.ModelId);
                w.WriteStartArray("choices");
                WriteChoice(w, text.ToString(), logprobs is null ? null : pieces, SamplingParameters.FinishReasonText(result.Reason));
                w.WriteEndArray();
                ChatCompletionsEndpoint.WriteUsage(w, result);
                w.WriteEndObject();
            }).ConfigureAwait(false);
            return;
        }

        HttpIo.StartEventStream(context);
        await foreach (var piece in generation.Pieces.ReadAllAsync(context.RequestAborted).ConfigureAwait(false))
        {
            if (piece.Text.Length == 0 && piece.Logprob is null)
                continue;
            await HttpIo.WriteEventAsync(context, w =>
            {
                w.WriteStartObject();
                WriteHeader(w, id, created, service.ModelId);
                w.WriteStartArray("choices");
                WriteChoice(w, piece.Text, logprobs is null ? null : [piece], null);
                w.WriteEndArray();
                w.WriteEndObject();
            }).ConfigureAwait(false);
        }
        var final = await generation.Completion.ConfigureAwait(false);
        await HttpIo.WriteEventAsync(context, w =>
        {
            w.WriteStartObject();
            WriteHeader(w, id, created, service.ModelId);
            w.WriteStartArray("choices");
            WriteChoice(w, "", null, SamplingParameters.FinishReasonText(final.Reason));
            w.WriteEndArray();
            if (includeUsage)
                ChatCompletionsEndpoint.WriteUsage(w, final);
            w.WriteEndObject();
        }).ConfigureAwait(false);
        await HttpIo.WriteDoneAsync(context).ConfigureAwait(false);
    }

    private static string ReadPrompt(JsonFields body)
    {
        if (body.Get("prompt") is not { } prompt)
            throw ApiException.BadField("prompt", "is required");
        if (prompt.ValueKind == JsonValueKind.String)
            return prompt.GetString()!;
        if (prompt.ValueKind == JsonValueKind.Array && prompt.GetArrayLength() == 1 && prompt[0].ValueKind == JsonValueKind.String)
            return prompt[0].GetString()!;
        throw ApiException.BadField("prompt", "expected a string (or an array holding one string)");
    }

    private static void WriteHeader(Utf8JsonWriter w, string id, long created, string model)
    {
        w.WriteString("id", id);
        w.WriteString("object", "text_completion");
        w.WriteNumber("created", created);
        w.WriteString("model", model);
        w.WriteString("system_fingerprint", "slmkit");
    }

    /// <summary>One choice; legacy logprobs are parallel arrays: tokens, token_logprobs, top_logprobs (token → logprob), text_offset.</summary>
    private static void WriteChoice(Utf8JsonWriter w, string text, IReadOnlyList<GeneratedPiece>? pieces, string? finishReason)
    {
        w.WriteStartObject();
        w.WriteString("text", text);
        w.WriteNumber("index", 0);
        if (pieces is null)
        {
            w.WriteNull("logprobs");
        }
        else
        {
            var tokens = pieces.Where(p => p.Logprob is not null).Select(p => p.Logprob!).ToList();
            w.WriteStartObject("logprobs");
            w.WriteStartArray("tokens");
            foreach (var t in tokens)
                w.WriteStringValue(t.Token);
            w.WriteEndArray();
            w.WriteStartArray("token_logprobs");
            foreach (var t in tokens)
                w.WriteNumberValue(t.Logprob);
            w.WriteEndArray();
            w.WriteStartArray("top_logprobs");
            foreach (var t in tokens)
            {
                w.WriteStartObject();
                foreach (var alternative in t.TopAlternatives)
                    w.WriteNumber(alternative.Token, alternative.Logprob);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("text_offset");
            int offset = 0;
            foreach (var t in tokens)
            {
                w.WriteNumberValue(offset);
                offset += t.Token.Length;
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        if (finishReason is null)
            w.WriteNull("finish_reason");
        else
            w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
    }
}
