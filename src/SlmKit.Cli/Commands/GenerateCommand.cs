using System.CommandLine;
using SlmKit.Inference;

namespace SlmKit.Cli.Commands;

/// <summary><c>slm generate</c>: streams only the generated text to stdout; speed goes to stderr.</summary>
internal static class GenerateCommand
{
    public static Command Create(CliConsole console)
    {
        var defaults = new GenerationOptions();
        var model = CommonOptions.Model();
        var tokenizer = CommonOptions.Tokenizer();
        var threads = CommonOptions.Threads();
        var mmap = CommonOptions.MemoryMap();
        var prompt = new Option<string>("--prompt", "-p") { Description = "Text to continue; empty starts from BOS", DefaultValueFactory = _ => "" };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Most tokens to generate", DefaultValueFactory = _ => defaults.MaxTokens };
        var temperature = new Option<float>("--temperature", "--temp") { Description = "Sampling temperature; 0 is greedy", DefaultValueFactory = _ => defaults.Temperature };
        var topK = new Option<int>("--top-k") { Description = "Keep the K most likely tokens (0: all)", DefaultValueFactory = _ => defaults.TopK };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold (1: off)", DefaultValueFactory = _ => defaults.TopP };
        var minP = new Option<float>("--min-p") { Description = "Drop tokens below min-p × the top probability (0: off)", DefaultValueFactory = _ => defaults.MinP };
        var repeatPenalty = new Option<float>("--repeat-penalty") { Description = "Repetition penalty over the last 64 tokens (1: off)", DefaultValueFactory = _ => defaults.RepetitionPenalty };
        var frequencyPenalty = new Option<float>("--frequency-penalty") { Description = "Frequency penalty (0: off)" };
        var presencePenalty = new Option<float>("--presence-penalty") { Description = "Presence penalty (0: off)" };
        var seed = new Option<ulong?>("--seed", "-s") { Description = "Random seed for reproducible sampling" };
        var stop = new Option<string[]>("--stop") { Description = "Stop before this text (repeatable)", AllowMultipleArgumentsPerToken = false };
        var context = new Option<int?>("--ctx", "-c") { Description = "Context size (default: the model's, at most 4096)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Do not print speed to stderr" };

        var command = new Command("generate", "Generate text from a prompt, streaming it to stdout")
        {
            model, tokenizer, prompt, maxTokens, temperature, topK, topP, minP, repeatPenalty, frequencyPenalty, presencePenalty, seed, stop, threads, context, mmap, quiet,
        };
        command.SetAction(result =>
        {
            var options = new GenerationOptions
            {
                MaxTokens = result.GetValue(maxTokens),
                Temperature = result.GetValue(temperature),
                TopK = result.GetValue(topK),
                TopP = result.GetValue(topP),
                MinP = result.GetValue(minP),
                RepetitionPenalty = result.GetValue(repeatPenalty),
                FrequencyPenalty = result.GetValue(frequencyPenalty),
                PresencePenalty = result.GetValue(presencePenalty),
                Seed = result.GetValue(seed),
                StopStrings = result.GetValue(stop) ?? [],
            };
            options.Validate();
            using var slm = SlmModel.Load(CommonOptions.ModelPath(result.GetValue(model)), CommonOptions.ModelOptions(result.GetValue(tokenizer), result.GetValue(threads), result.GetValue(context), result.GetValue(mmap)));
            foreach (string piece in slm.GenerateStreaming(result.GetValue(prompt) ?? "", options))
            {
                console.Out.Write(piece);
                console.Out.Flush();
            }
            console.Out.WriteLine();
            if (!result.GetValue(quiet) && slm.LastStats is { } stats)
            {
                console.Error.WriteLine(
                    $"[prompt: {stats.PromptTokens} tokens, {stats.PromptTokensPerSecond:F1} tok/s | generated: {stats.GeneratedTokens} tokens, {stats.GeneratedTokensPerSecond:F1} tok/s | stop: {stats.FinishReason.ToString().ToLowerInvariant()}]");
            }
            return 0;
        });
        return command;
    }
}
