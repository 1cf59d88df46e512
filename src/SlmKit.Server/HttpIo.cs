using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace SlmKit.Server;

/// <summary>Reading request bodies within the size limit and writing JSON and server-sent events.</summary>
internal static class HttpIo
{
    private static readonly byte[] s_dataPrefix = "data: "u8.ToArray();
    private static readonly byte[] s_eventEnd = "\n\n"u8.ToArray();

    // API responses are JSON, never HTML: keep quotes and non-ASCII text readable.
    private static readonly JsonWriterOptions s_writerOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Reads and parses the body as JSON; 413 past <paramref name="limit"/> bytes, 400 when it is not JSON.</summary>
    public static async Task<JsonDocument> ReadJsonAsync(HttpContext context, long limit)
    {
        var request = context.Request;
        if (request.ContentLength > limit)
            throw TooLarge(limit);
        var buffer = new ArrayBufferWriter<byte>((int)Math.Min(request.ContentLength ?? 4096, limit) + 1);
        var body = request.Body;
        while (true)
        {
            var memory = buffer.GetMemory(8192);
            int read = await body.ReadAsync(memory, context.RequestAborted).ConfigureAwait(false);
            if (read == 0)
                break;
            buffer.Advance(read);
            if (buffer.WrittenCount > limit)
                throw TooLarge(limit);
        }
        if (buffer.WrittenCount == 0)
            throw ApiException.BadRequest("the request body is empty; expected a JSON object", "body", "invalid_json");
        try
        {
            return JsonDocument.Parse(buffer.WrittenMemory, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            string where = e.LineNumber is long line ? $" at line {line + 1}, position {e.BytePositionInLine + 1}" : "";
            throw ApiException.BadRequest($"the request body is not valid JSON{where}", "body", "invalid_json");
        }
    }

    public static ApiException TooLarge(long limit) =>
        new(413, $"the request body is larger than {limit} bytes", "invalid_request_error", "body", "request_too_large");

    public static Task WriteJsonAsync(HttpContext context, int status, Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, s_writerOptions))
            write(writer);
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = buffer.WrittenCount;
        return context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).AsTask();
    }

    public static Task WriteErrorAsync(HttpContext context, ApiException error)
    {
        if (error.RetryAfterSeconds is int seconds)
            context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return WriteJsonAsync(context, error.Status, w =>
        {
            w.WriteStartObject();
            w.WriteStartObject("error");
            w.WriteString("message", error.Message);
            w.WriteString("type", error.Type);
            if (error.Param is null)
                w.WriteNull("param");
            else
                w.WriteString("param", error.Param);
            if (error.Code is null)
                w.WriteNull("code");
            else
                w.WriteString("code", error.Code);
            w.WriteEndObject();
            w.WriteEndObject();
        });
    }

    public static void StartEventStream(HttpContext context)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["X-Accel-Buffering"] = "no";
    }

    /// <summary>Writes one <c>data: {json}</c> event and flushes it to the client.</summary>
    public static async Task WriteEventAsync(HttpContext context, Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        buffer.Write(s_dataPrefix);
        using (var writer = new Utf8JsonWriter(buffer, s_writerOptions))
            write(writer);
        buffer.Write(s_eventEnd);
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).ConfigureAwait(false);
        await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    public static async Task WriteDoneAsync(HttpContext context)
    {
        await context.Response.Body.WriteAsync(Encoding.ASCII.GetBytes("data: [DONE]\n\n"), context.RequestAborted).ConfigureAwait(false);
        await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
