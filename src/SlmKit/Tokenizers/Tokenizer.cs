using System.Buffers;
using System.Collections.Concurrent;
using System.Text;

namespace SlmKit.Tokenizers;

/// <summary>
/// Text ⇄ token ids for SentencePiece-style BPE and byte-level BPE vocabularies, loaded from a GGUF file, a Hugging
/// Face <c>tokenizer.json</c> folder or a llama2.c <c>tokenizer.bin</c>. Encoding follows llama.cpp's rules for GGUF
/// files and Hugging Face tokenizers' rules for <c>tokenizer.json</c>; instances are immutable and thread-safe.
/// </summary>
public sealed partial class Tokenizer
{
    private const int MaxCachedWordLength = 64;
    private const int MaxCacheEntries = 1 << 16;

    private readonly string[] _pieces;
    private readonly float[] _scores;
    private readonly TokenAttributes[] _attributes;
    private readonly Dictionary<string, int> _pieceToId;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _pieceLookup;
    private readonly Dictionary<string, int>? _mergeRanks;
    private readonly PreTokenizer? _preTokenizer;
    private readonly Normalizer? _normalizer;
    private readonly SpecialTokenSplitter _rawSplitter;
    private readonly SpecialTokenSplitter? _normalizedSplitter;
    private readonly bool _addSpacePrefix;
    private readonly bool _escapeSpaces;
    private readonly bool _ignoreMerges;
    private readonly string? _ggufPreTokenizer;
    private readonly bool _byteFallback;
    private readonly bool _stripLeadingSpaceOnDecode;
    private readonly bool _spacesAreMetaspace;
    private readonly int? _unkId;
    private readonly bool _unigramSplitOnWhitespace;
    private readonly float _unigramMinScore;
    private readonly int _unigramMaxPieceLength;
    private readonly PrecompiledCharsMap? _charsMap;
    private readonly int[] _prefixIds;
    private readonly int[] _suffixIds;
    private readonly ConcurrentDictionary<string, int[]> _wordCache = new(StringComparer.Ordinal);

    private Tokenizer(TokenizerDefinition d)
    {
        Kind = d.Kind;
        _pieces = d.Pieces;
        _scores = d.Scores ?? new float[d.Pieces.Length];
        _attributes = d.Attributes;
        _pieceToId = new Dictionary<string, int>(d.Pieces.Length, StringComparer.Ordinal);
        for (int i = 0; i < _pieces.Length; i++)
        {
            // First entry wins for duplicated texts, as llama.cpp's emplace and Hugging Face's vocab map do.
            if (_pieces[i].Length > 0)
                _pieceToId.TryAdd(_pieces[i], i);
        }
        _pieceLookup = _pieceToId.GetAlternateLookup<ReadOnlySpan<char>>();
        _mergeRanks = d.MergeRanks;
        _preTokenizer = d.PreTokenizer;
        _normalizer = d.Normalizer;
        _addSpacePrefix = d.AddSpacePrefix;
        _escapeSpaces = d.EscapeSpaces;
        _ignoreMerges = d.IgnoreMerges;
        _ggufPreTokenizer = d.GgufPreTokenizer;
        _byteFallback = d.ByteFallback;
        _stripLeadingSpaceOnDecode = d.StripLeadingSpaceOnDecode;
        _spacesAreMetaspace = d.SpacesAreMetaspace;
        _unkId = d.UnkId;
        if (Kind == TokenizerKind.Unigram)
        {
            _unigramSplitOnWhitespace = d.UnigramSplitOnWhitespace;
            _unigramMinScore = _scores.Length > 0 ? _scores.Min() : 0;
            _unigramMaxPieceLength = _pieces.Max(p => p.Length);
            _charsMap = d.CharsMap;
        }
        _prefixIds = d.PrefixIds;
        _suffixIds = d.SuffixIds;
        BosId = d.BosId;
        EosId = d.EosId;
        AddBos = d.BosId is int bos && _prefixIds.Contains(bos);
        AddEos = d.EosId is int eos && _suffixIds.Contains(eos);
        ChatTemplate = d.ChatTemplate;
        EndOfGenerationIds = d.EndOfGenerationIds;
        _rawSplitter = new SpecialTokenSplitter(_pieces, _attributes, d.RawSplitIds, d.UnicodeWhitespaceStrip);
        _normalizedSplitter = d.NormalizedSplitIds.Length > 0
            ? new SpecialTokenSplitter(_pieces, _attributes, d.NormalizedSplitIds, d.UnicodeWhitespaceStrip)
            : null;
    }

