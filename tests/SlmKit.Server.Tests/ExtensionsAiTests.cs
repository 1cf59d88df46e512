using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using SlmKit.Extensions.AI;
using SlmKit.Inference;

namespace SlmKit.Server.Tests;

/// <summary>The in-process Microsoft.Extensions.AI clients, with no server.</summary>
public sealed class ExtensionsAiTests : IDisposable
{
    private readonly SlmModel _model = SlmModel.Load(TestModel.Path, new SlmModelOptions { Threads = 1 });
    private readonly SlmChatClient _chat;

    public ExtensionsAiTests() => _chat = new SlmChatClient(_model, new SchedulerOptions { Parallel = 2, ContextSize = _model.ContextSize });

    public void Dispose()
    {
        _chat.Dispose();
        _model.Dispose();
    }

    [Fact]
    public async Task Chat_client_streams_what_it_returns_and_reports_usage()
    {
        IChatClient client = _chat;
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 20 };
        var response = await client.GetResponseAsync("Tell me a story", options);
        Assert.NotEmpty(response.Text);
        Assert.Equal(20, response.Usage!.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);

        var streamed = new StringBuilder();
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync("Tell me a story", options))
        {
            streamed.Append(update.Text);
            updates.Add(update);
        }
        Assert.Equal(response.Text, streamed.ToString());
        Assert.True(updates.Count > 3);
        Assert.NotNull(client.GetService<ChatClientMetadata>());
    }

    [Fact]
    public async Task Seed_and_stop_sequences_are_honoured()
    {
        IChatClient client = _chat;
        var options = new ChatOptions { Temperature = 1, Seed = 123, MaxOutputTokens = 30 };
        var first = await client.GetResponseAsync("Once upon a time", options);
        var second = await client.GetResponseAsync("Once upon a time", options);
        Assert.Equal(first.Text, second.Text);

        string text = first.Text;
        string stop = text.Trim().Split(' ')[0];
        Assume(stop.Length > 0);
        var stopped = await client.GetResponseAsync("Once upon a time", new ChatOptions { Temperature = 1, Seed = 123, MaxOutputTokens = 30, StopSequences = [stop] });
        Assert.DoesNotContain(stop, stopped.Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
    }

    private static void Assume(bool condition)
    {
        if (!condition)
            Assert.Skip("the generated text gives no stop word to test with");
    }

    // The schema types this field only as "integer", and constrained decoding bounds an integer to 16 digits (as llama.cpp's
    // json-schema-to-grammar does), so the value always fits a long but not necessarily an int: a weak model may write a big one.
    public sealed record Rating(long Stars, bool Recommended, string Label);

    [Fact]
    public async Task Response_format_schema_gives_json_that_deserializes()
    {
        var schema = JsonDocument.Parse("""{"type":"object","properties":{"stars":{"type":"integer"},"recommended":{"type":"boolean"},"label":{"type":"string","maxLength":10}},"required":["stars","recommended","label"]}""").RootElement;
        var response = await _chat.GetResponseAsync("Rate the story.", new ChatOptions
        {
            Temperature = 0.7f,
            Seed = 5,
            MaxOutputTokens = 60,
            ResponseFormat = ChatResponseFormat.ForJsonSchema(schema, "rating"),
        });
        var rating = JsonSerializer.Deserialize<Rating>(response.Text, new JsonSerializerOptions(JsonSerializerDefaults.Web));
        Assert.NotNull(rating);
        Assert.True(rating.Label.Length <= 10);
    }

    [Fact]
    public async Task Required_tool_mode_returns_a_function_call_and_takes_the_result_back()
    {
        var tool = AIFunctionFactory.Create((string city, int days) => $"sunny in {city} for {days} days", "forecast", "Weather forecast");
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 60, Tools = [tool], ToolMode = ChatToolMode.RequireAny };
        var response = await _chat.GetResponseAsync("Weather in Rome?", options);

        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
        var call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Single();
        Assert.Equal("forecast", call.Name);
        Assert.True(call.Arguments!.ContainsKey("city"));
        Assert.True(call.Arguments.ContainsKey("days"));

        List<Microsoft.Extensions.AI.ChatMessage> conversation =
        [
            new(ChatRole.User, "Weather in Rome?"),
            .. response.Messages,
            new(ChatRole.Tool, [new FunctionResultContent(call.CallId, "sunny")]),
        ];
        var answer = await _chat.GetResponseAsync(conversation, new ChatOptions { Temperature = 0, MaxOutputTokens = 10, Tools = [tool], ToolMode = ChatToolMode.None });
        Assert.Equal(ChatFinishReason.Length, answer.FinishReason);
    }

    [Fact]
    public async Task Embedding_generator_returns_unit_vectors()
    {
        using IEmbeddingGenerator<string, Embedding<float>> generator = new SlmEmbeddingGenerator(_model);
        var embeddings = await generator.GenerateAsync(["the cat", "the cat", "a boat"]);
        Assert.Equal(3, embeddings.Count);
        Assert.Equal(_model.Info.HiddenSize, embeddings[0].Vector.Length);
        Assert.Equal(embeddings[0].Vector.ToArray(), embeddings[1].Vector.ToArray());
        Assert.Equal(1.0, Math.Sqrt(embeddings[2].Vector.ToArray().Sum(v => (double)v * v)), 3);
        Assert.True(embeddings.Usage!.InputTokenCount > 0);
    }
}
