using System.Globalization;
using System.Text.Json;
using SlmKit.Inference;
using SlmKit.Models;

namespace SlmKit.Tests.Quantization;

/// <summary><c>slm bench</c> and <c>slm perplexity</c>, with perplexity checked against llama.cpp's logits.</summary>
public sealed class BenchAndPerplexityTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-ppl-").FullName;

    private static string Stories => SharedAssets.Require("assets/llama2c/stories260K/stories260K.gguf");

    private static string Text => SharedAssets.Require("data/tinystories/tinystories_val_head.txt");

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = SlmKit.Cli.Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Perplexity_equals_the_one_computed_from_llama_cpp_logits()
    {
        const int context = 128, chunks = 3;
        using var slm = SlmModel.Load(Stories, new SlmModelOptions { Threads = 2 });
        int[] tokens = slm.Tokenizer.Encode(File.ReadAllText(Text)[..20000], addSpecial: true)[..(context * chunks)];
        int bos = slm.Tokenizer.BosId!.Value;
        var ours = PerplexityEvaluator.Evaluate(slm.Model, tokens, context, bos);

        // The same method on llama.cpp's logits of the same chunks.
        double nll = 0;
        long count = 0;
        for (int c = 0; c < chunks; c++)
        {
            int[] chunk = tokens[(c * context)..((c + 1) * context)];
            chunk[0] = bos;
            float[] logits = LlamaCppForward.Logits(Stories, chunk);
            int vocab = logits.Length / context;
            for (int j = context / 2; j < context - 1; j++)
            {
                var row = logits.AsSpan(j * vocab, vocab);
                double max = row.ToArray().Max(), sum = 0;
                foreach (float v in row)
                    sum += Math.Exp(v - max);
                nll -= row[chunk[j + 1]] - max - Math.Log(sum);
                count++;
            }
        }
        double expected = Math.Exp(nll / count);
        Assert.Equal(count, ours.ScoredTokens);
        Assert.True(Math.Abs(ours.Perplexity - expected) <= 1e-3 * expected, $"PPL {ours.Perplexity} vs llama.cpp logits {expected}");
        Assert.True(ours.Uncertainty > 0 && ours.Uncertainty < ours.Perplexity);
    }

    [Fact]
    public void Perplexity_prints_the_llama_cpp_line_and_kl_divergence_against_a_reference()
    {
        string quantized = Path.Combine(_folder, "q8.gguf");
        Assert.Equal(0, Run("quantize", Stories, quantized, "--type", "Q8_0").Code);
        var (code, output, error) = Run("perplexity", "--model", quantized, "--reference", Stories, "--file", Text, "--ctx", "128", "--chunks", "4", "--threads", "2");
        Assert.True(code == 0, error);
        Assert.Matches(@"Final estimate: PPL = \d+\.\d{4} \+/- \d+\.\d{5}", output);
        Assert.Contains("Mean KLD:", output);
        Assert.Contains("Same top token:", output);
        Assert.Contains("[4/4]", error);

        (code, output, _) = Run("perplexity", "--model", Stories, "--reference", Stories, "--file", Text, "--ctx", "128", "--chunks", "2", "--json");
        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.Equal(root.GetProperty("perplexity").GetDouble(), root.GetProperty("reference_perplexity").GetDouble(), 9);
        Assert.Equal(0, root.GetProperty("mean_kl_divergence").GetDouble(), 9);
        Assert.Equal(1.0, root.GetProperty("same_top_token_fraction").GetDouble());
        Assert.Equal(2, root.GetProperty("chunks").GetInt32());
    }

    [Fact]
    public void Perplexity_refuses_a_text_shorter_than_one_context()
    {
        string text = Path.Combine(_folder, "short.txt");
        File.WriteAllText(text, "Once upon a time.");
        var (code, _, error) = Run("perplexity", "--model", Stories, "--file", text, "--ctx", "128");
        Assert.Equal(2, code);
        Assert.Contains("fewer than one context of 128", error);
    }

    [Fact]
    public void Bench_reports_mean_and_sd_as_a_table_and_as_json()
    {
        var (code, output, error) = Run("bench", "--model", Stories, "--prompt-tokens", "16", "--gen-tokens", "8", "--repetitions", "2", "--warmup", "0", "--threads", "2", "--json");
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.True(root.GetProperty("prefill_tokens_per_s").GetDouble() > 0);
        Assert.True(root.GetProperty("decode_tokens_per_s").GetDouble() > 0);
        Assert.True(root.GetProperty("peak_memory_bytes").GetInt64() > 0);
        Assert.Equal(2, root.GetProperty("repetitions").GetInt32());

        (code, output, _) = Run("bench", "--model", Stories, "--prompt-tokens", "16", "--gen-tokens", "8", "--repetitions", "2", "--warmup", "0", "--threads", "1");
        Assert.Equal(0, code);
        Assert.Matches(@"\| pp16 \| [\d.]+ ± [\d.]+ \|", output);
        Assert.Matches(@"\| tg8 \| [\d.]+ ± [\d.]+ \|", output);
        Assert.Contains("peak memory", output);

        (code, _, error) = Run("bench", "--model", Stories, "--warmup", "-1");
        Assert.NotEqual(0, code);
        Assert.Contains("warm-up must be 0 seconds or more", error);
        Assert.DoesNotContain("   at ", error);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
