namespace SlmKit.Tokenizers;

/// <summary>
/// A chat template that cannot be parsed or rendered: unsupported syntax, a type error while rendering, or the
/// template's own <c>raise_exception(...)</c> (for example "roles must alternate").
/// </summary>
public sealed class ChatTemplateException : SlmKitException
{
    internal ChatTemplateException(string problem, int line, int column)
        : base($"chat template line {line}, column {column}: {problem}")
    {
        Problem = problem;
        Line = line;
        Column = column;
    }

    // raise_exception carries the template author's message unchanged: it is written for the person calling the
    // model ("System role not supported"), and Hugging Face shows it the same way.
    private ChatTemplateException(string templateMessage, int line, int column, bool raisedByTemplate)
        : base(templateMessage)
    {
        Problem = templateMessage;
        Line = line;
        Column = column;
        RaisedByTemplate = raisedByTemplate;
    }

    internal static ChatTemplateException FromTemplate(string templateMessage, int line, int column) =>
        new(templateMessage, line, column, raisedByTemplate: true);

    /// <summary>What is wrong, without the position.</summary>
    public string Problem { get; }

    /// <summary>1-based line in the template source where the problem was found.</summary>
    public int Line { get; }

    /// <summary>1-based column in the template source where the problem was found.</summary>
    public int Column { get; }

    /// <summary>
    /// True when the template itself called <c>raise_exception</c>; <see cref="Exception.Message"/> is then exactly
    /// the template's message.
    /// </summary>
    public bool RaisedByTemplate { get; }
}