    /// <summary>Which algorithm this vocabulary uses.</summary>
    public TokenizerKind Kind { get; }

    /// <summary>Number of token ids (the model's embedding rows may be more).</summary>
    public int VocabSize => _pieces.Length;

    /// <summary>Beginning-of-sequence token, if the vocabulary has one.</summary>
    public int? BosId { get; }

    /// <summary>End-of-sequence token, if the vocabulary has one.</summary>
    public int? EosId { get; }

    /// <summary>Every token that ends generation: EOS and, where present, end-of-turn/end-of-message tokens.</summary>
    public IReadOnlyList<int> EndOfGenerationIds { get; }

    /// <summary>Whether <see cref="Encode"/> with <c>addSpecial</c> starts with <see cref="BosId"/> (the model's own rule).</summary>
    public bool AddBos { get; }

    /// <summary>Whether <see cref="Encode"/> with <c>addSpecial</c> ends with <see cref="EosId"/> (the model's own rule).</summary>
    public bool AddEos { get; }

    /// <summary>The raw chat template text if the source had one (not rendered here).</summary>
    public string? ChatTemplate { get; }

    /// <summary>Encodes <paramref name="text"/> to token ids.</summary>
    /// <param name="text">Any text; unpaired surrogates are encoded as U+FFFD, as UTF-8 encoding would.</param>
    /// <param name="addSpecial">Add the model's own BOS/EOS (or template) tokens.</param>
    /// <param name="parseSpecial">Turn special-token texts such as <c>&lt;|eot_id|&gt;</c> into their ids; when false they
    /// are tokenized as plain text (user-defined added tokens are always recognised, as in llama.cpp and Hugging Face).</param>
    public int[] Encode(string text, bool addSpecial = true, bool parseSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = ReplaceLoneSurrogates(text);
        var output = new List<int>(text.Length / 3 + 4);
        if (addSpecial)
            output.AddRange(_prefixIds);

        var fragments = new List<Fragment>();
        if (text.Length > 0)
            fragments.Add(new Fragment(-1, text));
        _rawSplitter.Split(fragments, parseSpecial);
        if (_normalizer is not null)
        {
            for (int i = 0; i < fragments.Count; i++)
            {
                if (fragments[i].TokenId < 0)
                    fragments[i] = new Fragment(-1, _normalizer.Apply(fragments[i].Text));
            }
            fragments.RemoveAll(f => f.TokenId < 0 && f.Text.Length == 0);
            _normalizedSplitter?.Split(fragments, parseSpecial);
        }

        bool previousWasToken = true;
        var ranges = new List<Range>();
        foreach (Fragment fragment in fragments)
        {
            if (fragment.TokenId >= 0)
            {
                output.Add(fragment.TokenId);
                previousWasToken = true;
                continue;
            }
            if (Kind == TokenizerKind.SentencePieceBpe)
                EncodeSentencePiece(fragment.Text, previousWasToken, output, ranges);
            else if (Kind == TokenizerKind.Unigram)
                EncodeUnigram(fragment.Text, output);
            else
                EncodeByteLevel(fragment.Text, output, ranges);
            previousWasToken = false;
        }

        if (addSpecial)
            output.AddRange(_suffixIds);
        return output.ToArray();
    }

