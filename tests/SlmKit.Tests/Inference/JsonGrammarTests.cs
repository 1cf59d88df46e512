using System.Globalization;
using System.Text;
using System.Text.Json;
using SlmKit.Inference;
using SlmKit.Tests.Models;
using SlmKit.Tokenizers;

namespace SlmKit.Tests.Inference;

/// <summary>The JSON constraint accepts exactly JSON (matching the schema) and every sampled output parses.</summary>
public sealed class JsonGrammarTests
{
    private static readonly Lazy<Tokenizer> s_tokenizer = new(() =>
    {
        string path = Path.Combine(Path.GetTempPath(), $"slmkit-json-grammar-{Environment.ProcessId}.gguf");
        var spec = new RandomLlamaSpec("json", Dim: 32, Layers: 1, Heads: 2, KvHeads: 2, HeadDim: 16, Ffn: 64, Vocab: 700, Tied: true,
            RopeTheta: 10000f, Type: Tensors.GgmlType.F32, Seed: 3);
        new RandomLlama(spec).WriteGguf(path);
        return SlmModel.LoadTokenizerFor(path);
    });

    private static JsonConstraint Constraint(string? schema = null)
    {
        var grammar = schema is null
            ? JsonGrammar.ForAnyObject(s_tokenizer.Value)
            : JsonGrammar.ForSchema(s_tokenizer.Value, JsonDocument.Parse(schema).RootElement);
        return (JsonConstraint)grammar.CreateConstraint();
    }

    [Theory]
    [InlineData("{}", true)]
    [InlineData("{\"a\":1}", true)]
    [InlineData("{\"a\": [1, -2.5e3, true, null, \"x\\n\\u00e9\"], \"b\": {\"c\": {}}}", true)]
    [InlineData("[1]", false)]
    [InlineData("{\"a\":01}", false)]
    [InlineData("{\"a\":1234567890123456.1234567890123456}", false)] // 34 characters: past the 24 a number may take
    [InlineData("{\"a\":0.1234567890123456}", true)]
    [InlineData("{\"a\":0.12345678901234567}", false)] // 17 fraction digits
    [InlineData("{\"a\" 1}", false)]
    [InlineData("{a:1}", false)]
    [InlineData("{\"a\":1,}", false)]
    [InlineData("{\"a\":tru}", false)]
    [InlineData("{\"a\":\"\\q\"}", false)]
    public void Any_object_accepts_json_objects_only(string text, bool valid)
    {
        var constraint = Constraint();
        bool accepted = constraint.TryFeed(Encoding.UTF8.GetBytes(text)) && constraint.IsComplete;
        Assert.Equal(valid, accepted);
    }

