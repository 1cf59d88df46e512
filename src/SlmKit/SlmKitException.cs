namespace SlmKit;

/// <summary>
/// An error the user can cause and fix: a bad file, a bad argument, an unsupported model.
/// Front ends print <see cref="Exception.Message"/> as one line and exit with code 2 (CLI) or answer 4xx (server).
/// </summary>
public class SlmKitException : Exception
{
    public SlmKitException(string message) : base(message) { }
    public SlmKitException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A model, tokenizer or data file that cannot be used as it is. The message starts with the file's path.</summary>
public sealed class ModelFileException : SlmKitException
{
    public ModelFileException(string filePath, string problem)
        : base($"{filePath}: {problem}")
    {
        FilePath = filePath;
        Problem = problem;
    }

    public ModelFileException(string filePath, string problem, Exception inner)
        : base($"{filePath}: {problem}", inner)
    {
        FilePath = filePath;
        Problem = problem;
    }

    /// <summary>The file that was being read.</summary>
    public string FilePath { get; }

    /// <summary>What is wrong with it, without the path.</summary>
    public string Problem { get; }
}
