using System.Text.Json;
using SlmKit.Models;
using SlmKit.Training;
using SlmKit.Training.Data;

namespace SlmKit.Tests.Training;

/// <summary>The committed default model is what models/default/train.json says it is.</summary>
public sealed class DefaultModelTests
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
}
