using SlmKit.Formats;
using SlmKit.Tokenizers;

namespace SlmKit.Tests.Tokenizers;

/// <summary>Shared loading of the tokenizer assets (cached: vocabularies take a moment to build).</summary>
internal static class TokenizerTestData
{
    /// <summary>llama.cpp vocab-only GGUFs with test strings (.inp/.out) that SlmKit supports (SPM and BPE).</summary>
    public static readonly string[] VocabNames =
        ["llama-spm", "phi-3", "gpt-2", "falcon", "deepseek-coder", "deepseek-llm", "mpt", "refact", "starcoder"];

    private static readonly Dictionary<string, Tokenizer> s_cache = new();

    public static string VocabPath(string name) => SharedAssets.Require($"assets/llamacpp/vocab/ggml-vocab-{name}.gguf");

    public static Tokenizer Gguf(string name)
    {
        string path = VocabPath(name);
        lock (s_cache)
        {
            if (!s_cache.TryGetValue(path, out Tokenizer? t))
            {
                using var file = GgufFile.Open(path);
                s_cache[path] = t = Tokenizer.FromGguf(file);
            }
            return t;
        }
    }

    public static Tokenizer HuggingFace(string folder)
    {
        string path = SharedAssets.Require($"assets/hf-tokenizers/{folder}");
        lock (s_cache)
        {
            if (!s_cache.TryGetValue(path, out Tokenizer? t))
                s_cache[path] = t = Tokenizer.FromHuggingFace(path);
            return t;
        }
    }

    public static Tokenizer Llama2C()
    {
        string path = SharedAssets.Require("assets/llama2c/stories260K/tok512.bin");
        lock (s_cache)
        {
            if (!s_cache.TryGetValue(path, out Tokenizer? t))
                s_cache[path] = t = Tokenizer.FromLlama2C(path, 512);
            return t;
        }
    }

    /// <summary>The .inp strings and .out ids of a llama.cpp vocab test.</summary>
    public static (string Text, int[] Ids)[] VocabCases(string name)
    {
        string inp = File.ReadAllText(VocabPath(name) + ".inp");
        string[] texts = inp.Split("\n__ggml_vocab_test__\n");
        string[] lines = File.ReadAllText(VocabPath(name) + ".out").Split('\n');
        var cases = new (string, int[])[texts.Length];
        for (int i = 0; i < texts.Length; i++)
        {
            cases[i] = (texts[i], lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray());
        }
        return cases;
    }
}
