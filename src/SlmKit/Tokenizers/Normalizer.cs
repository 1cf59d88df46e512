using System.Text;

namespace SlmKit.Tokenizers;

/// <summary>
/// The Hugging Face normalizers SlmKit supports (Prepend, Replace with a literal pattern, NFC/NFD/NFKC/NFKD,
/// Lowercase, and Sequences of them), applied in order to the text between added tokens.
/// </summary>
internal sealed class Normalizer
{
    private readonly Func<string, string>[] _steps;

    public Normalizer(IEnumerable<Func<string, string>> steps) => _steps = steps.ToArray();

    public string Apply(string text)
    {
        foreach (Func<string, string> step in _steps)
            text = step(text);
        return text;
    }

    public static Func<string, string> Prepend(string prefix) => s => s.Length == 0 ? s : prefix + s;

    public static Func<string, string> Replace(string pattern, string content) =>
        s => pattern.Length == 0 ? s : s.Replace(pattern, content, StringComparison.Ordinal);

    public static Func<string, string> Unicode(NormalizationForm form) => s => s.Normalize(form);

    public static Func<string, string> Lowercase() => s => s.ToLowerInvariant();
}
