using System.Diagnostics;
using System.Globalization;
using SlmKit;
using SlmKit.Inference;

// Continuous batching: aggregate decode tokens/s with 1, 4 and 8 concurrent greedy streams through the same
// BatchScheduler the server uses (one forward step for all active sequences).
// Usage: dotnet run -c Release --project bench/SlmKit.Bench.Serving -- [MODEL.gguf] [--threads N] [--tokens N]
string? modelPath = null;
int threads = 1, tokensPerStream = 256;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--tokens": tokensPerStream = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default: modelPath = args[i]; break;
    }
}
modelPath ??= Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../../shared/assets/llama2c/stories260K/stories260K.gguf"));
if (!File.Exists(modelPath))
{
    Console.Error.WriteLine($"model not found: {modelPath} (pass a GGUF path)");
    return 2;
}

using var model = SlmModel.Load(modelPath, new SlmModelOptions { Threads = threads });
int context = Math.Min(model.ContextSize, tokensPerStream + 8);
// Warm up (JIT tiering) both the single-sequence and the batched paths before measuring.
using (var warmUp = new BatchScheduler(model.Model, model.Tokenizer, new SchedulerOptions { Parallel = 4, ContextSize = context }))
{
    var warm = new GenerationRequest { PromptTokens = [1], Options = new GenerationOptions { MaxTokens = tokensPerStream, StopAtEndOfGeneration = false } };
    await warmUp.Submit(warm).Completion;
    await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => warmUp.Submit(warm).Completion));
}

Console.WriteLine($"model: {Path.GetFileName(modelPath)}, kernel threads: {threads}, {tokensPerStream} greedy tokens per stream");
Console.WriteLine("| concurrent streams | tokens | seconds | aggregate tokens/s |");
Console.WriteLine("|---|---|---|---|");
foreach (int streams in new[] { 1, 4, 8 })
{
    using var scheduler = new BatchScheduler(model.Model, model.Tokenizer, new SchedulerOptions { Parallel = streams, ContextSize = context });
    var options = new GenerationOptions { MaxTokens = tokensPerStream, Temperature = 0, StopAtEndOfGeneration = false };
    var clock = Stopwatch.StartNew();
    var results = await Task.WhenAll(Enumerable.Range(0, streams).Select(i =>
        scheduler.Submit(new GenerationRequest { PromptTokens = [1, 100 + i], Options = options }).Completion));
    double seconds = clock.Elapsed.TotalSeconds;
    int tokens = results.Sum(r => r.CompletionTokens);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {streams} | {tokens} | {seconds:F2} | {tokens / seconds:F0} |"));
}
return 0;
