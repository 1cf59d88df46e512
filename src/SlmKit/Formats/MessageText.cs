using System.Text;

namespace SlmKit.Formats;

/// <summary>
/// Makes text taken from a file safe to put in an error message: a damaged name may hold newlines, control
/// characters or thousands of bytes, and messages must stay one readable line.
/// </summary>
internal static class MessageText
{
    private const int MaxLength = 80;

    /// <summary><paramref name="text"/> with control characters escaped and cut to a readable length.</summary>
    public static string Clean(string text)
    {
        bool clean = text.Length <= MaxLength;
        foreach (char c in text)
        {
            if (char.IsControl(c))
            {
                clean = false;
                break;
            }
        }
        if (clean)
            return text;
        var sb = new StringBuilder();
        foreach (char c in text)
        {
            if (sb.Length >= MaxLength)
            {
                sb.Append('…');
                break;
            }
            if (char.IsControl(c))
                sb.Append($"\\u{(int)c:x4}");
            else
                sb.Append(c);
        }
        return sb.ToString();
    }
}
