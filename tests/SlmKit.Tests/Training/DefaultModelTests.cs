using System.Text.Json;
using SlmKit.Models;
using SlmKit.Tokenizers;
using SlmKit.Training;
using SlmKit.Training.Data;

namespace SlmKit.Tests.Training;

/// <summary>The committed default model is what models/default/train.json says it is.</summary>
public sealed class DefaultModelTests(ITestOutputHelper output)
{
    private static string Repo(string relative) => Path.Combine(SharedAssets.RepositoryRoot, relative);

    [Fact]
    public void The_runtime_reproduces_the_recorded_validation_loss_on_held_out_tinystories()
    {
        SharedAssets.Require("data/tinystories/tinystories_val_head.txt");
        // train.json names its data relative to the repository root.
        string previous = Environment.CurrentDirectory;
        Environment.CurrentDirectory = SharedAssets.RepositoryRoot;
        try
        {
            var config = TrainingConfig.Load(Repo("models/default/train.json"));
            using var recorded = JsonDocument.Parse(File.ReadAllText(Repo("models/default/training-result.json")));
            double expected = recorded.RootElement.GetProperty("validation_loss").GetDouble();

            var tokenizer = SlmModel.LoadTokenizer(config.Tokenizer!, null);
            var sources = config.Data.Select(p => new DataSource { Path = p, DocumentSeparator = config.DocumentSeparator }).ToArray();
            var corpus = new TrainingCorpus(sources, tokenizer, config.SequenceLength, config.ValidationFraction, config.Seed);
            var batches = corpus.ValidationBatches(config.BatchSize, config.EvalBatches);

            using var model = ModelLoader.Load(Repo("models/default/model.gguf"));
            double sumOfBatchMeans = 0;
            var logits = new float[config.SequenceLength * model.VocabSize];
            foreach (var batch in batches)
            {
                double total = 0;
                for (int b = 0; b < batch.BatchSize; b++)
                {
                    var cache = model.CreateCache(config.SequenceLength);
                    model.Forward(cache, batch.Tokens.AsSpan(b * batch.SequenceLength, batch.SequenceLength), logits, allPositions: true);
                    for (int t = 0; t < batch.SequenceLength; t++)
                    {
                        var row = logits.AsSpan(t * model.VocabSize, model.VocabSize);
                        double max = double.NegativeInfinity, sum = 0;
                        foreach (float v in row)
                            max = Math.Max(max, v);
                        foreach (float v in row)
                            sum += Math.Exp(v - max);
                        total += max + Math.Log(sum) - row[batch.Targets[b * batch.SequenceLength + t]];
                    }
                }
                sumOfBatchMeans += total / (batch.BatchSize * batch.SequenceLength);
            }
            // TrainingRun.Evaluate averages the per-batch means (the last batch may be smaller).
            Assert.Equal(expected, sumOfBatchMeans / batches.Count, 2e-3);
            Assert.True(expected < 3.5, $"validation loss {expected}");
        }
        finally
        {
            Environment.CurrentDirectory = previous;
        }
    }

    /// <summary>
    /// models/default/train.sh, step by step in process: the tokenizer learned from the same text, then the training run
    /// of train.json on it, give the committed files byte for byte (≈ 80 s on two cores). Guards the claim that the
    /// embedded model is reproduced by the project's own code, against any change to the tokenizer trainer, the data
    /// pipeline, the forward/backward kernels, the optimizer or the GGUF writer that would silently change it.
    /// </summary>
    [Fact]
    public void Train_sh_reproduces_the_committed_tokenizer_and_model_byte_for_byte()
    {
        string text = SharedAssets.Require("data/tinystories/tinystories_val_head.txt");
        string folder = Directory.CreateTempSubdirectory("slmkit-default-model-").FullName;
        try
        {
            // Step 1 of train.sh: slm tokenizer train --vocab-size 2048 --kind byte-bpe.
            string tokenizer = Path.Combine(folder, "tokenizer");
            var trainer = new TokenizerTrainer(new TokenizerTrainingOptions { Kind = TrainedTokenizerKind.ByteLevelBpe, VocabSize = 2048 });
            trainer.AddFile(text);
            trainer.Train(tokenizer);
            foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json" })
                Assert.True(File.ReadAllBytes(Path.Combine(tokenizer, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Repo(Path.Combine("models/default/tokenizer", file)))),
                    $"the retrained {file} differs from the committed one");

            // Step 2: slm train --config models/default/train.json (its paths are relative to the repository root).
            var config = TrainingConfig.Load(Repo("models/default/train.json"));
            config = config with
            {
                Tokenizer = tokenizer,
                Data = config.Data.Select(Repo).ToArray(),
                Output = Path.Combine(folder, "run"),
            };
            var trained = TrainingRun.Run(config);
            output.WriteLine($"{trained.Steps} steps, loss {trained.FinalLoss:F6}, validation {trained.FinalValidationLoss:F6}, {trained.Elapsed.TotalSeconds:F1} s");
            byte[] committed = File.ReadAllBytes(Repo("models/default/model.gguf"));
            byte[] retrained = File.ReadAllBytes(trained.GgufPath);
            Assert.Equal(committed.Length, retrained.Length);
            int first = committed.AsSpan().CommonPrefixLength(retrained);
            Assert.True(first == committed.Length, $"the retrained model.gguf first differs at byte {first} of {committed.Length}");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
