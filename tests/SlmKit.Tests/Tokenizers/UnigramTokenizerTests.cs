using System.Text.Json;
using SlmKit.Models;
using SlmKit.Tokenizers;
using SlmKit.Tests.Models;
using SlmKit.Tensors;

namespace SlmKit.Tests.Tokenizers;

/// <summary>
/// The SentencePiece Unigram tokenizer of T5 (t5-small's tokenizer.json: a Precompiled normalizer, WhitespaceSplit then
/// Metaspace, and a "</s>" suffix) against the ids Hugging Face produced (swift-transformers' test resources), and a T5
/// folder driven by text end to end.
/// </summary>
public sealed class UnigramTokenizerTests
{
    private static Tokenizer T5() => Tokenizer.FromHuggingFace(SharedAssets.Require("assets/hf-tokenizers/t5-small"));

    [Fact]
    public void A_long_french_text_encodes_to_hugging_faces_ids_and_decodes_back()
    {
        var tokenizer = T5();
        Assert.Equal(TokenizerKind.Unigram, tokenizer.Kind);
        using var json = JsonDocument.Parse(File.ReadAllText(SharedAssets.Require("assets/expected/tokenizers/swift-transformers/t5_base_encoded.json")));
        var root = json.RootElement;
        int[] expected = [.. root.GetProperty("token_ids").EnumerateArray().Select(x => x.GetInt32())];
        int[] ids = tokenizer.Encode(root.GetProperty("text").GetString()!);
        Assert.Equal(expected, ids);
        Assert.Equal(root.GetProperty("bpe_tokens").EnumerateArray().Select(x => x.GetString()), ids[..^1].Select(tokenizer.TokenPiece));
        Assert.Equal(root.GetProperty("decoded_text").GetString(), tokenizer.Decode(ids));
    }

    [Fact]
    public void Every_t5_test_string_encodes_to_hugging_faces_ids()
    {
        // Spaces, newlines, punctuation runs, accents, emoji and other characters T5's vocabulary lacks (<unk>, fused).
        var tokenizer = T5();
        using var json = JsonDocument.Parse(File.ReadAllText(SharedAssets.Require("assets/expected/tokenizers/swift-transformers/tokenizer_tests.json")));
        var cases = json.RootElement.GetProperty("t5-base").EnumerateArray().ToList();
        Assert.True(cases.Count >= 10, $"{cases.Count} cases");
        foreach (var c in cases)
        {
            string input = c.GetProperty("input").GetString()!;
            int[] expected = [.. c.GetProperty("encoded").GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32())];
            Assert.True(expected.SequenceEqual(tokenizer.Encode(input)), $"{JsonSerializer.Serialize(input)}: [{string.Join(",", tokenizer.Encode(input))}] vs [{string.Join(",", expected)}]");
        }
    }

    [Fact]
    public void A_t5_folder_generates_from_text_through_slm_generate()
    {
        string tokenizerFolder = SharedAssets.Require("assets/hf-tokenizers/t5-small");
        string folder = Directory.CreateTempSubdirectory("slmkit-t5-text-").FullName;
        try
        {
            // A random T5 with t5-small's 32100-token vocabulary: the text goes through the Unigram tokenizer, the
            // encoder and the decoder, and generation stops at the token limit or at </s>.
            var spec = new RandomT5Spec("text", Dim: 32, Heads: 2, HeadDim: 16, Ffn: 64, EncoderLayers: 1, DecoderLayers: 1, Vocab: 32100, Gated: true, Tied: false, Type: GgmlType.F32, Seed: 501);
            string model = new RandomT5(spec).WriteHuggingFace(Path.Combine(folder, "t5"));
            File.Copy(Path.Combine(tokenizerFolder, "tokenizer.json"), Path.Combine(model, "tokenizer.json"));
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            int code = SlmKit.Cli.Program.Run(["generate", "--model", model, "--prompt", "translate English to German: The house is wonderful.", "--max-tokens", "6", "--temperature", "0"], stdout, stderr);
            Assert.True(code == 0, stderr.ToString());
            using var loaded = ModelLoader.Load(model);
            Assert.Equal("t5", loaded.Info.Family);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
