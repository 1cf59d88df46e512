using System.Text;
using System.Text.Json;
using SlmKit.Tokenizers;

namespace SlmKit.Tests.Tokenizers;

/// <summary>
/// Hugging Face tokenizer.json folders against ids produced by Hugging Face (swift-transformers' test resources).
/// WordPiece (BERT) tokenizers are out of scope and only checked to be refused clearly; Unigram (T5) has its own tests
/// (<see cref="UnigramTokenizerTests"/>).
/// </summary>
public sealed class HuggingFaceTokenizerTests
{
    public static TheoryData<string, string> SwiftTransformersModels => new()
    {
        { "distilgpt2", "gpt2" },
        { "coreml-projects/Llama-2-7b-chat-coreml", "llama2" },
        { "tiiuae/falcon-7b", "falcon" },
    };

    [Theory]
    [MemberData(nameof(SwiftTransformersModels))]
    public void Encode_MatchesHuggingFace_TokenizerTests(string model, string folder)
    {
        Tokenizer tokenizer = TokenizerTestData.HuggingFace(folder);
        string path = SharedAssets.Require("assets/expected/tokenizers/swift-transformers/tokenizer_tests.json");
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var failures = new List<string>();
        int count = 0;
        foreach (JsonElement test in doc.RootElement.GetProperty(model).EnumerateArray())
        {
            string input = test.GetProperty("input").GetString()!;
            int[] expected = test.GetProperty("encoded").GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            int[] actual = tokenizer.Encode(input);
            count++;
            if (!actual.SequenceEqual(expected))
                failures.Add($"{LlamaCppVocabTests.Show(input)}: expected [{string.Join(' ', expected)}] got [{string.Join(' ', actual)}]");
            string withoutSpecial = test.GetProperty("decoded_without_special").GetString()!;
            string decoded = tokenizer.Decode(expected, skipSpecial: true);
            // Hugging Face's clean_up_tokenization_spaces may tidy " ." and " '" in its decode; ours is lossless.
            if (decoded != withoutSpecial && decoded != input)
                failures.Add($"decode {LlamaCppVocabTests.Show(input)}: expected {LlamaCppVocabTests.Show(withoutSpecial)} got {LlamaCppVocabTests.Show(decoded)}");
        }
        Assert.True(count >= 18);
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    [Theory]
    [InlineData("gpt2_encoded_tokens.json", "gpt2")]
    [InlineData("llama_encoded.json", "llama2")]
    [InlineData("falcon_encoded.json", "falcon")]
    public void Encode_MatchesHuggingFace_LongText(string file, string folder)
    {
        Tokenizer tokenizer = TokenizerTestData.HuggingFace(folder);
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(SharedAssets.Require($"assets/expected/tokenizers/swift-transformers/{file}")));
        string text = doc.RootElement.GetProperty("text").GetString()!;
        int[] expected = doc.RootElement.GetProperty("token_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        int[] actual = tokenizer.Encode(text);
        Assert.Equal(expected, actual);
        string[] pieces = doc.RootElement.GetProperty("bpe_tokens").EnumerateArray().Select(x => x.GetString()!).ToArray();
        int offset = actual.Length - pieces.Length; // bpe_tokens leave out BOS
        Assert.Equal(pieces, actual.Skip(offset).Select(tokenizer.TokenPiece).ToArray());
    }

    [Fact]
    public void Phi2_ReturnN() => Assert.Equal([7783, 299], TokenizerTestData.HuggingFace("phi-2").Encode("return n"));

    [Fact]
    public void Roberta_UsesRobertaProcessing()
    {
        Tokenizer roberta = TokenizerTestData.HuggingFace("roberta-base");
        Assert.Equal(TokenizerKind.ByteLevelBpe, roberta.Kind);
        Assert.Equal([0, 31414, 232, 2], roberta.Encode("Hello world"));
        Assert.Equal([31414, 232], roberta.Encode("Hello world", addSpecial: false));
        // <mask> has lstrip: the space before it is part of the token.
        Assert.Equal([0, 31414, 50264, 2], roberta.Encode("Hello <mask>"));
        Assert.Equal("<s>Hello world</s>", roberta.Decode(roberta.Encode("Hello world")));
    }

    [Fact]
    public void Llama2_SpecialTokensAndDecode()
    {
        Tokenizer llama = TokenizerTestData.HuggingFace("llama2");
        Assert.Equal(TokenizerKind.SentencePieceBpe, llama.Kind);
        Assert.Equal(1, llama.BosId);
        Assert.Equal(2, llama.EosId);
        Assert.True(llama.AddBos);
        Assert.False(llama.AddEos);
        Assert.Contains(2, llama.EndOfGenerationIds);
        Assert.Equal([1, 22172, 3186], llama.Encode("hello world"));
        Assert.Equal("<s> hello world", llama.Decode([1, 22172, 3186]));
        Assert.Equal("hello world", llama.Decode([1, 22172, 3186], skipSpecial: true));
        Assert.Equal("▁hello", llama.TokenPiece(22172));
        Assert.True(llama.IsSpecial(1));
        Assert.False(llama.IsSpecial(22172));
        // parseSpecial: "</s>" becomes EOS; without it, it is plain text.
        Assert.Equal(2, llama.Encode("hi</s>", addSpecial: false)[^1]);
        Assert.DoesNotContain(2, llama.Encode("hi</s>", addSpecial: false, parseSpecial: false));
    }

    [Fact]
    public void Phi3Mini_ChatTemplateAndAddedTokens()
    {
        Tokenizer phi3 = TokenizerTestData.HuggingFace("phi-3-mini");
        Assert.Contains("<|assistant|>", phi3.ChatTemplate);
        Assert.Equal(32011, phi3.VocabSize); // ids in tokenizer.json; the model's embedding has 32064 rows
        int[] ids = phi3.Encode("<|user|>\nHi<|end|>\n<|assistant|>\n", addSpecial: false);
        // rstrip on the markers eats the newline after them.
        Assert.Equal(32010, ids[0]);
        Assert.Contains(32007, ids);
        Assert.Equal(32001, ids[^1]);
        Assert.Contains(32007, phi3.EndOfGenerationIds); // <|end|>
        Assert.Contains(32000, phi3.EndOfGenerationIds); // <|endoftext|>
    }

    [Fact]
    public void AddedTokensTest_ByteFallbackAndUnknown()
    {
        Tokenizer t = TokenizerTestData.HuggingFace("added-tokens-test");
        // tokenizer_config.json's add_bos_token overrides the post-processor, as transformers does.
        Assert.True(t.AddBos);
        // "\n" after a marker: the Prepend normalizer adds "▁", which has no token and no byte tokens -> <unk> (0);
        // "\n" itself falls back to <0x0A> (13).
        Assert.Equal([1, 32010, 0, 13, 32007], t.Encode("<|user|>\n<|end|>"));
    }

    [Fact]
    public void MiniLlama_SplitRegexAndByteLevel()
    {
        Tokenizer t = TokenizerTestData.HuggingFace("mini_llama-test");
        Assert.Equal(TokenizerKind.ByteLevelBpe, t.Kind);
        Assert.Equal(128001, t.Encode("<|end_of_text|>", addSpecial: false)[0]);
        foreach (string s in new[] { "hello world", "  spaces\n\nand\ttabs 123456", "héllo 😀" })
            Assert.Equal(s, t.Decode(t.Encode(s, addSpecial: false, parseSpecial: false)));
    }

    [Fact]
    public void UnsupportedModels_AreRefusedWithTheFileAndType()
    {
        string folder = Directory.CreateTempSubdirectory("slmkit-wordpiece-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), """{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}}""");
            var e = Assert.Throws<ModelFileException>(() => Tokenizer.FromHuggingFace(folder));
            Assert.Contains("WordPiece", e.Message);
            Assert.EndsWith("tokenizer.json", e.FilePath);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }

        string missing = Path.Combine(Path.GetTempPath(), "slmkit-no-such-folder-" + Guid.NewGuid());
        var e2 = Assert.Throws<ModelFileException>(() => Tokenizer.FromHuggingFace(missing));
        Assert.Contains("not found", e2.Message);
    }

    [Fact]
    public void MalformedJson_IsAModelFileException()
    {
        string dir = Directory.CreateTempSubdirectory("slmkit-tok-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{ \"model\": { \"type\": \"BPE\", \"vocab\": [1, 2");
            Assert.Throws<ModelFileException>(() => Tokenizer.FromHuggingFace(dir));
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{ \"model\": { \"type\": \"WordPiece\", \"vocab\": {} } }");
            Assert.Contains("WordPiece", Assert.Throws<ModelFileException>(() => Tokenizer.FromHuggingFace(dir)).Message);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"),
                "{ \"normalizer\": {\"type\": \"BertNormalizer\"}, \"model\": { \"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [] } }");
            Assert.Contains("BertNormalizer", Assert.Throws<ModelFileException>(() => Tokenizer.FromHuggingFace(dir)).Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("tokenizer.json", "truncated", "is not valid JSON at line 1")]
    [InlineData("tokenizer.json", "trailing-comma", "is not valid JSON at line 1")]
    [InlineData("tokenizer.json", "invalid-utf8", "is not valid UTF-8")]
    [InlineData("special_tokens_map.json", "truncated", "is not valid JSON at line 1")]
    [InlineData("special_tokens_map.json", "trailing-comma", "is not valid JSON at line 1")]
    public void A_damaged_json_file_is_refused_naming_the_file_and_where(string file, string damage, string expected)
    {
        string dir = Directory.CreateTempSubdirectory("slmkit-tok-").FullName;
        try
        {
            string valid = file == "tokenizer.json"
                ? "{ \"model\": { \"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [] } }"
                : "{ \"bos_token\": \"a\" }";
            if (file != "tokenizer.json")
                File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{ \"model\": { \"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [] } }");
            byte[] bytes = damage switch
            {
                "truncated" => Encoding.UTF8.GetBytes(valid[..^3]),
                "trailing-comma" => Encoding.UTF8.GetBytes(valid[..^2] + ", }"),
                _ => [.. Encoding.UTF8.GetBytes(valid[..^4]), 0xFF, .. Encoding.UTF8.GetBytes(valid[^4..])],
            };
            File.WriteAllBytes(Path.Combine(dir, file), bytes);
            var e = Assert.Throws<ModelFileException>(() => Tokenizer.FromHuggingFace(dir));
            Assert.EndsWith(file, e.FilePath);
            Assert.Contains(expected, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
