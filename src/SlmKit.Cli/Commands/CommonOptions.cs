using System.CommandLine;

namespace SlmKit.Cli.Commands;

/// <summary>Options several commands share, so each means the same everywhere.</summary>
internal static class CommonOptions
{
    public static Option<string> Model() => new("--model", "-m")
    {
        Description = "Model: a .gguf file, a Hugging Face folder, or a llama2.c .bin (with --tokenizer); default: the built-in TinyStories model",
    };

    /// <summary>The --model value, or the built-in default model when none was given.</summary>
    public static string ModelPath(string? given) => given ?? DefaultModel.Path();

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

    public static Option<bool> MemoryMap() => new("--mmap")
    {
        Description = "Map the GGUF file instead of reading it into memory backed by huge pages (the default on Linux, where decoding runs faster)",
    };

    public static SlmModelOptions ModelOptions(string? tokenizer, int? threads, int? context = null, bool memoryMap = false) =>
        new() { TokenizerPath = tokenizer, Threads = threads, ContextSize = context, MemoryMap = memoryMap ? true : null };
}
