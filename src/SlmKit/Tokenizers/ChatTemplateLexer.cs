using System.Globalization;
using System.Text;

namespace SlmKit.Tokenizers;

internal enum TokenKind { Name, String, Integer, Float, Operator }

internal readonly record struct TemplateToken(TokenKind Kind, string Text, object? Value, int Line, int Column);

internal enum SegmentKind { Text, Output, Statement }

/// <summary>A piece of the template after whitespace control: literal text, a <c>{{ }}</c> or a <c>{% %}</c>.</summary>
internal sealed record TemplateSegment(SegmentKind Kind, string Text, List<TemplateToken> Tokens, int Line, int Column);

/// <summary>
/// Splits a template into text and tags, applying whitespace control the way Hugging Face configures Jinja2:
/// <c>trim_blocks</c> (drop the newline after a block or comment tag), <c>lstrip_blocks</c> (drop the indentation
/// before one), <c>-</c> on either side of any tag, and no trailing newline kept at the end of the template.
/// </summary>
internal sealed class ChatTemplateLexer
{
    private readonly string _src;
    private readonly int[] _lineStarts;
    private readonly List<TemplateSegment> _segments = [];

    private ChatTemplateLexer(string source)
    {
        // Jinja2 normalizes every newline to \n and, without keep_trailing_newline, drops one final newline.
        string src = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (src.EndsWith('\n'))
            src = src[..^1];
        _src = src;
        var starts = new List<int> { 0 };
        for (int i = 0; i < src.Length; i++)
        {
            if (src[i] == '\n')
                starts.Add(i + 1);
        }
        _lineStarts = [.. starts];
    }

    public static List<TemplateSegment> Tokenize(string source)
    {
        var lexer = new ChatTemplateLexer(source);
        lexer.Run();
        return lexer._segments;
    }

    private (int Line, int Column) Position(int offset)
    {
        int index = Array.BinarySearch(_lineStarts, offset);
        if (index < 0)
            index = ~index - 1;
        return (index + 1, offset - _lineStarts[index] + 1);
    }

    private ChatTemplateException Error(int offset, string problem)
    {
        var (line, column) = Position(offset);
        return new ChatTemplateException(problem, line, column);
    }

    private void Run()
    {
        string src = _src;
        int pos = 0;
        bool stripLeading = false; // the previous tag ended with '-'
        bool trimNewline = false;  // the previous tag was a block or comment (trim_blocks)
        while (pos <= src.Length)
        {
            int open = FindTagStart(pos);
            int textEnd = open < 0 ? src.Length : open;
            int textStart = pos;
            if (stripLeading)
            {
                while (textStart < textEnd && char.IsWhiteSpace(src[textStart]))
                    textStart++;
            }
            else if (trimNewline && textStart < textEnd && src[textStart] == '\n')
            {
                textStart++;
            }

            if (open < 0)
            {
                AddText(textStart, textEnd);
                return;
            }

            char kind = src[open + 1];
            char flag = open + 2 < src.Length ? src[open + 2] : '\0';
            if (flag == '-')
            {
                while (textEnd > textStart && char.IsWhiteSpace(src[textEnd - 1]))
                    textEnd--;
            }
            else if (kind != '{' && flag != '+')
            {
                // lstrip_blocks: indentation alone on the line before a block or comment tag is dropped.
                int k = textEnd;
                while (k > textStart && (src[k - 1] == ' ' || src[k - 1] == '\t'))
                    k--;
                if (k == 0 || src[k - 1] == '\n')
                    textEnd = k;
            }
            AddText(textStart, textEnd);

            int inner = open + 2 + (flag is '-' or '+' ? 1 : 0);
            if (kind == '#')
            {
                int close = src.IndexOf("#}", inner, StringComparison.Ordinal);
                if (close < 0)
                    throw Error(open, "comment is not closed with '#}'");
                bool dash = close - 1 >= inner && src[close - 1] == '-';
                stripLeading = dash;
                trimNewline = !dash;
                pos = close + 2;
                continue;
            }

            var tokens = new List<TemplateToken>();
            bool isOutput = kind == '{';
            int after = LexTagBody(inner, isOutput, tokens, out char closeFlag, open);
            var (line, column) = Position(open);
            if (!isOutput && tokens.Count > 0 && tokens[0] is { Kind: TokenKind.Name, Text: "raw" })
            {
                if (tokens.Count != 1)
                    throw Error(open, "'raw' takes no arguments");
                pos = LexRaw(after, closeFlag, open, out stripLeading, out trimNewline);
                continue;
            }

            _segments.Add(new TemplateSegment(isOutput ? SegmentKind.Output : SegmentKind.Statement, "", tokens, line, column));
            stripLeading = closeFlag == '-';
            trimNewline = !isOutput && closeFlag != '+' && closeFlag != '-';
            pos = after;
        }
    }

