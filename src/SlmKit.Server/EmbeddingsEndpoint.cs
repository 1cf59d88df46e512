using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace SlmKit.Server;

/// <summary>
/// <c>POST /v1/embeddings</c>: mean-pooled, unit-length final hidden states (see <see cref="Inference.TextEmbedder"/>).
/// <c>input</c> may be a string, an array of strings, an array of token ids or an array of such arrays;
/// <c>encoding_format</c> float (default) or base64 (little-endian float32, what the OpenAI .NET client asks for).
/// </summary>
internal static class EmbeddingsEndpoint
{
    private const int MaxInputs = 256;

    public static async Task HandleAsync(HttpContext context, ModelService service)
    {
        using var document = await HttpIo.ReadJsonAsync(context, service.Options.MaxRequestBodyBytes).ConfigureAwait(false);
        var body = new JsonFields(document.RootElement, "");
        body.String("model");
        string format = body.String("encoding_format") ?? "float";
        if (format is not ("float" or "base64"))
            throw ApiException.BadField("encoding_format", $"expected float or base64 (got '{format}')");
        int dimensions = service.Embedder.Dimensions;
        if (body.Integer("dimensions", 1, int.MaxValue) is long asked && asked != dimensions)
            throw ApiException.BadField("dimensions", $"this model's embeddings have {dimensions} dimensions (got {asked})");
        if (!service.Model.Model.SupportsHiddenStates)
            throw ApiException.BadRequest($"embeddings are not available for {service.Model.Info.Architecture} models", "model", "model_not_supported");

        var inputs = ReadInputs(body, service);
        var vectors = new float[inputs.Count][];
        int totalTokens = 0;
        for (int i = 0; i < inputs.Count; i++)
        {
            context.RequestAborted.ThrowIfCancellationRequested();
            int[] tokens = inputs[i];
            if (tokens.Length > service.ContextSize)
                throw new ApiException(400, $"input[{i}]: {tokens.Length} tokens, more than the context size {service.ContextSize}",
                    "invalid_request_error", $"input[{i}]", "context_length_exceeded");
            vectors[i] = await Task.Run(() => service.Embedder.Embed(tokens), context.RequestAborted).ConfigureAwait(false);
            totalTokens += tokens.Length;
        }

        await HttpIo.WriteJsonAsync(context, 200, w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            for (int i = 0; i < vectors.Length; i++)
            {
                w.WriteStartObject();
                w.WriteString("object", "embedding");
                w.WriteNumber("index", i);
                if (format == "base64")
                {
                    w.WriteBase64String("embedding", MemoryMarshal.AsBytes(vectors[i].AsSpan()));
                }
                else
                {
                    w.WriteStartArray("embedding");
                    foreach (float v in vectors[i])
                        w.WriteNumberValue(v);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("model", service.ModelId);
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", totalTokens);
            w.WriteNumber("total_tokens", totalTokens);
            w.WriteEndObject();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static List<int[]> ReadInputs(JsonFields body, ModelService service)
    {
        if (body.Get("input") is not { } input)
            throw ApiException.BadField("input", "is required");
        var result = new List<int[]>();
        if (input.ValueKind == JsonValueKind.String)
        {
            result.Add(Tokenize(input.GetString()!, "input", service));
            return result;
        }
        if (input.ValueKind != JsonValueKind.Array || input.GetArrayLength() == 0)
            throw ApiException.BadField("input", "expected a string, an array of strings, or token ids (non-empty)");
        if (input.GetArrayLength() > MaxInputs)
            throw ApiException.BadField("input", $"at most {MaxInputs} inputs per request");
        if (input[0].ValueKind == JsonValueKind.Number)
        {
            result.Add(ReadTokens(input, "input", service));
            return result;
        }
        int i = 0;
        foreach (var item in input.EnumerateArray())
        {
            string path = $"input[{i++}]";
            result.Add(item.ValueKind switch
            {
                JsonValueKind.String => Tokenize(item.GetString()!, path, service),
                JsonValueKind.Array => ReadTokens(item, path, service),
                _ => throw ApiException.BadField(path, $"expected a string or an array of token ids, got {JsonFields.Describe(item)}"),
            });
        }
        return result;
    }

    private static int[] Tokenize(string text, string path, ModelService service)
    {
        if (text.Length == 0)
            throw ApiException.BadField(path, "must not be empty");
        return service.Embedder.Tokenize(text);
    }

    private static int[] ReadTokens(JsonElement array, string path, ModelService service)
    {
        var tokens = new int[array.GetArrayLength()];
        if (tokens.Length == 0)
            throw ApiException.BadField(path, "must not be empty");
        int vocab = service.Model.Model.VocabSize;
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int id) || (uint)id >= (uint)vocab)
                throw ApiException.BadField($"{path}[{i}]", $"expected a token id in 0..{vocab - 1}");
            tokens[i++] = id;
        }
        return tokens;
    }
}
