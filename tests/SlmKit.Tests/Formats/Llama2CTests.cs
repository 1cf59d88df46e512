using SlmKit.Formats;
using SlmKit.Tensors;

namespace SlmKit.Tests.Formats;

public sealed class Llama2CTests
{
    private const string Folder = "assets/llama2c/stories260K/";

    [Fact]
    public void Legacy_and_version1_checkpoints_hold_the_same_tensors_as_the_gguf()
    {
        using var legacy = Llama2CCheckpoint.Open(SharedAssets.Require(Folder + "stories260K.bin"));
        using var v1 = Llama2CCheckpoint.Open(SharedAssets.Require(Folder + "stories260K_v1.bin"));
        using var gguf = GgufFile.Open(SharedAssets.Require(Folder + "stories260K.gguf"));

        Assert.Equal(new Llama2CConfig(64, 172, 5, 8, 4, 512, 512, SharedClassifier: true, Version: 0), legacy.Config);
        Assert.Equal(legacy.Config with { Version = 1 }, v1.Config);
        Assert.Equal(8, legacy.Config.HeadSize);
        Assert.Equal(32, legacy.Config.KvDim);

        // Shared classifier: no output.weight, so 1 + 5 × 9 + 1 tensors.
        Assert.Equal(47, legacy.TensorNames.Count);
        Assert.Null(legacy.Find("output.weight"));
        Assert.Equal(legacy.TensorNames.Order(), v1.TensorNames.Order());
        foreach (string name in legacy.TensorNames)
        {
            WeightTensor a = legacy.Find(name)!;
            WeightTensor b = v1.Find(name)!;
            WeightTensor g = gguf.Find(name) ?? throw new Xunit.Sdk.XunitException($"the GGUF lacks {name}");
            Assert.Equal(GgmlType.F32, a.Type);
            Assert.Equal(g.Dimensions, a.Dimensions);
            Assert.Equal(g.Dimensions, b.Dimensions);
            Assert.True(a.Bytes.SequenceEqual(b.Bytes), name);
            Assert.True(a.Bytes.SequenceEqual(g.Bytes), name);
        }
        Assert.True(legacy.Find("token_embd.weight")!.Bytes.SequenceEqual(gguf.Find("output.weight")!.Bytes));
    }

    [Fact]
    public void Transposed_checkpoint_has_a_valid_size_and_opens()
    {
        using var c = Llama2CCheckpoint.Open(SharedAssets.Require("assets/llama2c/nonstandard/stories260K.plctlab-TRANSPOSED.bin"));
        Assert.Equal(64, c.Config.Dim);
    }

    [Fact]
    public void Separate_classifier_and_version2_and_bad_headers()
    {
        using var dir = new TempDirectory();
        // A tiny legacy checkpoint with a separate classifier (negative vocabulary size).
        int dim = 8, hidden = 12, layers = 2, heads = 2, kvHeads = 1, vocab = 5, seq = 4;
        int kvDim = dim / heads * kvHeads;
        long floats = (long)vocab * dim + layers * dim * 2 + layers * dim * dim * 2 + layers * kvDim * dim * 2
            + layers * hidden * dim * 3 + dim + seq * (dim / heads / 2) * 2 + vocab * dim;
        var bytes = new List<byte>();
        foreach (int v in new[] { dim, hidden, layers, heads, kvHeads, -vocab, seq })
            bytes.AddRange(BitConverter.GetBytes(v));
        for (int i = 0; i < floats; i++)
            bytes.AddRange(BitConverter.GetBytes((float)i));
        string path = dir.File("sep.bin");
        File.WriteAllBytes(path, [.. bytes]);
        using (var c = Llama2CCheckpoint.Open(path))
        {
            Assert.False(c.Config.SharedClassifier);
            Assert.Equal(vocab, c.Config.VocabSize);
            ReadOnlySpan<float> output = c.Find("output.weight")!.AsFloat32();
            Assert.Equal(vocab * dim, output.Length);
            Assert.Equal(floats - vocab * dim, output[0]);
            Assert.Equal(vocab * dim, c.Find("blk.0.attn_norm.weight")!.AsFloat32()[0]);
        }

        // Too short by one float.
        string shortPath = dir.File("short.bin");
        File.WriteAllBytes(shortPath, [.. bytes.Take(bytes.Count - 4)]);
        var e = Assert.Throws<ModelFileException>(() => Llama2CCheckpoint.Open(shortPath));
        Assert.StartsWith(shortPath + ": file is", e.Message);

        // Heads that do not divide dim.
        byte[] bad = [.. bytes];
        BitConverter.GetBytes(3).CopyTo(bad, 12);
        File.WriteAllBytes(shortPath, bad);
        Assert.Contains("not a multiple of the head count", Assert.Throws<ModelFileException>(() => Llama2CCheckpoint.Open(shortPath)).Message);

        // Version 2 (Q8_0) is recognised and refused.
        byte[] v2 = new byte[256 + 64];
        BitConverter.GetBytes(0x616b3432u).CopyTo(v2, 0);
        BitConverter.GetBytes(2).CopyTo(v2, 4);
        File.WriteAllBytes(shortPath, v2);
        Assert.Contains("version 2 (Q8_0", Assert.Throws<ModelFileException>(() => Llama2CCheckpoint.Open(shortPath)).Message);
    }

    [Fact]
    public void Reads_the_tokenizer_and_it_matches_the_gguf_vocabulary()
    {
        var tok = Llama2CTokenizerFile.Read(SharedAssets.Require(Folder + "tok512.bin"), 512);
        using var gguf = GgufFile.Open(SharedAssets.Require(Folder + "stories260K.gguf"));
        string[] tokens = gguf.GetStringArray("tokenizer.ggml.tokens")!;
        float[] scores = gguf.GetFloatArray("tokenizer.ggml.scores")!;
        Assert.Equal(7, tok.MaxTokenLength);
        Assert.Equal(512, tok.Pieces.Count);
        Assert.Equal("<unk>", tok.Pieces[0]);
        Assert.Equal("\n<s>\n", tok.Pieces[1]);
        // llama2.c writes SentencePiece's ▁ as a plain space.
        for (int i = 3; i < 512; i++)
        {
            Assert.Equal(tokens[i].Replace('▁', ' '), tok.Pieces[i]);
            Assert.Equal(scores[i], tok.Scores[i]);
            Assert.Equal(System.Text.Encoding.UTF8.GetBytes(tok.Pieces[i]), tok.PieceBytes[i]);
        }
        var e = Assert.Throws<ModelFileException>(() => Llama2CTokenizerFile.Read(SharedAssets.Require(Folder + "tok512.bin"), 100000));
        Assert.Contains("100000", e.Message);
    }
}