    private void AddText(int start, int end)
    {
        if (end > start)
        {
            var (line, column) = Position(start);
            _segments.Add(new TemplateSegment(SegmentKind.Text, _src[start..end], [], line, column));
        }
    }

    private int FindTagStart(int from)
    {
        string src = _src;
        for (int i = src.IndexOf('{', from); i >= 0 && i + 1 < src.Length; i = src.IndexOf('{', i + 1))
        {
            char next = src[i + 1];
            if (next is '{' or '%' or '#')
                return i;
        }
        return -1;
    }

    // Handles {% raw %}...{% endraw %}: the text in between is output exactly as written.
    private int LexRaw(int bodyStart, char openCloseFlag, int tagOffset, out bool stripLeading, out bool trimNewline)
    {
        string src = _src;
        int search = bodyStart;
        while (true)
        {
            int open = src.IndexOf("{%", search, StringComparison.Ordinal);
            if (open < 0)
                throw Error(tagOffset, "'raw' is not closed with 'endraw'");
            int i = open + 2;
            char flag = i < src.Length && src[i] is '-' or '+' ? src[i++] : '\0';
            while (i < src.Length && char.IsWhiteSpace(src[i]))
                i++;
            if (string.CompareOrdinal(src, i, "endraw", 0, 6) != 0)
            {
                search = open + 2;
                continue;
            }
            var tokens = new List<TemplateToken>();
            int after = LexTagBody(i + 6, isOutput: false, tokens, out char closeFlag, open);
            if (tokens.Count != 0)
                throw Error(open, "'endraw' takes no arguments");

            int textStart = bodyStart, textEnd = open;
            if (openCloseFlag == '-')
            {
                while (textStart < textEnd && char.IsWhiteSpace(src[textStart]))
                    textStart++;
            }
            else if (openCloseFlag != '+' && textStart < textEnd && src[textStart] == '\n')
            {
                textStart++;
            }
            if (flag == '-')
            {
                while (textEnd > textStart && char.IsWhiteSpace(src[textEnd - 1]))
                    textEnd--;
            }
            else if (flag != '+')
            {
                int k = textEnd;
                while (k > textStart && (src[k - 1] == ' ' || src[k - 1] == '\t'))
                    k--;
                if (k == 0 || src[k - 1] == '\n')
                    textEnd = k;
            }
            AddText(textStart, textEnd);
            stripLeading = closeFlag == '-';
            trimNewline = closeFlag != '+' && closeFlag != '-';
            return after;
        }
    }

    /// <summary>Tokenizes the inside of a tag up to its closing <c>}}</c> or <c>%}</c>; returns the offset after it.</summary>
    private int LexTagBody(int pos, bool isOutput, List<TemplateToken> tokens, out char closeFlag, int tagOffset)
    {
        string src = _src;
        string closer = isOutput ? "}}" : "%}";
        int depth = 0; // brackets open inside the tag: a '}}' that closes a dict literal is not the tag's end
        while (true)
        {
            while (pos < src.Length && char.IsWhiteSpace(src[pos]))
                pos++;
            if (pos >= src.Length)
                throw Error(tagOffset, $"tag is not closed with '{closer}'");
            if (depth == 0)
            {
                if (string.CompareOrdinal(src, pos, closer, 0, 2) == 0)
                {
                    closeFlag = '\0';
                    return pos + 2;
                }
                if ((src[pos] == '-' || (src[pos] == '+' && !isOutput)) && string.CompareOrdinal(src, pos + 1, closer, 0, 2) == 0)
                {
                    closeFlag = src[pos];
                    return pos + 3;
                }
            }

            var (line, column) = Position(pos);
            char c = src[pos];
            if (char.IsLetter(c) || c == '_')
            {
                int start = pos;
                while (pos < src.Length && (char.IsLetterOrDigit(src[pos]) || src[pos] == '_'))
                    pos++;
                tokens.Add(new TemplateToken(TokenKind.Name, src[start..pos], null, line, column));
            }
            else if (char.IsAsciiDigit(c))
            {
                pos = LexNumber(pos, line, column, tokens);
            }
            else if (c is '\'' or '"')
            {
                pos = LexString(pos, line, column, tokens);
            }
            else
            {
                string op = pos + 1 < src.Length ? src.Substring(pos, 2) : "";
                if (op is not ("//" or "**" or "==" or "!=" or "<=" or ">="))
                {
                    op = c.ToString();
                    if ("+-*/%~[](){}<>=.:|,;".IndexOf(c, StringComparison.Ordinal) < 0)
                        throw Error(pos, $"unexpected character '{c}'");
                }
                if (op is "(" or "[" or "{")
                    depth++;
                else if (op is ")" or "]" or "}")
                    depth = Math.Max(0, depth - 1);
                tokens.Add(new TemplateToken(TokenKind.Operator, op, null, line, column));
                pos += op.Length;
            }
        }
    }

