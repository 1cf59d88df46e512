using SlmKit.Formats;
using SlmKit.Tokenizers;

namespace SlmKit.Tests.Tokenizers;

/// <summary>llama.cpp's own tokenizer test vectors (tests/test-tokenizer-0: add_special=false, parse_special=false).</summary>
public sealed class LlamaCppVocabTests
{
    public static TheoryData<string> Vocabs => new(TokenizerTestData.VocabNames);

    [Theory]
    [MemberData(nameof(Vocabs))]
    public void Encode_MatchesLlamaCppTestVectors(string vocab)
    {
        Tokenizer tokenizer = TokenizerTestData.Gguf(vocab);
        var failures = new List<string>();
        foreach ((string text, int[] expected) in TokenizerTestData.VocabCases(vocab))
        {
            int[] actual = tokenizer.Encode(text, addSpecial: false, parseSpecial: false);
            if (!actual.SequenceEqual(expected))
                failures.Add($"{Show(text)}: expected [{string.Join(' ', expected)}] got [{string.Join(' ', actual)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches for {vocab}:\n" + string.Join('\n', failures));
    }

    [Fact]
    public void BertVocab_IsRefusedAsOutOfScope()
    {
        // bert-bge is WordPiece: out of scope for SlmKit's tokenizers; loading it must say so clearly.
        string path = TokenizerTestData.VocabPath("bert-bge");
        using var file = GgufFile.Open(path);
        var e = Assert.Throws<ModelFileException>(() => Tokenizer.FromGguf(file));
        Assert.Contains("WordPiece", e.Message);
        Assert.StartsWith(path, e.Message);
    }

    internal static string Show(string s) =>
        "\"" + string.Concat(s.Select(c => c switch { '\n' => "\\n", '\t' => "\\t", '\r' => "\\r", _ => c.ToString() })) + "\"";
}
