using System.CommandLine;
using SlmKit.Kernels;
using SlmKit.Quantization;
using Spectre.Console;

namespace SlmKit.Cli.Commands;

/// <summary>
/// <c>slm quantize IN OUT --type TYPE</c>: a GGUF in F32/F16/BF16, or a Hugging Face folder that <c>slm convert</c> takes, to a quantized
/// GGUF, with a progress bar on stderr. All the work is <see cref="ModelQuantizer.Quantize"/>'s.
/// </summary>
internal static class QuantizeCommand
{
    public static Command Create(CliConsole console)
    {
        var input = new Argument<string>("input") { Description = "Source model: an F32, F16 or BF16 GGUF file, or a Hugging Face folder (config.json, *.safetensors, tokenizer.json) of a model_type that slm convert takes" };
        var output = new Argument<string>("output") { Description = "Quantized GGUF to write (written to a temporary file, renamed at the end)" };
        var type = new Option<string>("--type") { Description = "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q4_K_M, Q5_K_M, Q6_K, or F16, BF16, F32 (a plain conversion)", Required = true };
        var threads = CommonOptions.Threads();
        var command = new Command("quantize", "Quantize a GGUF model (llama.cpp-compatible types and mixes)") { input, output, type, threads };
        command.SetAction(result =>
        {
            var target = QuantizationPlan.Parse(result.GetValue(type)!);
            string source = result.GetValue(input)!, destination = result.GetValue(output)!;
            if (!File.Exists(source) && !Directory.Exists(source))
                throw new SlmKitException($"{source}: not found (a GGUF file or a Hugging Face model folder is expected)");
            if (Path.GetFullPath(source) == Path.GetFullPath(destination))
                throw new SlmKitException("the output must be a different file from the input");
            using var pool = result.GetValue(threads) is int n ? new WorkerPool(n) : null;

            var ansi = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(console.Error) });
            QuantizationSummary summary = null!;
            ansi.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(context =>
                {
                    var task = context.AddTask($"quantizing to {target}", maxValue: 1);
                    var progress = new SynchronousProgress(p =>
                    {
                        task.MaxValue = p.InputBytesTotal;
                        task.Value = p.InputBytesDone;
                        task.Description = $"{p.Index}/{p.Count} {Markup.Escape(p.Name)} → {p.Type}";
                    });
                    summary = ModelQuantizer.Quantize(source, destination, target, pool, progress);
                    task.Description = $"quantized to {target}";
                });
            string types = string.Join(", ", summary.TensorsByType.OrderBy(p => p.Key).Select(p => $"{p.Key}×{p.Value}"));
            console.Error.WriteLine($"{summary.TensorCount} tensors ({types}): {summary.InputBytes / 1e6:F1} MB → {summary.OutputBytes / 1e6:F1} MB; wrote {destination}");
            return 0;
        });
        return command;
    }

    /// <summary>Reports on the quantizing thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SynchronousProgress(Action<QuantizationProgress> report) : IProgress<QuantizationProgress>
    {
        public void Report(QuantizationProgress value) => report(value);
    }
}
