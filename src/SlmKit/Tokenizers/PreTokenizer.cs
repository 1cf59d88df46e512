using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace SlmKit.Tokenizers;

/// <summary>
/// Splits text into words with a chain of regular expressions, the way llama.cpp's <c>unicode_regex_split</c> and
/// Hugging Face's <c>Split(..., behavior: Isolated)</c> do: each expression splits every chunk left by the previous
/// one into its matches and the gaps between them (both kept, in order).
/// </summary>
/// <remarks>
/// .NET's <see cref="Regex"/> works on UTF-16 code units, so <c>\p{L}</c> would not see a letter outside the Basic
/// Multilingual Plane (it would see two surrogates). Before matching, each supplementary code point is therefore
/// replaced by one BMP stand-in of the same general category (llama.cpp does the same trick with its "collapsed"
/// text); literal supplementary ranges in a pattern (DeepSeek-LLM's) become one private-use stand-in. Patterns run on
/// the backtracking interpreter (<see cref="RegexOptions.None"/>): the GPT-2 family needs the <c>(?!\S)</c>
/// lookahead, which <see cref="RegexOptions.NonBacktracking"/> lacks, and the interpreter is trim- and AOT-safe.
/// </remarks>
internal sealed class PreTokenizer
{
    /// <summary>GPT-2's pattern (Hugging Face ByteLevel pre-tokenizer with use_regex).</summary>
    public const string Gpt2Pattern =
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private const char SupplementaryRangeStandIn = '\uE000';

    private static readonly ConcurrentDictionary<string, Step> s_steps = new();

    private readonly Step[] _steps;
    private readonly bool _nonAsciiWhitespaceAsVerticalTab;

    /// <param name="patterns">The regex chain.</param>
    /// <param name="nonAsciiWhitespaceAsVerticalTab">llama.cpp's std::regex paths see every non-ASCII whitespace
    /// character as U+000B; this matters where a literal class holds one (DeepSeek-LLM's "　-。").</param>
    public PreTokenizer(IEnumerable<string> patterns, bool nonAsciiWhitespaceAsVerticalTab = false)
    {
        _nonAsciiWhitespaceAsVerticalTab = nonAsciiWhitespaceAsVerticalTab;
        _steps = patterns.Select(p => s_steps.GetOrAdd(p, static p => new Step(p))).ToArray();
        Patterns = _steps.Select(s => s.Pattern).ToArray();
    }

    /// <summary>The patterns as given (for diagnostics).</summary>
    public IReadOnlyList<string> Patterns { get; }

    /// <summary>Appends the words of <paramref name="text"/> (as ranges of it) to <paramref name="words"/>.</summary>
    public void Split(string text, List<Range> words)
    {
        var current = new List<Range> { new(0, text.Length) };
        var next = new List<Range>();
        bool needsCollapse = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0 ||
            (_nonAsciiWhitespaceAsVerticalTab && HasNonAsciiWhitespace(text));
        foreach (Step step in _steps)
        {
            next.Clear();
            foreach (Range chunk in current)
                step.Split(text, chunk, needsCollapse, _nonAsciiWhitespaceAsVerticalTab, next);
            (current, next) = (next, current);
        }
        words.AddRange(current);
    }

    private static bool HasNonAsciiWhitespace(string text)
    {
        foreach (char c in text)
        {
            if (c > 0x7F && char.IsWhiteSpace(c))
                return true;
        }
        return false;
    }

    private sealed class Step
    {
        private readonly Regex _regex;
        private readonly (int Low, int High)[] _supplementaryRanges;

        public Step(string pattern)
        {
            Pattern = pattern;
            string rewritten = Rewrite(pattern, out _supplementaryRanges);
            try
            {
                _regex = new Regex(rewritten, RegexOptions.CultureInvariant);
            }
            catch (ArgumentException e)
            {
                throw new SlmKitException($"pre-tokenizer pattern cannot be used: {e.Message} (pattern: {pattern})", e);
            }
        }

        public string Pattern { get; }

        public void Split(string text, Range chunk, bool needsCollapse, bool whitespaceAsVerticalTab, List<Range> output)
        {
            (int start, int length) = chunk.GetOffsetAndLength(text.Length);
            if (length == 0)
                return;
            if (!needsCollapse)
            {
                SplitPlain(text, start, length, offsetMap: null, output);
                return;
            }

            // Collapse: one char per code point; map[i] = index in text of collapsed char i.
            var sb = new StringBuilder(length);
            var map = new List<int>(length + 1);
            for (int i = start; i < start + length; i++)
            {
                char c = text[i];
                map.Add(i);
                if (char.IsHighSurrogate(c) && i + 1 < start + length && char.IsLowSurrogate(text[i + 1]))
                {
                    sb.Append(StandIn(char.ConvertToUtf32(c, text[i + 1])));
                    i++;
                }
                else
                {
                    sb.Append(whitespaceAsVerticalTab && c > 0x7F && char.IsWhiteSpace(c) ? '\v' : c);
                }
            }
            map.Add(start + length);
            string collapsed = sb.ToString();
            SplitPlain(collapsed, 0, collapsed.Length, map, output);
        }

