using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;
using ChatResponseFormat = OpenAI.Chat.ChatResponseFormat;
using OpenAiChatMessage = OpenAI.Chat.ChatMessage;

namespace SlmKit.Server.Tests;

/// <summary>The official OpenAI .NET client and Microsoft.Extensions.AI.OpenAI against the server on loopback.</summary>
public sealed class OpenAiClientTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly TestServer _server = fixture.Server;

    private ChatClient Chat => _server.OpenAI().GetChatClient(_server.Server.ModelId);

    private static ChatCompletionOptions Greedy(int maxTokens) => new() { Temperature = 0, MaxOutputTokenCount = maxTokens };

    [Fact]
    public async Task Chat_completes_and_reports_usage()
    {
        ChatCompletion completion = await Chat.CompleteChatAsync(
            [new SystemChatMessage("You tell short stories."), new UserChatMessage("Tell me about a cat.")], Greedy(24));

        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.NotEmpty(completion.Content[0].Text);
        Assert.Equal(24, completion.Usage.OutputTokenCount);
        Assert.True(completion.Usage.InputTokenCount > 5);
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(_server.Server.ModelId, completion.Model);
    }

    [Fact]
    public async Task Streaming_chat_yields_the_same_text_as_non_streaming()
    {
        OpenAiChatMessage[] messages = [new UserChatMessage("Once upon a time")];
        ChatCompletion whole = await Chat.CompleteChatAsync(messages, Greedy(30));

        var streamed = new StringBuilder();
        int updates = 0;
        ChatFinishReason? finish = null;
        await foreach (var update in Chat.CompleteChatStreamingAsync(messages, Greedy(30)))
        {
            foreach (var part in update.ContentUpdate)
                streamed.Append(part.Text);
            updates++;
            finish ??= update.FinishReason;
        }

        Assert.Equal(whole.Content[0].Text, streamed.ToString());
        Assert.True(updates > 5, $"expected token-by-token updates, got {updates}");
        Assert.Equal(ChatFinishReason.Length, finish);
    }

    [Fact]
    public async Task Logprobs_cover_every_generated_token()
    {
        var options = Greedy(12);
        options.IncludeLogProbabilities = true;
        options.TopLogProbabilityCount = 3;
        ChatCompletion completion = await Chat.CompleteChatAsync([new UserChatMessage("Hello")], options);

        Assert.Equal(12, completion.ContentTokenLogProbabilities.Count);
        foreach (var token in completion.ContentTokenLogProbabilities)
        {
            Assert.True(token.LogProbability <= 0);
            Assert.Equal(3, token.TopLogProbabilities.Count);
            // Greedy: the chosen token is the most likely one.
            Assert.Equal(token.TopLogProbabilities[0].LogProbability, token.LogProbability, 4);
        }
    }

    // The schema types this field only as "integer", and constrained decoding bounds an integer to 16 digits (as llama.cpp's
    // json-schema-to-grammar does), so the value always fits a long but not necessarily an int: a weak model may write a big one.
    public sealed record Score(long Value, bool Passed);

    // The schema types this field only as "integer", and constrained decoding bounds an integer to 16 digits (as llama.cpp's
    // json-schema-to-grammar does), so the value always fits a long but not necessarily an int: a weak model may write a big one.
    public sealed record Pet(string Name, long Age, string Kind, bool Friendly);

    [Fact]
    public async Task Json_schema_output_deserializes()
    {
        var schema = BinaryData.FromString("""
            {"type":"object","properties":{
              "name":{"type":"string","maxLength":12},
              "age":{"type":"integer"},
              "kind":{"type":"string","enum":["cat","dog","bird"]},
              "friendly":{"type":"boolean"}},
             "required":["name","age","kind","friendly"],"additionalProperties":false}
            """);
        foreach (float temperature in new[] { 0f, 1f })
        {
            var options = new ChatCompletionOptions
            {
                Temperature = temperature,
                Seed = 7,
                MaxOutputTokenCount = 120,
                ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("pet", schema, jsonSchemaIsStrict: true),
            };
            ChatCompletion completion = await Chat.CompleteChatAsync([new UserChatMessage("Describe a pet as JSON.")], options);

            Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
            var pet = JsonSerializer.Deserialize<Pet>(completion.Content[0].Text, new JsonSerializerOptions(JsonSerializerDefaults.Web));
            Assert.NotNull(pet);
            Assert.Contains(pet.Kind, new[] { "cat", "dog", "bird" });
            Assert.True(pet.Name.Length <= 12);
        }
    }

    [Fact]
    public async Task Json_object_output_parses()
    {
        var options = Greedy(200);
        options.ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat();
        ChatCompletion completion = await Chat.CompleteChatAsync([new UserChatMessage("Answer in JSON.")], options);

        using var document = JsonDocument.Parse(completion.Content[0].Text);
        Assert.Equal(JsonValueKind.Object, document.RootElement.ValueKind);
    }

    private static ChatTool WeatherTool() => ChatTool.CreateFunctionTool("get_weather", "Current weather in a city",
        BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string","maxLength":16},"days":{"type":"integer"}},"required":["city"]}"""));

    [Fact]
    public async Task Forced_tool_call_returns_tool_calls_with_valid_arguments()
    {
        var options = Greedy(80);
        options.Tools.Add(WeatherTool());
        options.Tools.Add(ChatTool.CreateFunctionTool("get_time", "The time", BinaryData.FromString("""{"type":"object","properties":{}}""")));
        options.ToolChoice = ChatToolChoice.CreateFunctionChoice("get_weather");
        ChatCompletion completion = await Chat.CompleteChatAsync([new UserChatMessage("Weather in Paris?")], options);

        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.StartsWith("call_", call.Id);
        using var arguments = JsonDocument.Parse(call.FunctionArguments);
        Assert.Equal(JsonValueKind.String, arguments.RootElement.GetProperty("city").ValueKind);

        // The conversation continues with the tool result.
        options.ToolChoice = ChatToolChoice.CreateNoneChoice();
        ChatCompletion next = await Chat.CompleteChatAsync(
            [new UserChatMessage("Weather in Paris?"), new AssistantChatMessage(completion.ToolCalls), new ToolChatMessage(call.Id, "sunny")], options);
        Assert.NotNull(next.Content[0].Text);
    }

    [Fact]
    public async Task Required_tool_choice_streams_a_tool_call()
    {
        var options = Greedy(80);
        options.Tools.Add(WeatherTool());
        options.ToolChoice = ChatToolChoice.CreateRequiredChoice();
        string? name = null;
        var arguments = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in Chat.CompleteChatStreamingAsync([new UserChatMessage("Weather?")], options))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                name ??= call.FunctionName;
                arguments.Append(call.FunctionArgumentsUpdate?.ToString());
            }
            finish ??= update.FinishReason;
        }
        Assert.Equal("get_weather", name);
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        using var parsed = JsonDocument.Parse(arguments.ToString());
        Assert.True(parsed.RootElement.TryGetProperty("city", out _));
    }

    [Fact]
    public async Task Embeddings_come_back_as_unit_vectors_through_base64()
    {
        EmbeddingClient client = _server.OpenAI().GetEmbeddingClient(_server.Server.ModelId);
        var result = await client.GenerateEmbeddingsAsync(["a happy cat", "a happy cat", "the sea"]);

        Assert.Equal(3, result.Value.Count);
        var vectors = result.Value.Select(e => e.ToFloats().ToArray()).ToArray();
        Assert.Equal(_server.Model.Info.HiddenSize, vectors[0].Length);
        Assert.Equal(1.0, Math.Sqrt(vectors[0].Sum(v => (double)v * v)), 3);
        Assert.Equal(vectors[0], vectors[1]);
        Assert.NotEqual(vectors[0], vectors[2]);
    }

    [Fact]
    public async Task Models_lists_the_served_model()
    {
        var models = await _server.OpenAI().GetOpenAIModelClient().GetModelsAsync();
        Assert.Equal(_server.Server.ModelId, Assert.Single(models.Value).Id);
    }

    [Fact]
    public async Task Extensions_AI_chat_client_over_OpenAI_works_streaming_and_not()
    {
        IChatClient client = Chat.AsIChatClient();
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 20 };
        ChatResponse response = await client.GetResponseAsync([new AiChatMessage(ChatRole.User, "Tell me a story")], options);
        Assert.NotEmpty(response.Text);

        var streamed = new StringBuilder();
        await foreach (var update in client.GetStreamingResponseAsync([new AiChatMessage(ChatRole.User, "Tell me a story")], options))
            streamed.Append(update.Text);
        Assert.Equal(response.Text, streamed.ToString());
    }

    [Fact]
    public async Task Extensions_AI_structured_output_and_tools()
    {
        IChatClient client = Chat.AsIChatClient();
        var format = Microsoft.Extensions.AI.ChatResponseFormat.ForJsonSchema(AIJsonUtilities.CreateJsonSchema(typeof(Score)), "score");
        var structured = await client.GetResponseAsync("Rate it.", new ChatOptions { Temperature = 0, MaxOutputTokens = 100, ResponseFormat = format });
        var score = JsonSerializer.Deserialize<Score>(structured.Text, new JsonSerializerOptions(JsonSerializerDefaults.Web));
        Assert.NotNull(score);

        var tool = AIFunctionFactory.Create((string city) => "sunny", "get_weather", "Weather in a city");
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 60, Tools = [tool], ToolMode = ChatToolMode.RequireSpecific("get_weather") };
        ChatResponse response = await client.GetResponseAsync("Weather in Oslo?", options);
        var call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Single();
        Assert.Equal("get_weather", call.Name);
        Assert.True(call.Arguments!.ContainsKey("city"));
    }

    [Fact]
    public async Task Extensions_AI_embedding_generator_over_OpenAI()
    {
        IEmbeddingGenerator<string, Embedding<float>> generator = _server.OpenAI().GetEmbeddingClient(_server.Server.ModelId).AsIEmbeddingGenerator();
        var embeddings = await generator.GenerateAsync(["one", "two"]);
        Assert.Equal(2, embeddings.Count);
        Assert.Equal(_server.Model.Info.HiddenSize, embeddings[0].Vector.Length);
    }
}
