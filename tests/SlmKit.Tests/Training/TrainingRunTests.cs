using SlmKit.Formats;
using SlmKit.Models;
using SlmKit.Tokenizers;
using SlmKit.Training;

namespace SlmKit.Tests.Training;

/// <summary>slm train's engine end to end: resume is bit-exact, the loss falls, exports load in SlmKit and llama.cpp.</summary>
public sealed class TrainingRunTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-train-").FullName;

    private string Corpus()
    {
        string path = Path.Combine(_folder, "corpus.txt");
        if (!File.Exists(path))
        {
            var random = new Random(3);
            string[] words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "big", "red", "ball", "Lily", "Tom", "happy"];
            var docs = Enumerable.Range(0, 300).Select(_ => string.Join(' ', Enumerable.Range(0, random.Next(8, 30)).Select(_ => words[random.Next(words.Length)])) + ".");
            File.WriteAllText(path, string.Join("<|endoftext|>", docs));
        }
        return path;
    }

    private string Tokenizer(TrainedTokenizerKind kind = TrainedTokenizerKind.ByteLevelBpe)
    {
        string folder = Path.Combine(_folder, "tok-" + kind);
        if (!Directory.Exists(folder))
        {
            var trainer = new TokenizerTrainer(new TokenizerTrainingOptions { Kind = kind, VocabSize = 320 });
            trainer.AddFile(Corpus());
            trainer.Train(folder);
        }
        return folder;
    }

    private TrainingConfig Tiny(string output, int steps) => new()
    {
        Dim = 32, Layers = 2, Heads = 4, KvHeads = 2, Ffn = 64,
        Tokenizer = Tokenizer(), Data = [Corpus()], Output = Path.Combine(_folder, output),
        Steps = steps, BatchSize = 4, SequenceLength = 16, LearningRate = 3e-3, MinLearningRate = 3e-4, WarmupSteps = 3,
        EvalEvery = 5, EvalBatches = 2, CheckpointEvery = 0, Seed = 11, Threads = 2,
    };

    private static float[][] Weights(string ggufPath)
    {
        using var file = GgufFile.Open(ggufPath);
        return file.TensorNames.Select(name => file.Find(name)!.AsFloat32().ToArray()).ToArray();
    }

    [Fact]
    public void Twenty_steps_straight_equal_ten_then_resume_then_ten()
    {
        var straight = TrainingRun.Run(Tiny("straight", 20));
        // The same 20-step run, interrupted after step 10 (as Ctrl+C would), then resumed.
        var config = Tiny("resumed", 20);
        using var interrupt = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() =>
            TrainingRun.Run(config, progress: new StopAt(10, interrupt), cancellationToken: interrupt.Token));
        var resumed = TrainingRun.Run(config, resume: true);
        var a = Weights(straight.GgufPath);
        var b = Weights(resumed.GgufPath);
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++)
            Assert.Equal(a[i], b[i]);
        Assert.Equal(straight.FinalLoss, resumed.FinalLoss);
        // metrics.csv reads as one uninterrupted run.
        Assert.Equal(Enumerable.Range(1, 20), MetricsLog.Read(resumed.MetricsPath).Select(r => r.Step));
    }

    [Fact]
    public void The_exported_gguf_and_hf_folder_compute_the_trainers_loss()
    {
        var result = TrainingRun.Run(Tiny("export", 8));
        var tokenizer = SlmKit.Tokenizers.Tokenizer.FromHuggingFace(Tokenizer());
        int[] tokens = tokenizer.Encode("the cat sat on a mat and the dog ran to a big red ball", addSpecial: false);
        foreach (string path in new[] { result.GgufPath, result.HuggingFaceFolder })
        {
            using var model = ModelLoader.Load(path);
            var cache = model.CreateCache(tokens.Length);
            var logits = new float[tokens.Length * model.VocabSize];
            model.Forward(cache, tokens, logits, allPositions: true);
            double runtimeLoss = 0;
            for (int t = 0; t + 1 < tokens.Length; t++)
            {
                var row = logits.AsSpan(t * model.VocabSize, model.VocabSize);
                double max = double.NegativeInfinity, sum = 0;
                foreach (float v in row)
                    max = Math.Max(max, v);
                foreach (float v in row)
                    sum += Math.Exp(v - max);
                runtimeLoss += max + Math.Log(sum) - row[tokens[t + 1]];
            }
            runtimeLoss /= tokens.Length - 1;

            var shape = ModelPresets.Llama(tokenizer.VocabSize, 32, 2, 4, 2, 64);
            var trainable = new TrainableDecoder<float>(shape, 1, 1);
            using (var gguf = GgufFile.Open(result.GgufPath))
            {
                foreach (var p in trainable.Parameters)
                    gguf.Find(p.Name)!.AsFloat32().CopyTo(p.Value);
            }
            double trainerLoss = trainable.EvaluateLoss(tokens[..^1], tokens[1..], 1, tokens.Length - 1);
            Assert.Equal(trainerLoss, runtimeLoss, 1e-4);
        }
    }

    [Fact]
    public void A_trained_model_gives_the_same_logits_in_llama_cpp()
    {
        var result = TrainingRun.Run(Tiny("llamacpp", 6));
        int[] tokens = Enumerable.Range(0, 24).Select(i => (i * 37 + 5) % 320).ToArray();
        float[] expected = LlamaCppForward.Logits(result.GgufPath, tokens);
        using var model = ModelLoader.Load(result.GgufPath);
        var cache = model.CreateCache(tokens.Length);
        var actual = new float[tokens.Length * model.VocabSize];
        model.Forward(cache, tokens, actual, allPositions: true);
        double scale = expected.Max(Math.Abs), worst = 0;
        for (int i = 0; i < expected.Length; i++)
            worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        Assert.True(worst <= 1e-3 * scale, $"max |Δ| {worst} vs scale {scale}");
    }

    [Fact]
    public void Slm_convert_turns_the_exported_hf_folder_into_a_gguf_equal_to_the_direct_export()
    {
        var result = TrainingRun.Run(Tiny("convert", 4));
        string converted = Path.Combine(_folder, "converted.gguf");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(0, SlmKit.Cli.Program.Run(["convert", result.HuggingFaceFolder, converted], stdout, stderr));

        int[] tokens = Enumerable.Range(0, 20).Select(i => (i * 53 + 7) % 320).ToArray();
        float[] Logits(string path)
        {
            using var model = ModelLoader.Load(path);
            var cache = model.CreateCache(tokens.Length);
            var logits = new float[tokens.Length * model.VocabSize];
            model.Forward(cache, tokens, logits, allPositions: true);
            return logits;
        }
        Assert.Equal(Logits(result.GgufPath), Logits(converted));
        Assert.Equal(LlamaCppForward.Logits(result.GgufPath, tokens), LlamaCppForward.Logits(converted, tokens));

        // The tokenizer travels inside the GGUF and encodes as the tokenizer.json does.
        using var file = GgufFile.Open(converted);
        var fromGguf = SlmKit.Tokenizers.Tokenizer.FromGguf(file);
        var fromJson = SlmKit.Tokenizers.Tokenizer.FromHuggingFace(Tokenizer());
        foreach (string text in new[] { "the cat sat on a mat.", "Lily and Tom ran to the big red ball!", "  two  spaces\nnew line 123" })
            Assert.Equal(fromJson.Encode(text), fromGguf.Encode(text));
    }

    [Fact]
    public void Slm_convert_refuses_a_folder_without_a_tokenizer()
    {
        var result = TrainingRun.Run(Tiny("convert-no-tok", 2));
        File.Delete(Path.Combine(result.HuggingFaceFolder, "tokenizer.json"));
        string converted = Path.Combine(_folder, "none.gguf");
        var stderr = new StringWriter();
        Assert.Equal(2, SlmKit.Cli.Program.Run(["convert", result.HuggingFaceFolder, converted], new StringWriter(), stderr));
        Assert.Contains("tokenizer.json", stderr.ToString());
        Assert.False(File.Exists(converted));
    }

    [Fact]
    public void Training_the_stories260K_shape_on_tinystories_lowers_the_validation_loss()
    {
        string text = SharedAssets.Require("data/tinystories/tinystories_val_head.txt");
        string tok = SharedAssets.Require("assets/llama2c/stories260K/tok512.bin");
        var config = new TrainingConfig
        {
            Preset = "stories260k", Tokenizer = tok, Data = [text], DocumentSeparator = "\n\n", Output = Path.Combine(_folder, "s260k"),
            Steps = 40, BatchSize = 8, SequenceLength = 128, LearningRate = 5e-3, MinLearningRate = 5e-4, WarmupSteps = 5,
            EvalEvery = 40, EvalBatches = 4, CheckpointEvery = 0, Seed = 5, Threads = 2,
        };
        var result = TrainingRun.Run(config);
        var model = new TrainableDecoder<float>(config.ResolveModel(512).Config, config.Seed, 2);
        var corpus = new SlmKit.Training.Data.TrainingCorpus([new() { Path = text, DocumentSeparator = "\n\n" }],
            SlmModel.LoadTokenizer(tok, 512), 128, config.ValidationFraction, config.Seed);
        double before = TrainingRun.Evaluate(model, corpus.ValidationBatches(8, 4))!.Value;
        Assert.True(before > 5.5, $"an untrained 512-token model starts near ln 512 ≈ 6.2, got {before}");
        Assert.True(result.FinalValidationLoss < before - 1.5, $"validation loss {before:F3} → {result.FinalValidationLoss:F3}");
    }

    [Theory]
    [InlineData("{\"steps\": 10, \"stepz\": 5}", "unknown key 'stepz'")]
    [InlineData("{\"steps\": \"ten\"}", "key 'steps' must be an integer")]
    [InlineData("{\"steps\": 10,", "not valid JSON")]
    public void A_bad_config_file_is_refused_by_key(string json, string expected)
    {
        string path = Path.Combine(_folder, "bad.json");
        File.WriteAllText(path, json);
        var error = Assert.Throws<ModelFileException>(() => TrainingConfig.Load(path));
        Assert.Contains(expected, error.Message);
        Assert.StartsWith(path, error.Message);
    }

    [Fact]
    public void Impossible_shapes_and_missing_data_are_refused_before_training()
    {
        Assert.Contains("multiple", Assert.Throws<SlmKitException>(() => TrainingRun.Run(Tiny("bad-shape", 2) with { Heads = 5 })).Message);
        var missing = Assert.Throws<ModelFileException>(() => TrainingRun.Run(Tiny("no-data", 2) with { Data = [Path.Combine(_folder, "none.txt")] }));
        Assert.Contains("not found", missing.Message);
        Assert.False(Directory.Exists(Path.Combine(_folder, "no-data")));
        string empty = Path.Combine(_folder, "empty.txt");
        File.WriteAllText(empty, "");
        Assert.Contains("empty", Assert.Throws<ModelFileException>(() => TrainingRun.Run(Tiny("empty-data", 2) with { Data = [empty] })).Message);
        Assert.False(Directory.Exists(Path.Combine(_folder, "empty-data")));
        string badJsonl = Path.Combine(_folder, "bad.jsonl");
        File.WriteAllText(badJsonl, "{\"text\": \"fine\"}\n{oops}\n");
        var jsonl = Assert.Throws<ModelFileException>(() => TrainingRun.Run(Tiny("bad-jsonl", 2) with { Data = [badJsonl], ValidationFraction = 0.5 }));
        Assert.Contains("line 2", jsonl.Message);
    }

    [Fact]
    public void A_corrupt_checkpoint_is_refused_on_resume_and_left_untouched()
    {
        var config = Tiny("corrupt", 4);
        TrainingRun.Run(config);
        string checkpoint = Path.Combine(config.Output!, TrainingRun.CheckpointFile);
        byte[] bytes = File.ReadAllBytes(checkpoint);
        bytes[bytes.Length / 2] ^= 0x5A;
        File.WriteAllBytes(checkpoint, bytes);
        var error = Assert.Throws<ModelFileException>(() => TrainingRun.Run(config with { Steps = 8 }, resume: true));
        Assert.Contains("corrupt checkpoint", error.Message);
        Assert.Equal(bytes, File.ReadAllBytes(checkpoint));

        File.WriteAllBytes(checkpoint, bytes[..(bytes.Length - 100)]);
        Assert.Contains("truncated", Assert.Throws<ModelFileException>(() => TrainingRun.Run(config with { Steps = 8 }, resume: true)).Message);
    }

    private sealed class StopAt(int step, CancellationTokenSource source) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            if (value.Step == step)
                source.Cancel();
        }
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