    /// <summary>Decodes token ids to text. Invalid UTF-8 (e.g. a cut multi-byte character) becomes U+FFFD.</summary>
    /// <param name="ids">Token ids; each must be in [0, <see cref="VocabSize"/>).</param>
    /// <param name="skipSpecial">Leave out control and unknown tokens (BOS, EOS, &lt;unk&gt;, chat markers).</param>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecial = false)
    {
        var buffer = new ArrayBufferWriter<byte>(ids.Length * 4 + 16);
        bool emittedAny = false;
        foreach (int id in ids)
            AppendPieceBytes(id, skipSpecial, ref emittedAny, buffer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The vocabulary entry of <paramref name="id"/> as stored (e.g. "▁the", "Ġthe", "&lt;0x0A&gt;").</summary>
    public string TokenPiece(int id)
    {
        CheckId(id);
        return _pieces[id];
    }

    /// <summary>Whether <paramref name="id"/> is a control or unknown token (BOS, EOS, &lt;unk&gt;, chat markers).</summary>
    public bool IsSpecial(int id)
    {
        CheckId(id);
        return (_attributes[id] & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0;
    }

    /// <summary>A decoder for token-by-token output that never returns half of a UTF-8 character.</summary>
    /// <param name="skipSpecial">Leave out control and unknown tokens, as <see cref="Decode"/> does.</param>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecial = false) => new(this, skipSpecial);

    internal void AppendPieceBytes(int id, bool skipSpecial, ref bool emittedAny, IBufferWriter<byte> output)
    {
        CheckId(id);
        TokenAttributes attributes = _attributes[id];
        string piece = _pieces[id];
        if ((attributes & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0)
        {
            if (skipSpecial)
                return;
            WriteUtf8(piece, output);
            emittedAny = true;
            return;
        }
        if ((attributes & TokenAttributes.UserDefined) != 0)
        {
            WriteUtf8(piece, output);
            emittedAny |= piece.Length > 0;
            return;
        }
        if ((attributes & TokenAttributes.Byte) != 0)
        {
            output.GetSpan(1)[0] = ParseByteToken(piece);
            output.Advance(1);
            emittedAny = true;
            return;
        }
        if ((attributes & TokenAttributes.Unused) != 0 && piece.Length == 0)
            return;

        if (Kind == TokenizerKind.ByteLevelBpe)
        {
            Span<byte> span = output.GetSpan(piece.Length * 3);
            int n = 0;
            foreach (char c in piece)
            {
                if (ByteLevelAlphabet.TryCharToByte(c, out byte b))
                    span[n++] = b;
                else
                    n += Encoding.UTF8.GetBytes([c], span[n..]);
            }
            output.Advance(n);
        }
        else
        {
            string text = _spacesAreMetaspace ? piece.Replace('▁', ' ') : piece;
            if (!emittedAny && _stripLeadingSpaceOnDecode && text.Length > 0 && text[0] == ' ')
                text = text[1..];
            WriteUtf8(text, output);
        }
        emittedAny |= piece.Length > 0;
    }

    private void EncodeSentencePiece(string text, bool previousWasToken, List<int> output, List<Range> ranges)
    {
        string word = text;
        if (_addSpacePrefix && previousWasToken)
            word = " " + word;
        if (_escapeSpaces)
            word = word.Replace(' ', '▁');
        ranges.Clear();
        if (_mergeRanks is not null)
            SubwordMerger.MergeByRank(word, _mergeRanks.GetAlternateLookup<ReadOnlySpan<char>>(), ranges);
        else
            SubwordMerger.MergeByScore(word, _pieceLookup, _scores, ranges);

        bool previousWasUnk = false;
        foreach (Range r in ranges)
        {
            ReadOnlySpan<char> symbol = word.AsSpan()[r];
            if (_pieceLookup.TryGetValue(symbol, out int id))
            {
                output.Add(id);
                previousWasUnk = false;
                continue;
            }
            if (_byteFallback)
            {
                AppendByteFallback(symbol, output);
                previousWasUnk = false;
            }
            else if (_unkId is int unk && !previousWasUnk)
            {
                output.Add(unk);
                previousWasUnk = true;
            }
        }
    }

    private void AppendByteFallback(ReadOnlySpan<char> symbol, List<int> output)
    {
        Span<byte> bytes = stackalloc byte[symbol.Length * 3];
        int n = Encoding.UTF8.GetBytes(symbol, bytes);
        Span<char> name = stackalloc char[6];
        int start = output.Count;
        foreach (byte b in bytes[..n])
        {
            "<0x".CopyTo(name);
            name[3] = "0123456789ABCDEF"[b >> 4];
            name[4] = "0123456789ABCDEF"[b & 15];
            name[5] = '>';
            if (_pieceLookup.TryGetValue(name, out int id))
            {
                output.Add(id);
            }
            else if (b < 0x80 && _pieceLookup.TryGetValue([(char)b], out id))
            {
                output.Add(id); // old llama2.c vocabularies store bytes raw
            }
            else
            {
                // A byte without a token: the whole symbol becomes <unk>, as Hugging Face's byte_fallback does.
                output.RemoveRange(start, output.Count - start);
                if (_unkId is int unk)
                    output.Add(unk);
                return;
            }
        }
    }

    private void EncodeByteLevel(string text, List<int> output, List<Range> ranges)
    {
        ranges.Clear();
        if (_preTokenizer is null)
            ranges.Add(new Range(0, text.Length));
        else
            _preTokenizer.Split(text, ranges);
        var symbols = new List<Range>();
        foreach (Range r in ranges)
        {
            string encoded = ByteLevelAlphabet.Encode(text.AsSpan()[r]);
            if (encoded.Length <= MaxCachedWordLength && _wordCache.TryGetValue(encoded, out int[]? cached))
            {
                output.AddRange(cached);
                continue;
            }
            int before = output.Count;
            if (_ignoreMerges && _pieceLookup.TryGetValue(encoded, out int whole))
            {
                output.Add(whole);
            }
            else
            {
                symbols.Clear();
                SubwordMerger.MergeByRank(encoded, _mergeRanks!.GetAlternateLookup<ReadOnlySpan<char>>(), symbols);
                foreach (Range s in symbols)
                {
                    ReadOnlySpan<char> symbol = encoded.AsSpan()[s];
                    if (_pieceLookup.TryGetValue(symbol, out int id))
                    {
                        output.Add(id);
                        continue;
                    }
                    // llama.cpp looks each byte up on its own and drops what is missing.
                    foreach (char c in symbol)
                    {
                        if (_pieceLookup.TryGetValue([c], out int single))
                            output.Add(single);
                        else if (_unkId is int unk)
                            output.Add(unk);
                    }
                }
            }
            if (encoded.Length <= MaxCachedWordLength)
            {
                if (_wordCache.Count >= MaxCacheEntries)
                    _wordCache.Clear();
                _wordCache.TryAdd(encoded, output.GetRange(before, output.Count - before).ToArray());
            }
        }
    }

    private void CheckId(int id)
    {
        if ((uint)id >= (uint)_pieces.Length)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id must be in [0, {_pieces.Length})");
    }

    private static byte ParseByteToken(string piece)
    {
        // "<0xAB>"; a raw one-character piece (old llama2.c files) is its own byte.
        if (piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal))
            return byte.Parse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        return piece.Length == 1 ? (byte)piece[0] : (byte)'?';
    }

    private static void WriteUtf8(string text, IBufferWriter<byte> output)
    {
        if (text.Length == 0)
            return;
        Span<byte> span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        output.Advance(Encoding.UTF8.GetBytes(text, span));
    }

    private static string ReplaceLoneSurrogates(string text)
    {
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
            return text;
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                sb.Append(c).Append(text[++i]);
            }
            else
            {
                sb.Append(char.IsSurrogate(c) ? '\uFFFD' : c);
            }
        }
        return sb.ToString();
    }

    internal readonly record struct Fragment(int TokenId, string Text);
}
