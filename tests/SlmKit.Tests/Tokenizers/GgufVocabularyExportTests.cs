using System.Text.Json.Nodes;
using LLama;
using SlmKit.Formats;
using SlmKit.Tokenizers;

namespace SlmKit.Tests.Tokenizers;

/// <summary>
/// A tokenizer.json written as GGUF vocabulary (what <c>slm convert</c> and <c>slm quantize</c> embed) names the
/// pre-tokenizer under which llama.cpp splits text as the tokenizer.json does: llama.cpp, loading only that vocabulary,
/// tokenizes generated text exactly as SlmKit's reading of the tokenizer.json does. The vocabulary and merges are the
/// committed default tokenizer's; only the pre-tokenizer changes, to the forms Llama 3, Qwen2 and SmolLM publish. A
/// vocabulary read from a GGUF is written back under the name it was read under.
/// </summary>
public sealed class GgufVocabularyExportTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-vocab-export-").FullName;

    private const string Llama3Split = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Qwen2Split = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public static TheoryData<string, string> PreTokenizers => new()
    {
        { "gpt2", "gpt-2" },
        { "llama3", "llama-bpe" },
        { "llama3-keeping-merges", "smaug-bpe" },
        { "qwen2", "qwen2" },
        { "smollm", "smollm" },
    };

    [Theory]
    [MemberData(nameof(PreTokenizers))]
    public void The_exported_vocabulary_tokenizes_in_llama_cpp_as_the_tokenizer_json_does(string form, string expectedName)
    {
        string folder = TokenizerFolder(form);
        Tokenizer tokenizer = Tokenizer.FromHuggingFace(folder);
        string path = WriteVocabulary(tokenizer, Path.Combine(_folder, form + ".gguf"));

        using (var gguf = GgufFile.Open(path))
            Assert.Equal(expectedName, gguf.GetString("tokenizer.ggml.pre"));

        using LLamaWeights weights = LlamaCppOracle.LoadVocabOnly(path);
        var failures = new List<string>();
        foreach (string text in TokenizerFuzzText.Generate(400, seed: 77).Append("I'LL say it's 1234567 dollars\n\n  ok"))
        {
            int[] expected = tokenizer.Encode(text, addSpecial: false, parseSpecial: false);
            int[] actual = LlamaCppOracle.Tokenize(weights, text, addSpecial: false, parseSpecial: false);
            if (!actual.SequenceEqual(expected))
                failures.Add($"{LlamaCppVocabTests.Show(text)}:\n  tokenizer.json [{string.Join(' ', expected)}]\n  llama.cpp      [{string.Join(' ', actual)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} texts differ for {form}:\n" + string.Join('\n', failures.Take(6)));
    }

    public static TheoryData<string> ByteLevelVocabularies => new(["gpt-2", "falcon", "deepseek-coder", "deepseek-llm", "mpt", "refact", "starcoder"]);

    [Theory]
    [MemberData(nameof(ByteLevelVocabularies))]
    public void A_gguf_vocabulary_written_back_keeps_its_pre_tokenizer_and_tokenizes_as_before_in_llama_cpp(string vocab)
    {
        string original = TokenizerTestData.VocabPath(vocab);
        string path = WriteVocabulary(TokenizerTestData.Gguf(vocab), Path.Combine(_folder, vocab + ".gguf"));
        using (var source = GgufFile.Open(original))
        using (var written = GgufFile.Open(path))
            Assert.Equal(source.GetString("tokenizer.ggml.pre"), written.GetString("tokenizer.ggml.pre"));

        using LLamaWeights before = LlamaCppOracle.LoadVocabOnly(original);
        using LLamaWeights after = LlamaCppOracle.LoadVocabOnly(path);
        var failures = new List<string>();
        foreach (string text in TokenizerFuzzText.Generate(150, seed: 31))
        {
            int[] expected = LlamaCppOracle.Tokenize(before, text, addSpecial: false, parseSpecial: false);
            int[] actual = LlamaCppOracle.Tokenize(after, text, addSpecial: false, parseSpecial: false);
            if (!actual.SequenceEqual(expected))
                failures.Add($"{LlamaCppVocabTests.Show(text)}:\n  original  [{string.Join(' ', expected)}]\n  rewritten [{string.Join(' ', actual)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} texts differ for {vocab}:\n" + string.Join('\n', failures.Take(6)));
    }

    /// <summary>A vocabulary-only GGUF: the tokenizer and the hyperparameters llama.cpp reads even for such a load.</summary>
    internal static string WriteVocabulary(Tokenizer tokenizer, string path)
    {
        var writer = new GgufWriter();
        writer.Set("general.architecture", "llama");
        writer.Set("llama.context_length", 512u);
        writer.Set("llama.embedding_length", 64u);
        writer.Set("llama.block_count", 1u);
        writer.Set("llama.feed_forward_length", 128u);
        writer.Set("llama.attention.head_count", 4u);
        writer.Set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        tokenizer.WriteGgufMetadata(writer);
        writer.Write(path);
        return path;
    }

    /// <summary>The default tokenizer with the pre-tokenizer (and ignore_merges) of <paramref name="form"/>.</summary>
    private string TokenizerFolder(string form)
    {
        string source = Path.Combine(SharedAssets.RepositoryRoot, "models", "default", "tokenizer");
        string folder = Path.Combine(_folder, form);
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(source, "tokenizer_config.json"), Path.Combine(folder, "tokenizer_config.json"));
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "tokenizer.json")))!;
        JsonNode ByteLevel(bool useRegex) => new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = useRegex };
        JsonNode Split(string regex) => new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = regex }, ["behavior"] = "Isolated", ["invert"] = false };
        JsonNode Sequence(params JsonNode[] steps) => new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = new JsonArray(steps) };
        json["pre_tokenizer"] = form switch
        {
            "gpt2" => ByteLevel(true),
            "llama3" or "llama3-keeping-merges" => Sequence(Split(Llama3Split), ByteLevel(false)),
            "qwen2" => Sequence(Split(Qwen2Split), ByteLevel(false)),
            "smollm" => Sequence(new JsonObject { ["type"] = "Digits", ["individual_digits"] = true }, ByteLevel(true)),
            _ => throw new ArgumentException(form),
        };
        json["model"]!["ignore_merges"] = form == "llama3";
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.ToJsonString());
        return folder;
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
