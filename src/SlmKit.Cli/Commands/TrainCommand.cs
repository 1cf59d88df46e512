using System.CommandLine;
using System.Globalization;
using SlmKit.Training;
using Spectre.Console;

namespace SlmKit.Cli.Commands;

/// <summary>
/// <c>slm train</c>: pre-train a decoder (a Llama preset, or a llama/qwen2/gpt2 config.json) from a JSON config and/or flags. Progress on stderr; the output
/// folder gets checkpoint.bin, metrics.csv, loss.png, model.gguf and hf/.
/// </summary>
internal static class TrainCommand
{
    public static Command Create(CliConsole console)
    {
        var config = new Option<string?>("--config") { Description = "JSON config file (snake_case keys; flags override it)" };
        var preset = new Option<string?>("--preset") { Description = "Model shape: stories260k, tiny or stories15m" };
        var modelConfig = new Option<string?>("--model-config") { Description = "A Hugging Face config.json whose architecture to train (model_type llama, qwen2 or gpt2)" };
        var dim = new Option<int?>("--dim") { Description = "Hidden size" };
        var layers = new Option<int?>("--layers") { Description = "Transformer blocks" };
        var heads = new Option<int?>("--heads") { Description = "Attention heads" };
        var kvHeads = new Option<int?>("--kv-heads") { Description = "Key/value heads (GQA when fewer than --heads)" };
        var ffn = new Option<int?>("--ffn") { Description = "MLP hidden size" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer: tokenizer.json folder, GGUF, or llama2.c tokenizer.bin" };
        var data = new Option<string[]>("--data") { Description = "Training file(s): .txt, .jsonl, .parquet (repeatable)", AllowMultipleArgumentsPerToken = true };
        var textField = new Option<string?>("--text-field") { Description = "JSONL field / Parquet column with the text (default: text)" };
        var separator = new Option<string?>("--document-separator") { Description = "Plain text: marker between documents (default <|endoftext|>; \\n\\n for blank lines)" };
        var output = new Option<string?>("--out", "-o") { Description = "Output folder" };
        var steps = new Option<int?>("--steps") { Description = "Optimizer steps" };
        var batch = new Option<int?>("--batch-size") { Description = "Sequences per micro-batch" };
        var seqLen = new Option<int?>("--seq-len") { Description = "Tokens per sequence" };
        var accumulation = new Option<int?>("--grad-accum") { Description = "Micro-batches per step" };
        var learningRate = new Option<double?>("--lr") { Description = "Peak learning rate" };
        var minLearningRate = new Option<double?>("--min-lr") { Description = "Final learning rate" };
        var warmup = new Option<int?>("--warmup") { Description = "Warmup steps" };
        var schedule = new Option<string?>("--schedule") { Description = "cosine, linear or constant" };
        var evalEvery = new Option<int?>("--eval-every") { Description = "Validation loss every N steps (0: only at the end)" };
        var checkpointEvery = new Option<int?>("--checkpoint-every") { Description = "Checkpoint every N steps (0: only at the end)" };
        var seed = new Option<ulong?>("--seed") { Description = "Seed for initialisation and data order" };
        var threads = CommonOptions.Threads();
        var resume = new Option<bool>("--resume") { Description = "Continue from the output folder's checkpoint.bin (bit-exact)" };
        var json = CommonOptions.Json();

        var command = new Command("train", "Pre-train a decoder from scratch: a Llama preset or a llama/qwen2/gpt2 config.json (AdamW, warmup + cosine, checkpoints, export to GGUF and HF)")
        {
            config, preset, modelConfig, dim, layers, heads, kvHeads, ffn, tokenizer, data, textField, separator, output, steps, batch, seqLen,
            accumulation, learningRate, minLearningRate, warmup, schedule, evalEvery, checkpointEvery, seed, threads, resume, json,
        };
        command.SetAction(result =>
        {
            var c = result.GetValue(config) is { } path ? TrainingConfig.Load(path) : new TrainingConfig();
            c = c with
            {
                Preset = result.GetValue(preset) ?? c.Preset,
                ModelConfig = result.GetValue(modelConfig) ?? c.ModelConfig,
                Dim = result.GetValue(dim) ?? c.Dim,
                Layers = result.GetValue(layers) ?? c.Layers,
                Heads = result.GetValue(heads) ?? c.Heads,
                KvHeads = result.GetValue(kvHeads) ?? c.KvHeads,
                Ffn = result.GetValue(ffn) ?? c.Ffn,
                Tokenizer = result.GetValue(tokenizer) ?? c.Tokenizer,
                Data = result.GetValue(data) is { Length: > 0 } files ? files : c.Data,
                TextField = result.GetValue(textField) ?? c.TextField,
                DocumentSeparator = (result.GetValue(separator) ?? c.DocumentSeparator).Replace("\\n", "\n", StringComparison.Ordinal),
                Output = result.GetValue(output) ?? c.Output,
                Steps = result.GetValue(steps) ?? c.Steps,
                BatchSize = result.GetValue(batch) ?? c.BatchSize,
                SequenceLength = result.GetValue(seqLen) ?? c.SequenceLength,
                GradientAccumulation = result.GetValue(accumulation) ?? c.GradientAccumulation,
                LearningRate = result.GetValue(learningRate) ?? c.LearningRate,
                MinLearningRate = result.GetValue(minLearningRate) ?? c.MinLearningRate,
                WarmupSteps = result.GetValue(warmup) ?? c.WarmupSteps,
                Schedule = result.GetValue(schedule) ?? c.Schedule,
                EvalEvery = result.GetValue(evalEvery) ?? c.EvalEvery,
                CheckpointEvery = result.GetValue(checkpointEvery) ?? c.CheckpointEvery,
                Seed = result.GetValue(seed) ?? c.Seed,
                Threads = result.GetValue(threads) ?? c.Threads,
            };

            var stderr = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(console.Error) });
            using var interrupt = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;
                interrupt.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            TrainingResult trained;
            try
            {
                stderr.MarkupLine($"[grey]training to {Markup.Escape(c.Output ?? "?")}{(result.GetValue(resume) ? " (resuming)" : "")}[/]");
                trained = TrainingRun.Run(c, result.GetValue(resume), new ProgressLine(stderr, console.Error), interrupt.Token);
            }
            catch (OperationCanceledException)
            {
                console.Error.WriteLine();
                console.Error.WriteLine($"slm: training interrupted; a checkpoint was written. Continue with: slm train ... --out {c.Output} --resume");
                return 130;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
            console.Error.WriteLine();

            string plot = Path.Combine(c.Output!, "loss.png");
            string? plotProblem = LossPlot.TryWrite(trained.MetricsPath, plot);
            if (plotProblem is not null)
                console.Error.WriteLine($"slm: warning: loss.png not written ({plotProblem})");

            if (result.GetValue(json))
            {
                console.Out.WriteLine(JsonOutput.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("steps", trained.Steps);
                    w.WriteNumber("parameters", trained.Parameters);
                    w.WriteNumber("final_loss", trained.FinalLoss);
                    if (trained.FinalValidationLoss is double v)
                        w.WriteNumber("validation_loss", v);
                    w.WriteNumber("tokens_per_s", Math.Round(trained.TokensPerSecond, 1));
                    w.WriteNumber("seconds", Math.Round(trained.Elapsed.TotalSeconds, 1));
                    w.WriteString("gguf", trained.GgufPath);
                    w.WriteString("huggingface", trained.HuggingFaceFolder);
                    w.WriteString("metrics", trained.MetricsPath);
                    w.WriteEndObject();
                }, indented: false));
            }
            else
            {
                var table = new Table().HideHeaders().AddColumns("", "");
                table.AddRow("parameters", trained.Parameters.ToString("N0", CultureInfo.InvariantCulture));
                table.AddRow("final loss", trained.FinalLoss.ToString("F4", CultureInfo.InvariantCulture));
                table.AddRow("validation loss", trained.FinalValidationLoss?.ToString("F4", CultureInfo.InvariantCulture) ?? "-");
                table.AddRow("tokens/s", trained.TokensPerSecond.ToString("F0", CultureInfo.InvariantCulture));
                table.AddRow("time", trained.Elapsed.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture));
                table.AddRow("GGUF", Markup.Escape(trained.GgufPath));
                table.AddRow("HF folder", Markup.Escape(trained.HuggingFaceFolder));
                AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(console.Out) }).Write(table);
            }
            return 0;
        });
        return command;
    }

    /// <summary>Step, loss, tokens/s and ETA: rewritten in place on a terminal, one line per eval otherwise.</summary>
    private sealed class ProgressLine(IAnsiConsole console, TextWriter raw) : IProgress<TrainingProgress>
    {
        private readonly bool _interactive = !Console.IsErrorRedirected && ReferenceEquals(raw, Console.Error);

        public void Report(TrainingProgress p)
        {
            string validation = p.ValidationLoss is double v ? $" val {v:F4}" : "";
            string line = string.Create(CultureInfo.InvariantCulture,
                $"step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}{validation} lr {p.LearningRate:G3} {p.TokensPerSecond:F0} tok/s ETA {p.Remaining:hh\\:mm\\:ss}");
            if (_interactive)
                raw.Write("\r" + line.PadRight(Console.BufferWidth > 0 ? Math.Min(Console.BufferWidth - 1, 120) : 100));
            else if (p.ValidationLoss is not null || p.Step == 1 || p.Step % 50 == 0)
                console.MarkupLine(Markup.Escape(line));
        }
    }
}

/// <summary>loss.png from metrics.csv with ScottPlot; plotting is optional and never fails a run.</summary>
internal static class LossPlot
{
    public static string? TryWrite(string metricsPath, string pngPath)
    {
        try
        {
            var rows = MetricsLog.Read(metricsPath);
            var plot = new ScottPlot.Plot();
            var train = plot.Add.Scatter(rows.Select(r => (double)r.Step).ToArray(), rows.Select(r => r.Loss).ToArray());
            train.LegendText = "training loss";
            train.MarkerSize = 0;
            var validation = rows.Where(r => r.ValidationLoss is not null).ToArray();
            if (validation.Length > 0)
            {
                var val = plot.Add.Scatter(validation.Select(r => (double)r.Step).ToArray(), validation.Select(r => r.ValidationLoss!.Value).ToArray());
                val.LegendText = "validation loss";
            }
            plot.XLabel("step");
            plot.YLabel("loss (nats/token)");
            plot.ShowLegend();
            plot.SavePng(pngPath, 800, 500);
            return null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return e.Message;
        }
    }
}
