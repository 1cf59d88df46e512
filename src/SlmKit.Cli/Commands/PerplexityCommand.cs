using System.CommandLine;
using System.Globalization;
using SlmKit.Inference;

namespace SlmKit.Cli.Commands;

/// <summary>
/// <c>slm perplexity</c>: llama-perplexity's chunked perplexity (second half of each window scored), and with
/// <c>--reference</c> the mean KL divergence and same-top-token share of the model against a higher-precision one.
/// </summary>
internal static class PerplexityCommand
{
    public static Command Create(CliConsole console)
    {
        var model = CommonOptions.Model();
        var file = new Option<string>("--file", "-f") { Description = "UTF-8 text to score (e.g. wikitext-2 wiki.test.raw)", Required = true };
        var context = new Option<int>("--ctx", "-c") { Description = "Context (chunk) size in tokens", DefaultValueFactory = _ => 512 };
        var reference = new Option<string?>("--reference") { Description = "Higher-precision model: report mean KL divergence and same top token %" };
        var maxChunks = new Option<int?>("--chunks") { Description = "Score at most this many chunks" };
        var threads = CommonOptions.Threads();
        var mmap = CommonOptions.MemoryMap();
        var json = CommonOptions.Json();
        var command = new Command("perplexity", "Perplexity of a text (llama.cpp's method), optionally KL divergence against a reference model")
        {
            model, file, context, reference, maxChunks, threads, mmap, json,
        };
        command.SetAction(result =>
        {
            int ctx = result.GetValue(context);
            string textPath = result.GetValue(file)!;
            if (!File.Exists(textPath))
                throw new SlmKitException($"{textPath}: file not found");
            using var slm = SlmModel.Load(CommonOptions.ModelPath(result.GetValue(model)), CommonOptions.ModelOptions(null, result.GetValue(threads), ctx, result.GetValue(mmap)));
            if (slm.Info.ContextLength < ctx)
                throw new SlmKitException($"--ctx {ctx} is longer than the model's context ({slm.Info.ContextLength})");
            using var referenceModel = result.GetValue(reference) is { } referencePath
                ? SlmModel.Load(referencePath, CommonOptions.ModelOptions(null, result.GetValue(threads), ctx, result.GetValue(mmap)))
                : null;
            int[] tokens = slm.Tokenizer.Encode(File.ReadAllText(textPath), addSpecial: true);
            if (result.GetValue(maxChunks) is int limit && limit > 0 && (long)limit * ctx < tokens.Length)
                tokens = tokens[..(limit * ctx)];
            int? bos = slm.Tokenizer.AddBos ? slm.Tokenizer.BosId : null;
            var c = CultureInfo.InvariantCulture;
            bool asJson = result.GetValue(json);
            var outcome = PerplexityEvaluator.Evaluate(slm.Model, tokens, ctx, bos, referenceModel?.Model,
                (chunk, chunks, running) => console.Error.Write(string.Create(c, $"[{chunk}/{chunks}] {running:F4}{(chunk == chunks ? "\n" : " ")}")));
            if (asJson)
            {
                console.Out.WriteLine(JsonOutput.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("perplexity", outcome.Perplexity);
                    w.WriteNumber("perplexity_uncertainty", outcome.Uncertainty);
                    w.WriteNumber("chunks", outcome.Chunks);
                    w.WriteNumber("context", ctx);
                    w.WriteNumber("scored_tokens", outcome.ScoredTokens);
                    if (outcome.MeanKlDivergence is double kl)
                    {
                        w.WriteNumber("reference_perplexity", outcome.ReferencePerplexity!.Value);
                        w.WriteNumber("mean_kl_divergence", kl);
                        w.WriteNumber("mean_kl_divergence_uncertainty", outcome.KlUncertainty!.Value);
                        w.WriteNumber("same_top_token_fraction", outcome.SameTopTokenFraction!.Value);
                    }
                    w.WriteEndObject();
                }));
                return 0;
            }
            console.Out.WriteLine(string.Create(c, $"Final estimate: PPL = {outcome.Perplexity:F4} +/- {outcome.Uncertainty:F5}"));
            if (outcome.MeanKlDivergence is double divergence)
            {
                console.Out.WriteLine(string.Create(c, $"Reference PPL = {outcome.ReferencePerplexity:F4}"));
                console.Out.WriteLine(string.Create(c, $"Mean KLD: {divergence:F6} ± {outcome.KlUncertainty:F6}"));
                console.Out.WriteLine(string.Create(c, $"Same top token: {outcome.SameTopTokenFraction * 100:F3} %"));
            }
            return 0;
        });
        return command;
    }
}
