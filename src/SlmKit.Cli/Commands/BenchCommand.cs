using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using SlmKit.Inference;

namespace SlmKit.Cli.Commands;

/// <summary><c>slm bench</c>: prefill and decode speed in the spirit of llama-bench (mean ± sd over repetitions).</summary>
internal static class BenchCommand
{
    public static Command Create(CliConsole console)
    {
        var model = CommonOptions.Model();
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length for the prefill test (pp)", DefaultValueFactory = _ => 128 };
        var genTokens = new Option<int>("--gen-tokens") { Description = "Tokens generated one at a time (tg)", DefaultValueFactory = _ => 64 };
        var repetitions = new Option<int>("--repetitions", "-r") { Description = "Measured repetitions (after the warm-up)", DefaultValueFactory = _ => 5 };
        var warmUp = new Option<double>("--warmup")
        {
            Description = "Seconds of unmeasured full-length runs first, at least one: page cache and buffers settle (and, where .NET's tiered JIT is on, as in applications that embed SlmKit, hot code is optimised only after a while)",
            DefaultValueFactory = _ => Benchmark.WarmUpSeconds,
        };
        var threads = CommonOptions.Threads();
        var mmap = CommonOptions.MemoryMap();
        var json = CommonOptions.Json();
        var command = new Command("bench", "Measure prefill and decode tokens per second") { model, promptTokens, genTokens, repetitions, warmUp, threads, mmap, json };
        command.SetAction(result =>
        {
            string path = CommonOptions.ModelPath(result.GetValue(model));
            int pp = result.GetValue(promptTokens), tg = result.GetValue(genTokens), reps = result.GetValue(repetitions);
            int threadCount = result.GetValue(threads) ?? Environment.ProcessorCount;
            using var slm = SlmModel.Load(path, CommonOptions.ModelOptions(null, threadCount, pp + tg + 1, result.GetValue(mmap)));
            var measured = Benchmark.Run(slm.Model, pp, tg, reps, warmUpSeconds: result.GetValue(warmUp));
            var (ppMean, ppSd) = BenchmarkResult.Summarize(measured.PrefillTokensPerSecond);
            var (tgMean, tgSd) = BenchmarkResult.Summarize(measured.DecodeTokensPerSecond);
            long size = File.Exists(path) ? new FileInfo(path).Length : Directory.EnumerateFiles(path).Sum(f => new FileInfo(f).Length);
            long peak = Process.GetCurrentProcess().PeakWorkingSet64;
            string types = string.Join("+", slm.Info.ParametersByType.OrderByDescending(p => p.Value).Select(p => p.Key));
            if (result.GetValue(json))
            {
                console.Out.WriteLine(JsonOutput.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("model", Path.GetFullPath(path));
                    w.WriteString("types", types);
                    w.WriteNumber("size_bytes", size);
                    w.WriteNumber("parameters", slm.Info.ParameterCount);
                    w.WriteNumber("threads", threadCount);
                    w.WriteNumber("prompt_tokens", pp);
                    w.WriteNumber("gen_tokens", tg);
                    w.WriteNumber("repetitions", reps);
                    w.WriteNumber("prefill_tokens_per_s", ppMean);
                    w.WriteNumber("prefill_tokens_per_s_sd", ppSd);
                    w.WriteNumber("decode_tokens_per_s", tgMean);
                    w.WriteNumber("decode_tokens_per_s_sd", tgSd);
                    w.WriteNumber("peak_memory_bytes", peak);
                    w.WriteEndObject();
                }));
                return 0;
            }
            var c = CultureInfo.InvariantCulture;
            string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(path));
            console.Out.WriteLine("| model | types | size | params | threads | test | t/s |");
            console.Out.WriteLine("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
            string head = string.Create(c, $"| {name} | {types} | {size / 1048576.0:F2} MiB | {slm.Info.ParameterCount / 1e6:F2} M | {threadCount}");
            console.Out.WriteLine(string.Create(c, $"{head} | pp{pp} | {ppMean:F2} ± {ppSd:F2} |"));
            console.Out.WriteLine(string.Create(c, $"{head} | tg{tg} | {tgMean:F2} ± {tgSd:F2} |"));
            console.Out.WriteLine(string.Create(c, $"peak memory: {peak / 1048576.0:F1} MiB"));
            return 0;
        });
        return command;
    }
}