    private int LexNumber(int pos, int line, int column, List<TemplateToken> tokens)
    {
        string src = _src;
        int start = pos;
        bool isFloat = false;
        while (pos < src.Length && (char.IsAsciiDigit(src[pos]) || src[pos] == '_'))
            pos++;
        if (pos + 1 < src.Length && src[pos] == '.' && char.IsAsciiDigit(src[pos + 1]))
        {
            isFloat = true;
            pos++;
            while (pos < src.Length && (char.IsAsciiDigit(src[pos]) || src[pos] == '_'))
                pos++;
        }
        if (pos < src.Length && src[pos] is 'e' or 'E')
        {
            int e = pos + 1;
            if (e < src.Length && src[e] is '+' or '-')
                e++;
            if (e < src.Length && char.IsAsciiDigit(src[e]))
            {
                isFloat = true;
                pos = e;
                while (pos < src.Length && char.IsAsciiDigit(src[pos]))
                    pos++;
            }
        }
        string text = src[start..pos].Replace("_", "", StringComparison.Ordinal);
        if (isFloat)
        {
            tokens.Add(new TemplateToken(TokenKind.Float, text, double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture), line, column));
        }
        else
        {
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value))
                throw Error(start, $"integer '{text}' is too large");
            tokens.Add(new TemplateToken(TokenKind.Integer, text, value, line, column));
        }
        return pos;
    }

    // String literals follow Python's unicode-escape rules, as Jinja2 decodes them; unknown escapes keep the backslash.
    private int LexString(int pos, int line, int column, List<TemplateToken> tokens)
    {
        string src = _src;
        char quote = src[pos];
        int start = pos++;
        var sb = new StringBuilder();
        while (true)
        {
            if (pos >= src.Length)
                throw Error(start, "string literal is not closed");
            char c = src[pos++];
            if (c == quote)
                break;
            if (c != '\\')
            {
                sb.Append(c);
                continue;
            }
            if (pos >= src.Length)
                throw Error(start, "string literal is not closed");
            char e = src[pos++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case '\n': break; // a backslash-newline continues the line
                case 'x': pos = AppendHexEscape(sb, pos, 2, start); break;
                case 'u': pos = AppendHexEscape(sb, pos, 4, start); break;
                case 'U': pos = AppendHexEscape(sb, pos, 8, start); break;
                case >= '0' and <= '7':
                {
                    int value = e - '0';
                    for (int n = 0; n < 2 && pos < src.Length && src[pos] is >= '0' and <= '7'; n++)
                        value = (value * 8) + (src[pos++] - '0');
                    sb.Append((char)value);
                    break;
                }
                default: sb.Append('\\').Append(e); break;
            }
        }
        tokens.Add(new TemplateToken(TokenKind.String, src[start..pos], sb.ToString(), line, column));
        return pos;
    }

    private int AppendHexEscape(StringBuilder sb, int pos, int digits, int literalStart)
    {
        if (pos + digits > _src.Length
            || !int.TryParse(_src.AsSpan(pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int value)
            || (digits == 8 && !Rune.IsValid(value)))
        {
            throw Error(literalStart, "bad \\x, \\u or \\U escape in string literal");
        }
        // \uD83D\uDE00 pairs arrive one half at a time, so a lone surrogate is kept as a UTF-16 unit.
        if (digits == 8)
            sb.Append(char.ConvertFromUtf32(value));
        else
            sb.Append((char)value);
        return pos + digits;
    }
}
