using System.Diagnostics;
using System.Globalization;
using System.Text;
using SlmKit.Formats;
using SlmKit.Tokenizers;
using SlmKit.Training.Data;
using SlmKit.Training.Export;

namespace SlmKit.Training;

/// <summary>One line of progress: reported after every step.</summary>
public sealed record TrainingProgress(int Step, int TotalSteps, double Loss, double? ValidationLoss, double LearningRate, double GradientNorm,
    double TokensPerSecond, TimeSpan Elapsed)
{
    public TimeSpan Remaining => Step == 0 ? TimeSpan.Zero : Elapsed / Step * (TotalSteps - Step);
}

/// <summary>What a finished run produced.</summary>
public sealed record TrainingResult(int Steps, double FinalLoss, double? FinalValidationLoss, double TokensPerSecond, TimeSpan Elapsed,
    long Parameters, string GgufPath, string HuggingFaceFolder, string MetricsPath, IReadOnlyList<TrainingProgress> History);

/// <summary>
/// A pre-training run from a <see cref="TrainingConfig"/>, top to bottom: load the tokenizer, build the model,
/// stream batches, step, evaluate, checkpoint, export. Files in the output folder: <c>checkpoint.bin</c>
/// (resume), <c>metrics.csv</c>, <c>model.gguf</c>, <c>hf/</c>, <c>training-config.json</c>.
/// </summary>
public static class TrainingRun
{
    public const string CheckpointFile = "checkpoint.bin";
    public const string MetricsFile = "metrics.csv";
    public const string GgufFile = "model.gguf";
    public const string HuggingFaceFolder = "hf";

    public static TrainingResult Run(TrainingConfig config, bool resume = false, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        config.Validate();
        string output = config.Output!;
        int? vocabHint = config.VocabSize ?? (config.Preset?.ToLowerInvariant() == "stories260k" ? 512 : null);
        Tokenizer tokenizer = SlmModel.LoadTokenizer(config.Tokenizer!, vocabHint);
        TrainingArchitecture architecture = config.ResolveModel(tokenizer.VocabSize);
        ModelExport.EnsureExportable(architecture); // before training, not after it
        var sources = config.Data.Select(path => new DataSource { Path = path, TextField = config.TextField, DocumentSeparator = config.DocumentSeparator }).ToArray();
        foreach (var source in sources)
            _ = DocumentReader.Read(source); // checks existence and emptiness now, before anything is written

        var model = new TrainableDecoder<float>(architecture.Config, config.Seed, config.Threads);
        IOptimizer<float> optimizer = config.Optimizer == "sgd"
            ? new SgdMomentum<float>(model.Parameters, config.Momentum, config.WeightDecay)
            : new AdamW<float>(model.Parameters, config.Beta1, config.Beta2, 1e-8, config.WeightDecay);
        var schedule = config.Schedule switch
        {
            "constant" => LearningRateSchedule.Constant(config.LearningRate),
            "linear" => LearningRateSchedule.WarmupLinear(config.LearningRate, config.MinLearningRate, config.WarmupSteps, config.Steps),
            _ => LearningRateSchedule.WarmupCosine(config.LearningRate, config.MinLearningRate, config.WarmupSteps, config.Steps),
        };
        var trainer = new DecoderTrainer<float>(model, optimizer, schedule, config.GradClip);
        var corpus = new TrainingCorpus(sources, tokenizer, config.SequenceLength, config.ValidationFraction, config.Seed);
        var validation = corpus.ValidationBatches(config.BatchSize, config.EvalBatches);
        Directory.CreateDirectory(output);

        string checkpointPath = Path.Combine(output, CheckpointFile);
        var state = new TrainingCheckpoint.State(0, 0, 0, 0);
        if (resume)
        {
            state = TrainingCheckpoint.Load(checkpointPath, model.Parameters, optimizer.StateBuffers);
            trainer.RestoreStepCount(state.Step);
        }
        var metrics = new MetricsLog(Path.Combine(output, MetricsFile), keepUpToStep: state.Step);

        using var batches = corpus.TrainingBatches(config.BatchSize).GetEnumerator();
        for (long i = 0; i < state.BatchesConsumed; i++)
            batches.MoveNext();
        long consumed = state.BatchesConsumed;
        long tokensSeen = state.TokensSeen;
        var clock = Stopwatch.StartNew();
        double priorSeconds = state.ElapsedSeconds;
        long tokensAtStart = tokensSeen;
        var history = new List<TrainingProgress>();
        var micro = new List<TokenBatch>(config.GradientAccumulation);
        TrainingProgress? last = null;

        for (int step = state.Step; step < config.Steps; step++)
        {
            micro.Clear();
            for (int m = 0; m < config.GradientAccumulation; m++)
            {
                batches.MoveNext();
                micro.Add(batches.Current);
                consumed++;
                tokensSeen += batches.Current.Tokens.Length;
            }
            var result = trainer.Step(micro);
            if (!double.IsFinite(result.Loss))
                throw new SlmKitException($"the loss became {result.Loss} at step {step + 1}: lower the learning rate");

            bool lastStep = step + 1 == config.Steps;
            double? validationLoss = (config.EvalEvery > 0 && (step + 1) % config.EvalEvery == 0) || lastStep ? Evaluate(model, validation) : null;
            double seconds = clock.Elapsed.TotalSeconds;
            var report = new TrainingProgress(step + 1, config.Steps, result.Loss, validationLoss, result.LearningRate, result.GradientNorm,
                (tokensSeen - tokensAtStart) / Math.Max(seconds, 1e-9), TimeSpan.FromSeconds(priorSeconds + seconds));
            metrics.Append(report);
            history.Add(report);
            progress?.Report(report);
            last = report;

            bool stop = cancellationToken.IsCancellationRequested;
            if (stop || lastStep || (config.CheckpointEvery > 0 && (step + 1) % config.CheckpointEvery == 0))
            {
                TrainingCheckpoint.Save(checkpointPath, new TrainingCheckpoint.State(step + 1, consumed, priorSeconds + seconds, tokensSeen),
                    model.Parameters, optimizer.StateBuffers);
            }
            if (stop)
                throw new OperationCanceledException("training was cancelled; a checkpoint was written, continue with --resume");
        }

        var parameters = model.Parameters.Select(p => (p.Name, p.Shape, p.Value)).ToList();
        string ggufPath = Path.Combine(output, GgufFile);
        string hfFolder = Path.Combine(output, HuggingFaceFolder);
        string name = Path.GetFileName(Path.GetFullPath(output).TrimEnd(Path.DirectorySeparatorChar));
        ModelExport.WriteGguf(ggufPath, architecture, parameters, tokenizer, name);
        ModelExport.WriteHuggingFace(hfFolder, architecture, parameters, tokenizer, Directory.Exists(config.Tokenizer) ? config.Tokenizer : null);

        var final = last ?? throw new SlmKitException("nothing to train: the run was already complete");
        return new TrainingResult(config.Steps, final.Loss, final.ValidationLoss, final.TokensPerSecond, final.Elapsed, model.ParameterCount,
            ggufPath, hfFolder, metrics.Path, history);
    }

