using SlmKit.Tokenizers;

namespace SlmKit.Tests.Tokenizers;

public sealed class TokenizerTrainerTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-toktrain-").FullName;

    private static readonly string[] s_samples =
    [
        "Once upon a time, there was a little girl named Lily.",
        "She liked to play outside in the sun with her dog Max.",
        "Zebra café 123 — naïve 日本語 😀 tabs\tand  double  spaces\nnew line",
        "",
        " leading space and trailing space ",
    ];

    private Tokenizer Train(TrainedTokenizerKind kind, int vocabSize, string corpus, string name)
    {
        var trainer = new TokenizerTrainer(new TokenizerTrainingOptions { Kind = kind, VocabSize = vocabSize });
        trainer.AddText(corpus);
        var result = trainer.Train(Path.Combine(_folder, name));
        Assert.Equal(vocabSize, result.VocabSize);
        return Tokenizer.FromHuggingFace(Path.Combine(_folder, name));
    }

    private static string Corpus()
    {
        // A small repetitive corpus so every merge has a clear winner.
        var text = new System.Text.StringBuilder();
        for (int i = 0; i < 50; i++)
            text.Append(s_samples[i % 3]).Append('\n');
        return text.ToString();
    }

    [Theory]
    [InlineData(TrainedTokenizerKind.ByteLevelBpe, 330)]
    [InlineData(TrainedTokenizerKind.SentencePieceBpe, 400)]
    public void A_trained_tokenizer_loads_round_trips_and_compresses(TrainedTokenizerKind kind, int vocabSize)
    {
        var tokenizer = Train(kind, vocabSize, Corpus(), kind.ToString());
        Assert.Equal(vocabSize, tokenizer.VocabSize);
        foreach (string sample in s_samples)
            Assert.Equal(sample, tokenizer.Decode(tokenizer.Encode(sample, addSpecial: false)));
        // A sentence seen in training needs far fewer tokens than it has bytes.
        int tokens = tokenizer.Encode(s_samples[0], addSpecial: false).Length;
        Assert.True(tokens * 4 < System.Text.Encoding.UTF8.GetByteCount(s_samples[0]), $"{tokens} tokens");
    }

    [Fact]
    public void The_sentencepiece_kind_adds_bos_and_falls_back_to_bytes_for_unseen_characters()
    {
        var tokenizer = Train(TrainedTokenizerKind.SentencePieceBpe, 350, Corpus(), "spm");
        int[] ids = tokenizer.Encode("Lily Ω");
        Assert.Equal(1, ids[0]);
        Assert.Equal("<s>", tokenizer.TokenPiece(1));
        Assert.Contains(ids, id => tokenizer.TokenPiece(id).StartsWith("<0x", StringComparison.Ordinal));
        Assert.Equal("Lily Ω", tokenizer.Decode(ids, skipSpecial: true));
    }

    [Fact]
    public void Training_is_deterministic()
    {
        Train(TrainedTokenizerKind.ByteLevelBpe, 320, Corpus(), "a");
        Train(TrainedTokenizerKind.ByteLevelBpe, 320, Corpus(), "b");
        Assert.Equal(File.ReadAllBytes(Path.Combine(_folder, "a", "tokenizer.json")), File.ReadAllBytes(Path.Combine(_folder, "b", "tokenizer.json")));
    }

    [Fact]
    public void The_most_frequent_pair_is_merged_first()
    {
        var trainer = new TokenizerTrainer(new TokenizerTrainingOptions { Kind = TrainedTokenizerKind.ByteLevelBpe, VocabSize = 258 });
        trainer.AddText("ab ab ab ab cd cd");
        trainer.Train(Path.Combine(_folder, "pairs"));
        var tokenizer = Tokenizer.FromHuggingFace(Path.Combine(_folder, "pairs"));
        // 1 special + 256 bytes + 1 merge: "a"+"b" (4 times) beats "Ġ"+"a" (3) and "c"+"d" (2).
        Assert.Equal("ab", tokenizer.TokenPiece(257));
        Assert.Single(tokenizer.Encode("ab", addSpecial: false));
    }

    [Fact]
    public void A_vocabulary_too_small_for_the_alphabet_is_refused()
    {
        var error = Assert.Throws<SlmKitException>(() => new TokenizerTrainer(new TokenizerTrainingOptions { Kind = TrainedTokenizerKind.SentencePieceBpe, VocabSize = 200 }));
        Assert.Contains("200", error.Message);
    }

    [Fact]
    public void A_tinystories_tokenizer_compresses_held_out_text()
    {
        string path = SharedAssets.Require("data/tinystories/tinystories_val_head.txt");
        string[] lines = File.ReadAllLines(path);
        var trainer = new TokenizerTrainer(new TokenizerTrainingOptions { Kind = TrainedTokenizerKind.SentencePieceBpe, VocabSize = 1024 });
        foreach (string line in lines.AsSpan(0, lines.Length * 3 / 4))
            trainer.AddText(line);
        trainer.Train(Path.Combine(_folder, "stories"));
        var tokenizer = Tokenizer.FromHuggingFace(Path.Combine(_folder, "stories"));
        string heldOut = string.Join('\n', lines.AsSpan(lines.Length * 3 / 4, 200).ToArray());
        int[] ids = tokenizer.Encode(heldOut, addSpecial: false);
        Assert.Equal(heldOut, tokenizer.Decode(ids));
        double bytesPerToken = System.Text.Encoding.UTF8.GetByteCount(heldOut) / (double)ids.Length;
        // Bytes alone give 1.0 and characters about 1.0 here; merges must do much better.
        Assert.True(bytesPerToken > 2.5, $"only {bytesPerToken:F2} bytes per token");
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
