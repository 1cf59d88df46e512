using System.Diagnostics;
using System.Globalization;
using SlmKit.Models;
using SlmKit.Training;

// Training throughput of the llama2.c-style configurations: one full step (forward, loss, backward, AdamW) on
// random tokens, fp32. FLOPs per token ≈ 6·(matrix parameters) + 12·layers·seq·dim (attention scores and values,
// forward and backward), the usual estimate; embeddings are lookups and count only when tied as the output head.
// Usage: dotnet run -c Release --project bench/SlmKit.Bench.Training -- [--steps N] [--threads N] [--only NAME]
int steps = 5, threads = 0;
string? only = null;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--steps": steps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--only": only = args[++i]; break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}

var configs = new (string Name, DecoderConfig Config, int Batch, int Seq)[]
{
    ("260K", ModelPresets.Stories260K, 8, 512),
    ("15M", ModelPresets.Stories15M, 4, 256),
    ("110M-like", ModelPresets.Llama(32000, 768, 12, 12, 12, 2048), 2, 256),
};

Console.WriteLine($"threads: {(threads == 0 ? Environment.ProcessorCount : threads)}, steps timed: {steps} (after 1 warm-up step)");
Console.WriteLine("| config | parameters | batch × seq | ms/step | tokens/s | GFLOP/s |");
Console.WriteLine("|---|---|---|---|---|---|");
foreach (var (name, config, batch, seq) in configs)
{
    if (only is not null && !name.Equals(only, StringComparison.OrdinalIgnoreCase))
        continue;
    var model = new TrainableDecoder<float>(config, 1, threads);
    var optimizer = new AdamW<float>(model.Parameters, 0.9, 0.95, 1e-8, 0.1);
    var trainer = new DecoderTrainer<float>(model, optimizer, LearningRateSchedule.Constant(1e-4));
    var random = new Random(1);
    var tokens = new int[batch * seq];
    var targets = new int[batch * seq];
    TokenBatch Next()
    {
        for (int i = 0; i < tokens.Length; i++)
        {
            tokens[i] = random.Next(config.VocabSize);
            targets[i] = random.Next(config.VocabSize);
        }
        return new TokenBatch(tokens, targets, batch, seq);
    }
    trainer.Step(Next());
    var times = new List<double>();
    for (int s = 0; s < steps; s++)
    {
        var b = Next();
        var clock = Stopwatch.StartNew();
        trainer.Step(b);
        times.Add(clock.Elapsed.TotalSeconds);
    }
    times.Sort();
    double median = times[times.Count / 2];
    long matrixParameters = model.Parameters.Where(p => p.Kind == ParameterKind.Weight).Sum(p => (long)p.Value.Length)
        + (config.TiedEmbeddings ? (long)config.VocabSize * config.HiddenSize : 0);
    double flopsPerToken = 6.0 * matrixParameters + 12.0 * config.LayerCount * seq * config.HiddenSize;
    double tokensPerSecond = batch * seq / median;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {name} | {model.ParameterCount / 1e6:F2} M | {batch} × {seq} | {median * 1000:F0} | {tokensPerSecond:F0} | {tokensPerSecond * flopsPerToken / 1e9:F1} |"));
}
return 0;
