using System.CommandLine;

namespace SlmKit.Cli.Commands;

/// <summary>Options several commands share, so each means the same everywhere.</summary>
internal static class CommonOptions
{
    public static Option<string> Model(bool required = true) => new("--model", "-m")
    {
        Description = "Model: a .gguf file, a Hugging Face folder, or a llama2.c .bin (with --tokenizer)",
        Required = required,
    };

    public static Option<string?> Tokenizer() => new("--tokenizer")
    {
        Description = "Tokenizer to use instead of the model's own: llama2.c tokenizer.bin, tokenizer folder, or GGUF",
    };

    public static Option<int?> Threads() => new("--threads", "-t")
    {
        Description = "Threads for the kernels (default: all cores)",
    };

    public static Option<bool> Json() => new("--json")
    {
        Description = "Print JSON for scripts instead of text",
    };

    public static SlmModelOptions ModelOptions(string? tokenizer, int? threads, int? context = null) =>
        new() { TokenizerPath = tokenizer, Threads = threads, ContextSize = context };
}
