namespace SlmKit.Tokenizers;

/// <summary>
/// Cuts special and added tokens out of text before the subword model runs, as llama.cpp's
/// <c>tokenizer_st_partition</c> does: tokens are tried longest first, each splits every remaining text fragment at
/// its occurrences; lstrip/rstrip eat the whitespace beside a match; single_word needs a non-word character (or the
/// text's end) on both sides.
/// </summary>
internal sealed class SpecialTokenSplitter
{
    private readonly (int Id, string Text, TokenAttributes Attributes)[] _tokens;
    private readonly bool _unicodeWhitespace;

    public SpecialTokenSplitter(string[] pieces, TokenAttributes[] attributes, int[] ids, bool unicodeWhitespace)
    {
        _tokens = ids.Where(id => pieces[id].Length > 0)
            .Select(id => (id, pieces[id], attributes[id]))
            .OrderByDescending(t => t.Item2.Length)
            .ThenBy(t => t.id)
            .ToArray();
        _unicodeWhitespace = unicodeWhitespace;
    }

    public void Split(List<Tokenizer.Fragment> fragments, bool parseSpecial)
    {
        if (fragments.Count == 0)
            return;
        var result = new List<Tokenizer.Fragment>(fragments.Count);
        foreach ((int id, string text, TokenAttributes attributes) in _tokens)
        {
            // Control and unknown tokens are only recognised when asked to; user-defined ones always are.
            if (!parseSpecial && (attributes & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0)
                continue;
            bool any = false;
            foreach (Tokenizer.Fragment f in fragments)
            {
                if (f.TokenId < 0 && f.Text.Contains(text, StringComparison.Ordinal))
                {
                    any = true;
                    break;
                }
            }
            if (!any)
                continue;

            result.Clear();
            foreach (Tokenizer.Fragment f in fragments)
            {
                if (f.TokenId >= 0)
                {
                    result.Add(f);
                    continue;
                }
                SplitOne(f.Text, id, text, attributes, result);
            }
            fragments.Clear();
            fragments.AddRange(result);
        }
    }

    private void SplitOne(string s, int id, string token, TokenAttributes attributes, List<Tokenizer.Fragment> output)
    {
        int start = 0;
        int searchFrom = 0;
        while (start < s.Length)
        {
            int match = s.IndexOf(token, searchFrom, StringComparison.Ordinal);
            if (match < 0)
                break;
            int end = match + token.Length;
            if ((attributes & TokenAttributes.SingleWord) != 0 &&
                ((match > 0 && IsWordChar(s[match - 1])) || (end < s.Length && IsWordChar(s[end]))))
            {
                searchFrom = match + 1;
                continue;
            }
            int leftEnd = match;
            if ((attributes & TokenAttributes.LStrip) != 0)
            {
                while (leftEnd > start && IsSpace(s[leftEnd - 1]))
                    leftEnd--;
            }
            if (leftEnd > start)
                output.Add(new Tokenizer.Fragment(-1, s[start..leftEnd]));
            output.Add(new Tokenizer.Fragment(id, token));
            if ((attributes & TokenAttributes.RStrip) != 0)
            {
                while (end < s.Length && IsSpace(s[end]))
                    end++;
            }
            start = end;
            searchFrom = end;
        }
        if (start < s.Length)
            output.Add(new Tokenizer.Fragment(-1, start == 0 ? s : s[start..]));
    }

    private bool IsSpace(char c) =>
        _unicodeWhitespace ? char.IsWhiteSpace(c) : c is ' ' or '\t' or '\n' or '\v' or '\f' or '\r';

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
