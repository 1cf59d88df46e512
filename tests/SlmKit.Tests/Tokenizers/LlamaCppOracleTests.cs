using LLama;
using SlmKit.Tokenizers;

namespace SlmKit.Tests.Tokenizers;

/// <summary>llama.cpp itself (through LLamaSharp) as the oracle: ≥ 1,000 generated strings per vocabulary.</summary>
public sealed class LlamaCppOracleTests
{
    private const int StringsPerVocab = 1000;

    public static TheoryData<string> Vocabs => new(TokenizerTestData.VocabNames);

    [Theory]
    [MemberData(nameof(Vocabs))]
    public void Encode_MatchesLlamaCpp_OnGeneratedText(string vocab)
    {
        string path = TokenizerTestData.VocabPath(vocab);
        Tokenizer tokenizer = TokenizerTestData.Gguf(vocab);
        using LLamaWeights weights = LlamaCppOracle.LoadVocabOnly(path);
        string[] texts = TokenizerFuzzText.Generate(StringsPerVocab, seed: 1234);
        var failures = new List<string>();
        foreach (string text in texts)
        {
            int[] expected = LlamaCppOracle.Tokenize(weights, text, addSpecial: false, parseSpecial: false);
            int[] actual = tokenizer.Encode(text, addSpecial: false, parseSpecial: false);
            if (!actual.SequenceEqual(expected))
                failures.Add($"{LlamaCppVocabTests.Show(text)}:\n  llama.cpp [{string.Join(' ', expected)}]\n  SlmKit    [{string.Join(' ', actual)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count}/{texts.Length} differ for {vocab}:\n" + string.Join('\n', failures.Take(8)));
    }

    [Theory]
    [MemberData(nameof(Vocabs))]
    public void Encode_WithSpecials_MatchesLlamaCpp(string vocab)
    {
        // add_special and parse_special on: BOS/EOS rules and special-token splitting (with lstrip/rstrip).
        string path = TokenizerTestData.VocabPath(vocab);
        Tokenizer tokenizer = TokenizerTestData.Gguf(vocab);
        using LLamaWeights weights = LlamaCppOracle.LoadVocabOnly(path);
        string[] texts = TokenizerFuzzText.Generate(200, seed: 99);
        var failures = new List<string>();
        foreach (string text in texts.Append("").Append("<s>hi</s>  <|endoftext|>\n x"))
        {
            int[] expected = LlamaCppOracle.Tokenize(weights, text, addSpecial: true, parseSpecial: true);
            int[] actual = tokenizer.Encode(text, addSpecial: true, parseSpecial: true);
            if (!actual.SequenceEqual(expected))
                failures.Add($"{LlamaCppVocabTests.Show(text)}:\n  llama.cpp [{string.Join(' ', expected)}]\n  SlmKit    [{string.Join(' ', actual)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} differ for {vocab}:\n" + string.Join('\n', failures.Take(8)));
    }
}