        private void SplitPlain(string text, int start, int length, List<int>? offsetMap, List<Range> output)
        {
            int position = start;
            int end = start + length;
            Match m = _regex.Match(text, start, length);
            while (m.Success)
            {
                if (m.Length > 0)
                {
                    if (m.Index > position)
                        Add(position, m.Index);
                    Add(m.Index, m.Index + m.Length);
                    position = m.Index + m.Length;
                }
                m = m.NextMatch();
            }
            if (position < end)
                Add(position, end);

            void Add(int from, int to) =>
                output.Add(offsetMap is null ? new Range(from, to) : new Range(offsetMap[from], offsetMap[to]));
        }

        private char StandIn(int codePoint)
        {
            foreach ((int low, int high) in _supplementaryRanges)
            {
                if (codePoint >= low && codePoint <= high)
                    return SupplementaryRangeStandIn;
            }
            // Stand-ins are chosen outside every literal range of the known patterns (DeepSeek's letter list, CJK).
            return CharUnicodeInfo.GetUnicodeCategory(codePoint) switch
            {
                UnicodeCategory.UppercaseLetter or UnicodeCategory.TitlecaseLetter => '\uA7AA',
                UnicodeCategory.LowercaseLetter => '\uA793',
                UnicodeCategory.ModifierLetter => '\u02B0',
                UnicodeCategory.OtherLetter => '\u00AA',
                UnicodeCategory.NonSpacingMark => '\u0300',
                UnicodeCategory.SpacingCombiningMark => '\u0903',
                UnicodeCategory.EnclosingMark => '\u20DD',
                UnicodeCategory.DecimalDigitNumber => '\u0660',
                UnicodeCategory.LetterNumber => '\u2160',
                UnicodeCategory.OtherNumber => '\u00B2',
                UnicodeCategory.ConnectorPunctuation => '\u203F',
                UnicodeCategory.DashPunctuation => '\u2010',
                UnicodeCategory.OpenPunctuation => '\u2045',
                UnicodeCategory.ClosePunctuation => '\u2046',
                UnicodeCategory.InitialQuotePunctuation => '\u00AB',
                UnicodeCategory.FinalQuotePunctuation => '\u00BB',
                UnicodeCategory.OtherPunctuation => '\u00B7',
                UnicodeCategory.MathSymbol => '\u00AC',
                UnicodeCategory.CurrencySymbol => '\u00A2',
                UnicodeCategory.ModifierSymbol => '\u02C2',
                UnicodeCategory.OtherSymbol => '\u00A6',
                UnicodeCategory.Format => '\u00AD',
                UnicodeCategory.PrivateUse => '\uF8FF',
                _ => '\u0378', // unassigned
            };
        }

        /// <summary>
        /// Adapts a pattern written for Oniguruma/ECMAScript to .NET: an unescaped <c>$</c> means end of input (not
        /// "before a final newline"), and literal supplementary code points become a stand-in.
        /// </summary>
        private static string Rewrite(string pattern, out (int, int)[] supplementaryRanges)
        {
            var ranges = new List<(int, int)>();
            var sb = new StringBuilder(pattern.Length);
            bool inClass = false;
            for (int i = 0; i < pattern.Length; i++)
            {
                char c = pattern[i];
                if (c == '\\' && i + 1 < pattern.Length)
                {
                    sb.Append(c).Append(pattern[i + 1]);
                    i++;
                    continue;
                }
                if (char.IsHighSurrogate(c) && i + 1 < pattern.Length)
                {
                    int low = char.ConvertToUtf32(c, pattern[i + 1]);
                    int high = low;
                    i++;
                    if (i + 3 < pattern.Length && pattern[i + 1] == '-' && char.IsHighSurrogate(pattern[i + 2]))
                    {
                        high = char.ConvertToUtf32(pattern[i + 2], pattern[i + 3]);
                        i += 3;
                    }
                    ranges.Add((low, high));
                    sb.Append(SupplementaryRangeStandIn);
                    continue;
                }
                if (c == '[')
                    inClass = true;
                else if (c == ']')
                    inClass = false;
                if (c == '$' && !inClass)
                {
                    sb.Append(@"\z");
                    continue;
                }
                sb.Append(c);
            }
            supplementaryRanges = ranges.ToArray();
            return sb.ToString();
        }
    }
}
