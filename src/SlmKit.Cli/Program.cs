using System.CommandLine;
using SlmKit.Cli.Commands;

namespace SlmKit.Cli;

/// <summary>
/// <c>slm</c>: results go to stdout, diagnostics to stderr. A problem the user can fix (bad file, bad argument)
/// prints one line and exits with 2; no stack trace unless SLMKIT_DEBUG=1.
/// </summary>
public static class Program
{
    public const int UserError = 2;

    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the CLI with the given writers (tests call this in-process).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var console = new CliConsole(stdout, stderr);
        var root = new RootCommand("slm — run small language models on the CPU, in pure .NET.\nModels: a GGUF file, a Hugging Face folder (config.json + *.safetensors), or a llama2.c .bin with --tokenizer.");
        root.Subcommands.Add(GenerateCommand.Create(console));
        root.Subcommands.Add(InfoCommand.Create(console));
        root.Subcommands.Add(TokenizeCommand.Create(console));
        root.Subcommands.Add(LogitsCommand.Create(console));
        root.Subcommands.Add(TokenizerCommand.Create(console));
        root.Subcommands.Add(TrainCommand.Create(console));
        root.Subcommands.Add(ConvertCommand.Create(console));
        root.Subcommands.Add(ServeCommand.Create(console));
        root.Subcommands.Add(QuantizeCommand.Create(console));
        root.Subcommands.Add(BenchCommand.Create(console));
        root.Subcommands.Add(PerplexityCommand.Create(console));

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
                stderr.WriteLine($"slm: {error.Message}");
            stderr.WriteLine("Run 'slm --help' (or 'slm COMMAND --help') for usage.");
            return UserError;
        }

        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (Unwrap(e) is SlmKitException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"slm: {Unwrap(e).Message}");
            if (Environment.GetEnvironmentVariable("SLMKIT_DEBUG") == "1")
                stderr.WriteLine(e);
            return UserError;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"slm: internal error: {Unwrap(e).Message} (set SLMKIT_DEBUG=1 for details)");
            if (Environment.GetEnvironmentVariable("SLMKIT_DEBUG") == "1")
                stderr.WriteLine(e);
            return 1;
        }
    }

    private static Exception Unwrap(Exception e) =>
        e is AggregateException { InnerExceptions.Count: 1 } aggregate ? Unwrap(aggregate.InnerExceptions[0]) : e;
}

/// <summary>Where commands write: stdout for results, stderr for diagnostics.</summary>
public sealed record CliConsole(TextWriter Out, TextWriter Error);
