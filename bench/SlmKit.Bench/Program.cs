using System.Diagnostics;
using System.Globalization;
using System.Text;
using SlmKit.Formats;
using SlmKit.Quantization;

namespace SlmKit.Bench;

/// <summary>
/// SlmKit against llama.cpp (LLamaSharp 0.30) on the same GGUF files in one process, runs alternating, plus the
/// machine's memory read bandwidth and each decode figure as a share of the bandwidth limit.
/// <code>dotnet run -c Release --project bench/SlmKit.Bench -- [--models 135m,360m] [--types f16,q8_0,q4_0,q4_k_m]
///   [--repetitions 3] [--prompt-tokens 128] [--gen-tokens 64] [--threads 2] [--work DIR] [--docs docs/performance.md]</code>
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i + 1 < args.Length; i += 2)
            options[args[i].TrimStart('-')] = args[i + 1];
        string Get(string key, string fallback) => options.GetValueOrDefault(key, fallback);
        int threads = int.Parse(Get("threads", "2"), CultureInfo.InvariantCulture);
        int repetitions = int.Parse(Get("repetitions", "3"), CultureInfo.InvariantCulture);
        int promptTokens = int.Parse(Get("prompt-tokens", "128"), CultureInfo.InvariantCulture);
        int genTokens = int.Parse(Get("gen-tokens", "64"), CultureInfo.InvariantCulture);
        string work = Get("work", Path.Combine(Path.GetTempPath(), "slmkit-bench"));
        string? docs = options.GetValueOrDefault("docs");
        var shapes = Get("models", "135m,360m").Split(',').Select(m => m.Trim().ToLowerInvariant() switch
        {
            "135m" => SmolLmShape.Smol135M,
            "360m" => SmolLmShape.Smol360M,
            _ => throw new ArgumentException($"unknown model '{m}' (135m or 360m)"),
        }).ToArray();
        string[] types = Get("types", "f16,q8_0,q4_0,q4_k_m").Split(',').Select(t => t.Trim().ToUpperInvariant()).ToArray();
        Directory.CreateDirectory(work);
        if (options.ContainsKey("kernels") || args.Contains("--kernels"))
        {
            Console.WriteLine(KernelBench.Run());
            return 0;
        }

        var total = Stopwatch.StartNew();

        var rows = new List<Row>();
        using var bandwidth = new MemoryBandwidth(threads);
        var random = new Random(7);
        int[] prompt = new int[promptTokens];
        prompt[0] = 1;
        for (int i = 1; i < prompt.Length; i++)
            prompt[i] = random.Next(3, 49152);

        foreach (var shape in shapes)
        {
            string f16 = Path.Combine(work, $"{shape.Name}-F16.gguf");
            if (!File.Exists(f16))
            {
                Console.Error.WriteLine($"writing {f16}");
                RandomSmolLm.Write(shape, f16);
            }
            foreach (string type in types)
            {
                string path = type == "F16" ? f16 : Path.Combine(work, $"{shape.Name}-{type}.gguf");
                if (!File.Exists(path))
                {
                    Console.Error.WriteLine($"quantizing {path}");
                    ModelQuantizer.Quantize(f16, path, QuantizationPlan.Parse(type));
                }
                rows.Add(Measure(shape, type, path, prompt, genTokens, repetitions, threads, bandwidth));
                var r = rows[^1];
                Console.Error.WriteLine($"{shape.Name} {type}: prefill {r.SlmPrefill:F0} vs {r.LlamaPrefill:F0}, decode {r.SlmDecode:F1} vs {r.LlamaDecode:F1} tok/s, bandwidth {r.Bandwidth:F1} GB/s");
            }
        }

        string table = Table(rows, threads, promptTokens, genTokens, repetitions);
        Console.WriteLine(table);
        Console.Error.WriteLine($"total {total.Elapsed.TotalSeconds:F0} s");
        if (docs is not null)
            WriteDocs(docs, table);
        return 0;
    }

    private sealed record Row(string Model, string Type, long FileBytes, long TensorBytes,
        double SlmPrefill, double LlamaPrefill, double SlmDecode, double LlamaDecode, double Bandwidth);

    private static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }

    private static Row Measure(SmolLmShape shape, string type, string path, int[] prompt, int generate, int repetitions, int threads, MemoryBandwidth bandwidth)
    {
        long tensorBytes;
        using (var gguf = GgufFile.Open(path))
            tensorBytes = gguf.Tensors.Sum(t => t.ByteLength);
        using var slm = new SlmKitEngine(path, threads);
        using var llama = new LlamaCppEngine(path, threads);
        // Warm-up, not counted: page cache and allocations on both sides, and on ours the JIT's tiering, which
        // recompiles hot methods optimised only after they have run a while (the first ≈ 2 s of decoding ran at 40-70 %
        // of the steady speed on SmolLM-135M). Full-length runs for Benchmark.WarmUpSeconds on each engine, at least one.
        foreach (IEngine engine in new IEngine[] { slm, llama })
        {
            var warmUp = Stopwatch.StartNew();
            do
                engine.Run(prompt, generate);
            while (warmUp.Elapsed.TotalSeconds < SlmKit.Inference.Benchmark.WarmUpSeconds);
        }
        // The bandwidth limit is measured before each repetition, between the engines' runs, and its median set against
        // theirs: this shared machine's speed drifts by tens of percent over minutes, and one reading taken before the
        // runs (as an earlier version did) once dipped to 33 GB/s and put a decode at 86 % of a limit it never had.
        var bw = new List<double>();
        var sp = new List<double>();
        var sd = new List<double>();
        var lp = new List<double>();
        var ld = new List<double>();
        for (int r = 0; r < repetitions; r++)
        {
            bw.Add(bandwidth.MeasureGBps());
            // Alternate which engine goes first, so neither always runs on a warmer (or hotter) machine.
            RunResult a, b;
            if (r % 2 == 0)
            {
                a = slm.Run(prompt, generate);
                b = llama.Run(prompt, generate);
            }
            else
            {
                b = llama.Run(prompt, generate);
                a = slm.Run(prompt, generate);
            }
            sp.Add(a.PrefillTokensPerSecond);
            sd.Add(a.DecodeTokensPerSecond);
            lp.Add(b.PrefillTokensPerSecond);
            ld.Add(b.DecodeTokensPerSecond);
        }
        return new Row(shape.Name, type, new FileInfo(path).Length, tensorBytes, Median(sp), Median(lp), Median(sd), Median(ld), Median(bw));
    }

    private static string Table(List<Row> rows, int threads, int prompt, int generate, int repetitions)
    {
        var s = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        s.AppendLine(c, $"{threads} threads per engine, prefill {prompt} tokens in one batch, decode {generate} tokens greedily; medians of " +
            $"{repetitions} alternating runs after a warm-up. Bandwidth: memory read bandwidth measured before each repetition, between " +
            $"the engines' runs ({threads} threads summing a 1 GiB buffer, best of 3 passes), median. Decode limit = bandwidth ÷ weight bytes read per token.");
        s.AppendLine();
        s.AppendLine("| model | type | file MB | prefill SlmKit | prefill llama.cpp | ratio | decode SlmKit | decode llama.cpp | ratio | bandwidth GB/s | decode limit | SlmKit % of limit | llama.cpp % of limit |");
        s.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            double limit = r.Bandwidth * 1e9 / r.TensorBytes;
            s.AppendLine(c, $"| {r.Model} | {r.Type} | {r.FileBytes / 1e6:F0} | {r.SlmPrefill:F0} | {r.LlamaPrefill:F0} | {r.SlmPrefill / r.LlamaPrefill:F2}× | " +
                $"{r.SlmDecode:F1} | {r.LlamaDecode:F1} | {r.SlmDecode / r.LlamaDecode:F2}× | {r.Bandwidth:F1} | {limit:F0} | {r.SlmDecode / limit:P0} | {r.LlamaDecode / limit:P0} |");
        }
        return s.ToString();
    }

    private static void WriteDocs(string path, string table)
    {
        const string begin = "<!-- bench:begin -->", end = "<!-- bench:end -->";
        string text = File.Exists(path) ? File.ReadAllText(path) : $"# Performance\n\n{begin}\n{end}\n";
        int a = text.IndexOf(begin, StringComparison.Ordinal), b = text.IndexOf(end, StringComparison.Ordinal);
        if (a < 0 || b < a)
            text += $"\n{begin}\n{end}\n";
        a = text.IndexOf(begin, StringComparison.Ordinal);
        b = text.IndexOf(end, StringComparison.Ordinal);
        string stamp = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        text = text[..(a + begin.Length)] + $"\nMeasured {stamp} on {Environment.ProcessorCount} cores ({System.Runtime.InteropServices.RuntimeInformation.OSDescription}).\n\n" + table + text[b..];
        File.WriteAllText(path, text);
    }
}
