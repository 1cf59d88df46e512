using System.Text.Json;
using SlmKit.Tokenizers;

namespace SlmKit.Tests.Tokenizers;

/// <summary>llama2.c's tok512.bin and the Llama 2 vocabulary against llama2.c's own expectations.</summary>
public sealed class SentencePieceTests
{
    // llama2.c test.c (karpathy/llama2.c@350e04fe), encode(text, bos=1, eos=0) with the Llama 2 tokenizer.
    public static TheoryData<string, int[]> Llama2Cases => new()
    {
        { "", [1] },
        { "I believe the meaning of life is", [1, 306, 4658, 278, 6593, 310, 2834, 338] },
        { "Simply put, the theory of relativity states that ", [1, 3439, 17632, 1925, 29892, 278, 6368, 310, 14215, 537, 5922, 393, 29871] },
        { "A brief message congratulating the team on the launch:\n\n        Hi everyone,\n\n        I just ",
            [1, 319, 11473, 2643, 378, 629, 271, 18099, 278, 3815, 373, 278, 6826, 29901, 13, 13, 4706, 6324, 14332, 29892, 13, 13, 4706, 306, 925, 29871] },
        { "Translate English to French:\n\n        sea otter => loutre de mer\n        peppermint => menthe poivrée\n        plush girafe => girafe peluche\n        cheese =>",
            [1, 4103, 9632, 4223, 304, 5176, 29901, 13, 13, 4706, 7205, 4932, 357, 1149, 301, 449, 276, 316, 2778, 13, 4706, 1236, 407, 837, 524, 1149, 6042, 354, 772, 440, 29878, 1318, 13, 4706, 715, 1878, 330, 3055, 1725, 1149, 330, 3055, 1725, 4639, 28754, 13, 4706, 923, 968, 1149] },
    };

    [Theory]
    [MemberData(nameof(Llama2Cases))]
    public void Llama2_HuggingFaceJson_MatchesLlama2C(string text, int[] expected) =>
        Assert.Equal(expected, TokenizerTestData.HuggingFace("llama2").Encode(text));

    [Theory]
    [MemberData(nameof(Llama2Cases))]
    public void Llama2_Gguf_MatchesLlama2C(string text, int[] expected) =>
        Assert.Equal(expected, TokenizerTestData.Gguf("llama-spm").Encode(text));

    [Fact]
    public void Tok512_EncodeExamples()
    {
        Tokenizer tok = TokenizerTestData.Llama2C();
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(SharedAssets.Require("assets/expected/stories260K/derived_ids_and_logits.json")));
        int n = 0;
        foreach (JsonProperty example in doc.RootElement.GetProperty("encode_examples_llama2c_algorithm").EnumerateObject())
        {
            int[] expected = example.Value.EnumerateArray().Select(x => x.GetInt32()).ToArray();
            Assert.Equal(expected, tok.Encode(example.Name));
            n++;
        }
        Assert.Equal(6, n);
        Assert.Equal([1, 403, 407, 261, 378], tok.Encode("Once upon a time"));
        Assert.Equal(TokenizerKind.SentencePieceBpe, tok.Kind);
        Assert.Equal(512, tok.VocabSize);
        Assert.Equal(" Once", tok.TokenPiece(403));
        Assert.Equal("<s>", tok.TokenPiece(1));
        Assert.True(tok.AddBos);
        Assert.Equal([1, 2], tok.EndOfGenerationIds); // run.c stops at BOS, which separates stories
    }

    [Fact]
    public void Tok512_DecodesTheGreedyStoryLikeRunC()
    {
        Tokenizer tok = TokenizerTestData.Llama2C();
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(SharedAssets.Require("assets/expected/stories260K/derived_ids_and_logits.json")));
        int[] ids = doc.RootElement.GetProperty("ids_greedy_n200").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        string expected = File.ReadAllText(SharedAssets.Require("assets/expected/stories260K/runc_t0_n200_expected.txt"));
        // run.c feeds BOS first and strips the space of the piece after it.
        Assert.Equal(expected, tok.Decode([1, .. ids], skipSpecial: true));
        var streaming = tok.CreateStreamingDecoder();
        string streamed = string.Concat(ids.Select(streaming.Append)) + streaming.Flush();
        Assert.Equal(expected, streamed);
    }

    [Fact]
    public void Tok512_WrongVocabSizeOrMissingFile_IsAModelFileException()
    {
        string path = SharedAssets.Require("assets/llama2c/stories260K/tok512.bin");
        Assert.Contains("ends inside token", Assert.Throws<ModelFileException>(() => Tokenizer.FromLlama2C(path, 32000)).Message);
        Assert.Throws<ModelFileException>(() => Tokenizer.FromLlama2C(path + ".missing", 512));
    }

    [Fact]
    public void LlamaSpm_GgufMetadata()
    {
        Tokenizer t = TokenizerTestData.Gguf("llama-spm");
        Assert.Equal(32000, t.VocabSize);
        Assert.Equal(1, t.BosId);
        Assert.Equal(2, t.EosId);
        Assert.True(t.AddBos);
        Assert.False(t.AddEos);
        Assert.Equal([2], t.EndOfGenerationIds);
        Assert.Equal("<0x0A>", t.TokenPiece(13));
        Assert.Equal("\n", t.Decode([13]));
        Tokenizer phi3 = TokenizerTestData.Gguf("phi-3");
        Assert.Contains("<|user|>", phi3.ChatTemplate);
        Assert.Contains(32007, phi3.EndOfGenerationIds);
    }
}