    /// <summary>Mean loss over the held-out batches; null when there are none.</summary>
    public static double? Evaluate(TrainableDecoder<float> model, IReadOnlyList<TokenBatch> batches)
    {
        if (batches.Count == 0)
            return null;
        double sum = 0;
        foreach (var b in batches)
            sum += model.EvaluateLoss(b.Tokens, b.Targets, b.BatchSize, b.SequenceLength);
        return sum / batches.Count;
    }
}

/// <summary>
/// metrics.csv: one row per step. On resume, rows after the checkpoint's step are dropped so the file reads as
/// one uninterrupted run.
/// </summary>
public sealed class MetricsLog
{
    private const string Header = "step,loss,val_loss,learning_rate,grad_norm,tokens_per_s,elapsed_s";

    public MetricsLog(string path, int keepUpToStep)
    {
        Path = path;
        var kept = new List<string> { Header };
        if (keepUpToStep > 0 && File.Exists(path))
        {
            foreach (string line in File.ReadLines(path).Skip(1))
            {
                int comma = line.IndexOf(',', StringComparison.Ordinal);
                if (comma > 0 && int.TryParse(line.AsSpan(0, comma), NumberStyles.Integer, CultureInfo.InvariantCulture, out int step) && step <= keepUpToStep)
                    kept.Add(line);
            }
        }
        AtomicFile.Write(path, s => s.Write(Encoding.UTF8.GetBytes(string.Join('\n', kept) + "\n")));
    }

    public string Path { get; }

    public void Append(TrainingProgress p)
    {
        string row = string.Create(CultureInfo.InvariantCulture,
            $"{p.Step},{p.Loss:R},{(p.ValidationLoss is double v ? v.ToString("R", CultureInfo.InvariantCulture) : "")},{p.LearningRate:R},{p.GradientNorm:R},{p.TokensPerSecond:F1},{p.Elapsed.TotalSeconds:F3}\n");
        File.AppendAllText(Path, row);
    }

    /// <summary>Reads (step, loss, validation loss) rows back, e.g. for plotting.</summary>
    public static IReadOnlyList<(int Step, double Loss, double? ValidationLoss)> Read(string path)
    {
        var rows = new List<(int, double, double?)>();
        foreach (string line in File.ReadLines(path).Skip(1))
        {
            string[] f = line.Split(',');
            if (f.Length < 3)
                continue;
            rows.Add((int.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[1], CultureInfo.InvariantCulture),
                f[2].Length > 0 ? double.Parse(f[2], CultureInfo.InvariantCulture) : null));
        }
        return rows;
    }
}
