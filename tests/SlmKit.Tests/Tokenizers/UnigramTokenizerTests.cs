using System.Text.Json;
using LLama;
using SlmKit.Formats;
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

    /// <summary>The T5 test strings with Hugging Face's ids, and the long text as one more.</summary>
    private static List<(string Text, int[] Ids)> HuggingFaceCases()
    {
        var cases = new List<(string, int[])>();
        using (var json = JsonDocument.Parse(File.ReadAllText(SharedAssets.Require("assets/expected/tokenizers/swift-transformers/tokenizer_tests.json"))))
        {
            foreach (var c in json.RootElement.GetProperty("t5-base").EnumerateArray())
                cases.Add((c.GetProperty("input").GetString()!, [.. c.GetProperty("encoded").GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32())]));
        }
        using (var json = JsonDocument.Parse(File.ReadAllText(SharedAssets.Require("assets/expected/tokenizers/swift-transformers/t5_base_encoded.json"))))
            cases.Add((json.RootElement.GetProperty("text").GetString()!, [.. json.RootElement.GetProperty("token_ids").EnumerateArray().Select(x => x.GetInt32())]));
        return cases;
    }

    [Fact]
    public void The_vocabulary_written_to_gguf_tokenizes_in_llama_cpp_and_back_in_slmkit_as_hugging_face_does()
    {
        // llama.cpp's Unigram tokenizer (model "t5") on our GGUF vocabulary is the independent check of what we write:
        // the pieces, scores, compiled normalization rules and whitespace flags.
        var tokenizer = T5();
        string folder = Directory.CreateTempSubdirectory("slmkit-t5-vocab-").FullName;
        try
        {
            string path = GgufVocabularyExportTests.WriteVocabulary(tokenizer, Path.Combine(folder, "t5-vocab.gguf"));

            Tokenizer fromGguf;
            using (var gguf = GgufFile.Open(path))
            {
                Assert.Equal("t5", gguf.GetString("tokenizer.ggml.model"));
                fromGguf = Tokenizer.FromGguf(gguf);
            }
            Assert.Equal(TokenizerKind.Unigram, fromGguf.Kind);
            using LLamaWeights weights = LlamaCppOracle.LoadVocabOnly(path);
            var failures = new List<string>();
            foreach (var (text, expected) in HuggingFaceCases())
            {
                int[] llama = LlamaCppOracle.Tokenize(weights, text, addSpecial: true, parseSpecial: true);
                int[] ours = fromGguf.Encode(text);
                if (!llama.SequenceEqual(expected) || !ours.SequenceEqual(expected))
                    failures.Add($"{JsonSerializer.Serialize(text)}:\n  Hugging Face [{string.Join(' ', expected)}]\n  llama.cpp    [{string.Join(' ', llama)}]\n  SlmKit GGUF  [{string.Join(' ', ours)}]");
            }
            Assert.True(failures.Count == 0, $"{failures.Count} texts differ:\n" + string.Join('\n', failures.Take(4)));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
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