    [Theory]
    [InlineData(new byte[] { 0xC3, 0xA9 }, true)]               // é
    [InlineData(new byte[] { 0xF0, 0x9F, 0x98, 0x80 }, true)]   // a four-byte character
    [InlineData(new byte[] { 0x80 }, false)]                    // a continuation byte with no lead
    [InlineData(new byte[] { 0xC3 }, false)]                    // a lead byte whose continuation never comes
    [InlineData(new byte[] { 0xE2, 0x82, 0x41 }, false)]        // cut short by an ASCII byte
    [InlineData(new byte[] { 0xC0, 0x80 }, false)]              // never valid in UTF-8
    [InlineData(new byte[] { 0xFF }, false)]
    [InlineData(new byte[] { 0xE0, 0xA0, 0x80 }, true)]         // U+0800, the first three-byte character
    [InlineData(new byte[] { 0xE0, 0x9F, 0xBF }, false)]        // U+07FF spelt in three bytes (overlong)
    [InlineData(new byte[] { 0xED, 0x9F, 0xBF }, true)]         // U+D7FF, just below the surrogates
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 }, false)]        // U+D800, a surrogate
    [InlineData(new byte[] { 0xEF, 0xBF, 0xBD }, true)]         // U+FFFD
    [InlineData(new byte[] { 0xF0, 0x90, 0x80, 0x80 }, true)]   // U+10000, the first four-byte character
    [InlineData(new byte[] { 0xF0, 0x8F, 0xBF, 0xBF }, false)]  // U+FFFF spelt in four bytes (overlong)
    [InlineData(new byte[] { 0xF4, 0x8F, 0xBF, 0xBF }, true)]   // U+10FFFF, the last character
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 }, false)]  // past U+10FFFF
    public void Strings_must_be_valid_utf8(byte[] content, bool valid)
    {
        var constraint = Constraint();
        byte[] text = [.. "{\"a\":\""u8, .. content, .. "\"}"u8];
        bool accepted = constraint.TryFeed(text) && constraint.IsComplete;
        Assert.Equal(valid, accepted);
    }

    private const string PetSchema = """
        {"type":"object","properties":{
          "name":{"type":"string","maxLength":5},
          "age":{"type":"integer"},
          "tags":{"type":"array","items":{"enum":["a","bb"]},"maxItems":2},
          "note":{"type":["string","null"]}},
         "required":["name","age"]}
        """;

    [Theory]
    [InlineData("{\"name\":\"Rex\",\"age\":3}", true)]
    [InlineData("{\"name\":\"Rex\",\"age\":3,\"tags\":[\"bb\",\"a\"],\"note\":null}", true)]
    [InlineData("{\"name\":\"Rex\",\"age\":3,\"note\":\"hi\"}", true)]
    [InlineData("{\"age\":3,\"name\":\"Rex\"}", false)]
    [InlineData("{\"name\":\"Rex\"}", false)]
    [InlineData("{\"name\":\"Rexxxx\",\"age\":3}", false)]
    [InlineData("{\"name\":\"Rex\",\"age\":3.5}", false)]
    [InlineData("{\"name\":\"Rex\",\"age\":3,\"tags\":[\"c\"]}", false)]
    [InlineData("{\"name\":\"Rex\",\"age\":3,\"tags\":[\"a\",\"a\",\"a\"]}", false)]
    [InlineData("{\"name\":\"Rex\",\"age\":3,\"other\":1}", false)]
    [InlineData("{\"name\":\"Rex\",\"age\":-9999999999999999}", true)] // 16 digits: llama.cpp's bound, within a long
    [InlineData("{\"name\":\"Rex\",\"age\":12345678901234567}", false)] // 17 digits
    public void Schema_is_enforced(string text, bool valid)
    {
        var constraint = Constraint(PetSchema);
        bool accepted = constraint.TryFeed(Encoding.UTF8.GetBytes(text)) && constraint.IsComplete;
        Assert.Equal(valid, accepted);
    }

    private const string MinimumsSchema = """
        {"type":"object","properties":{
          "code":{"type":"string","minLength":4,"maxLength":6},
          "points":{"type":"array","items":{"type":"integer"},"minItems":3},
          "words":{"type":"array","items":{"type":"string","minLength":2},"minItems":1,"maxItems":2}},
         "required":["code","points","words"]}
        """;

    [Theory]
    [InlineData("{\"code\":\"abcd\",\"points\":[1,2,3],\"words\":[\"xy\"]}", true)]
    [InlineData("{\"code\":\"abcdef\",\"points\":[1,2,3,4],\"words\":[\"xy\",\"zzz\"]}", true)]
    [InlineData("{\"code\":\"a\\n\\u00e9d\",\"points\":[1,2,3],\"words\":[\"éé\"]}", true)] // an escape is one character
    [InlineData("{\"code\":\"abc\",\"points\":[1,2,3],\"words\":[\"xy\"]}", false)] // 3 < minLength 4
    [InlineData("{\"code\":\"abcdefg\",\"points\":[1,2,3],\"words\":[\"xy\"]}", false)]
    [InlineData("{\"code\":\"abcd\",\"points\":[1,2],\"words\":[\"xy\"]}", false)] // 2 < minItems 3
    [InlineData("{\"code\":\"abcd\",\"points\":[],\"words\":[\"xy\"]}", false)]
    [InlineData("{\"code\":\"abcd\",\"points\":[1,2,3],\"words\":[]}", false)]
    [InlineData("{\"code\":\"abcd\",\"points\":[1,2,3],\"words\":[\"x\"]}", false)] // an item's own minLength
    public void Minimum_lengths_and_item_counts_are_enforced(string text, bool valid)
    {
        var constraint = Constraint(MinimumsSchema);
        bool accepted = constraint.TryFeed(Encoding.UTF8.GetBytes(text)) && constraint.IsComplete;
        Assert.Equal(valid, accepted);
    }

    [Theory]
    [InlineData("""{"type":"string","minLength":3,"maxLength":2}""", "schema.minLength")]
    [InlineData("""{"type":"object","properties":{"a":{"type":"array","minItems":-1}}}""", "schema.properties.a.minItems")]
    [InlineData("""{"type":"object","properties":{"a":{"type":"string","minLength":"4"}}}""", "schema.properties.a.minLength")]
    public void Unsatisfiable_or_malformed_minimums_are_refused_with_the_path(string schema, string path)
    {
        var e = Assert.Throws<SlmKitException>(() => Constraint(schema));
        Assert.Contains(path, e.Message);
    }

    [Theory]
    [InlineData(null, 0)]
    [InlineData(PetSchema, 1)]
    [InlineData(null, 2)]
    [InlineData(PetSchema, 3)]
    [InlineData(MinimumsSchema, 4)]
    [InlineData(MinimumsSchema, 5)]
    public void Random_sampling_under_the_mask_always_parses_within_the_budget(string? schema, int seed)
    {
        // Uniformly random logits are the worst case: nothing pushes toward closing except the budget.
        var tokenizer = s_tokenizer.Value;
        var random = new Random(seed);
        // The shortest text MinimumsSchema accepts is 47 bytes; one byte per token must still fit.
        foreach (int budget in schema == MinimumsSchema ? new[] { 64, 120 } : new[] { 40, 120 })
        {
            var constraint = Constraint(schema);
            var decoder = tokenizer.CreateStreamingDecoder(skipSpecial: true);
            var text = new StringBuilder();
            var logits = new float[tokenizer.VocabSize];
            for (int used = 0; used < budget && !constraint.IsComplete; used++)
            {
                for (int i = 0; i < logits.Length; i++)
                    logits[i] = (float)random.NextDouble() * 4;
                constraint.Mask(logits, budget - used);
                var candidates = Enumerable.Range(0, logits.Length).Where(i => !float.IsNegativeInfinity(logits[i])).ToArray();
                Assert.NotEmpty(candidates);
                int token = candidates[random.Next(candidates.Length)];
                if (tokenizer.EndOfGenerationIds.Contains(token))
                    break;
                constraint.Accept(token);
                text.Append(decoder.Append(token));
            }
            text.Append(decoder.Flush());
            Assert.True(constraint.IsComplete, $"budget {budget}: not complete: {text}");
            using var document = JsonDocument.Parse(text.ToString());
            Assert.Equal(JsonValueKind.Object, document.RootElement.ValueKind);
            if (schema == MinimumsSchema)
            {
                var root = document.RootElement;
                int code = new StringInfo(root.GetProperty("code").GetString()!).LengthInTextElements;
                Assert.True(code is >= 4 and <= 6, text.ToString());
                Assert.True(root.GetProperty("points").GetArrayLength() >= 3, text.ToString());
                var words = root.GetProperty("words").EnumerateArray().ToArray();
                Assert.InRange(words.Length, 1, 2);
                Assert.All(words, w => Assert.True(w.GetString()!.Length >= 2, text.ToString()));
            }
        }
    }

    [Fact]
    public void Unsupported_schemas_are_refused_with_the_path()
    {
        var e = Assert.Throws<SlmKitException>(() => Constraint("""{"type":"object","properties":{"a":{"type":"banana"}}}"""));
        Assert.Contains("schema.properties.a.type", e.Message);
        e = Assert.Throws<SlmKitException>(() => Constraint("""{"$ref":"http://example.com/schema"}"""));
        Assert.Contains("$ref", e.Message);
    }

    [Fact]
    public void Tool_calls_are_parsed_from_the_formats_models_write()
    {
        string[] names = ["get_weather"];
        var (content, calls) = ToolCallParser.Parse("Sure.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>", names);
        Assert.Equal("Sure.", content);
        Assert.Equal(new ParsedToolCall("get_weather", "{\"city\":\"Oslo\"}"), Assert.Single(calls));

        (content, calls) = ToolCallParser.Parse("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}", names);
        Assert.Equal("", content);
        Assert.Equal("{\"city\":\"Rome\"}", Assert.Single(calls).ArgumentsJson);

        (content, calls) = ToolCallParser.Parse("{\"name\": \"launch_rockets\", \"arguments\": {}}", names);
        Assert.Empty(calls);
        Assert.Contains("launch_rockets", content);
    }

    [Fact]
    public void Fallback_chat_format_is_plain_text_with_a_stop_string()
    {
        var prompt = new ChatPrompt(s_tokenizer.Value);
        Assert.False(prompt.UsesModelTemplate);
        string text = prompt.Render([new ChatMessage("system", "Be brief."), new ChatMessage("user", "Hi"), new ChatMessage("assistant", "Hello"), new ChatMessage("user", "Bye")]);
        Assert.Equal("Be brief.\n\nUser: Hi\nAssistant: Hello\nUser: Bye\nAssistant:", text);
        Assert.Equal(["\nUser:"], prompt.StopStrings);
    }
}
