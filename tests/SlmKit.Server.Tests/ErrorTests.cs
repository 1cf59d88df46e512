using System.Net;
using System.Text.Json;

namespace SlmKit.Server.Tests;

/// <summary>Bad input gets OpenAI-format 4xx errors that name the field, never a 500.</summary>
public sealed class ErrorTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly TestServer _server = fixture.Server;

    private static async Task<JsonElement> ErrorOf(HttpResponseMessage response, HttpStatusCode expected)
    {
        Assert.Equal(expected, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = document.RootElement.GetProperty("error").Clone();
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("param", out _));
        Assert.True(error.TryGetProperty("code", out _));
        return error;
    }

    [Theory]
    [InlineData("/v1/chat/completions", "{\"messages\": [", "body")]
    [InlineData("/v1/chat/completions", "[1, 2]", "body")]
    [InlineData("/v1/chat/completions", "{}", "messages")]
    [InlineData("/v1/chat/completions", "{\"messages\": []}", "messages")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", "messages[0].role")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "messages[0].content")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", "messages[0].content[0].type")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": \"hot\"}", "temperature")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": 9}", "temperature")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 0}", "max_tokens")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_p\": 0}", "top_p")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stop\": [1]}", "stop[0]")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": 2}", "n")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_logprobs\": 3}", "top_logprobs")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"response_format\": {\"type\": \"yaml\"}}", "response_format.type")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"x\", \"schema\": {\"type\": \"banana\"}}}}", "response_format.json_schema.schema")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{\"type\": \"function\", \"function\": {}}]}", "tools[0].function.name")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tool_choice\": \"required\"}", "tool_choice")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"a\"}}], \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"b\"}}}", "tool_choice.function.name")]
    [InlineData("/v1/completions", "{}", "prompt")]
    [InlineData("/v1/completions", "{\"prompt\": 42}", "prompt")]
    [InlineData("/v1/completions", "{\"prompt\": \"a\", \"seed\": 1.5}", "seed")]
    [InlineData("/v1/embeddings", "{}", "input")]
    [InlineData("/v1/embeddings", "{\"input\": [true]}", "input[0]")]
    [InlineData("/v1/embeddings", "{\"input\": [[999999]]}", "input[0][0]")]
    [InlineData("/v1/embeddings", "{\"input\": \"a\", \"encoding_format\": \"hex\"}", "encoding_format")]
    public async Task Bad_requests_get_400_naming_the_field(string path, string body, string param)
    {
        var error = await ErrorOf(await _server.PostJsonAsync(path, body), HttpStatusCode.BadRequest);
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_is_a_400()
    {
        string text = string.Concat(Enumerable.Repeat("Once upon a time there was a cat. ", 400));
        var error = await ErrorOf(await _server.PostJsonAsync("/v1/completions", JsonSerializer.Serialize(new { prompt = text })), HttpStatusCode.BadRequest);
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Unknown_paths_are_404_in_the_same_format() =>
        await ErrorOf(await _server.Http.GetAsync("/v1/nothing"), HttpStatusCode.NotFound);

    [Fact]
    public async Task Cors_is_off_by_default()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/health");
        request.Headers.Add("Origin", "http://example.test");
        var response = await _server.Http.SendAsync(request);
        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Api_key_is_required_when_set_and_cors_follows_the_option()
    {
        await using var server = await TestServer.StartAsync(new SlmServerOptions { ApiKey = "sekret", CorsOrigin = "http://app.test" });
        using var anonymous = new HttpClient { BaseAddress = server.Server.Address };
        var missing = await ErrorOf(await anonymous.GetAsync("/v1/models"), HttpStatusCode.Unauthorized);
        Assert.Equal("invalid_api_key", missing.GetProperty("code").GetString());

        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        wrong.Headers.Authorization = new("Bearer", "guess");
        await ErrorOf(await anonymous.SendAsync(wrong), HttpStatusCode.Unauthorized);

        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/v1/models")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health")).StatusCode);
        var models = await server.OpenAI().GetOpenAIModelClient().GetModelsAsync();
        Assert.Single(models.Value);

        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/v1/chat/completions");
        preflight.Headers.Add("Origin", "http://app.test");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        var answer = await anonymous.SendAsync(preflight);
        Assert.Equal(HttpStatusCode.NoContent, answer.StatusCode);
        Assert.Equal("http://app.test", answer.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Fact]
    public async Task Bodies_over_the_limit_get_413()
    {
        await using var server = await TestServer.StartAsync(new SlmServerOptions { MaxRequestBodyBytes = 1000 });
        string big = JsonSerializer.Serialize(new { prompt = new string('a', 5000) });
        var error = await ErrorOf(await server.PostJsonAsync("/v1/completions", big), HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal("request_too_large", error.GetProperty("code").GetString());

        // Without a Content-Length (chunked), the limit holds while reading. The server may answer before the client has
        // sent everything, in which case the client can see the connection close instead of the 413: both are refusals.
        var chunked = new StreamContent(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(big)));
        chunked.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        using var fresh = new HttpClient { BaseAddress = server.Server.Address };
        try
        {
            await ErrorOf(await fresh.SendAsync(request), HttpStatusCode.RequestEntityTooLarge);
        }
        catch (HttpRequestException)
        {
        }
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/health")).StatusCode);
    }

    [Fact]
    public async Task A_full_queue_gets_429_with_retry_after()
    {
        // The long-context model keeps the unbounded first request running for the whole test, however slow the machine.
        await using var server = await TestServer.StartAsync(
            new SlmServerOptions { Parallel = 1, MaxQueue = 0, ContextSize = TestModel.LongContext }, TestModel.LongContextPath);
        string body = JsonSerializer.Serialize(new { prompt = "Once", max_tokens = 100000, ignore_eos = true, stream = true });
        // Hold the only slot with a streaming request whose first event has arrived.
        using var first = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        using var holding = await server.Http.SendAsync(first, HttpCompletionOption.ResponseHeadersRead);
        using var stream = await holding.Content.ReadAsStreamAsync();
        await stream.ReadExactlyAsync(new byte[6]);

        var response = await server.PostJsonAsync("/v1/completions", JsonSerializer.Serialize(new { prompt = "Twice", max_tokens = 4 }));
        var error = await ErrorOf(response, HttpStatusCode.TooManyRequests);
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero);
    }
}
