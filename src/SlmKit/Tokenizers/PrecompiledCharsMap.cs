using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace SlmKit.Tokenizers;

/// <summary>
/// SentencePiece's compiled normalization rules (tokenizer.json's "Precompiled" normalizer, T5 and other Unigram
/// vocabularies): a little-endian uint32 byte length, a Darts-clone double-array trie over UTF-8 keys of that length,
/// then the replacement strings, each ending in a zero byte, that the trie's values point into. Applied as the Hugging
/// Face tokenizers library applies it: per grapheme cluster, the cluster replaced by the rule of its shortest matching
/// prefix when it is shorter than six bytes, else each character by its own rule, unmatched text kept
/// (<see cref="Normalize"/>); or as llama.cpp applies it, longest prefix first (<see cref="NormalizeLongestPrefix"/>).
/// </summary>
internal sealed class PrecompiledCharsMap
{
    private readonly uint[] _trie;
    private readonly byte[] _normalized;

    public PrecompiledCharsMap(ReadOnlySpan<byte> blob, string source)
    {
        Blob = blob.ToArray();
        if (blob.Length < 4)
            throw new ModelFileException(source, $"the precompiled charsmap is {blob.Length} bytes, too short for its header");
        uint trieBytes = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieBytes % 4 != 0 || trieBytes > (uint)(blob.Length - 4) || trieBytes == 0)
            throw new ModelFileException(source, $"the precompiled charsmap declares a {trieBytes}-byte trie in {blob.Length - 4} bytes");
        _trie = new uint[trieBytes / 4];
        for (int i = 0; i < _trie.Length; i++)
            _trie[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob[(4 + 4 * i)..]);
        _normalized = blob[(4 + (int)trieBytes)..].ToArray();
    }

    /// <summary>The map as stored (tokenizer.json's base64 text decoded; GGUF's tokenizer.ggml.precompiled_charsmap).</summary>
    public byte[] Blob { get; }

    /// <summary>The text with every rule applied, grapheme by grapheme (the tokenizers library's rule).</summary>
    public string Normalize(string text)
    {
        var output = new StringBuilder(text.Length);
        Span<byte> utf8 = stackalloc byte[64];
        var elements = StringInfo.GetTextElementEnumerator(text);
        while (elements.MoveNext())
        {
            string grapheme = (string)elements.Current;
            int length = Encoding.UTF8.GetByteCount(grapheme);
            if (length < 6)
            {
                Encoding.UTF8.GetBytes(grapheme, utf8);
                if (Transform(utf8[..length], output))
                    continue;
            }
            // Each character of a long or unmatched cluster on its own.
            for (int i = 0; i < grapheme.Length; i += char.IsSurrogatePair(grapheme, i) ? 2 : 1)
            {
                int units = char.IsSurrogatePair(grapheme, i) ? 2 : 1;
                int n = Encoding.UTF8.GetBytes(grapheme.AsSpan(i, units), utf8);
                if (!Transform(utf8[..n], output))
                    output.Append(grapheme, i, units);
            }
        }
        return output.ToString();
    }

    /// <summary>
    /// The text with the rules applied as llama.cpp's Unigram tokenizer applies them (GGUF "t5" vocabularies): at each
    /// position the longest prefix that has a rule is replaced, else one character is kept.
    /// </summary>
    public string NormalizeLongestPrefix(string text)
    {
        byte[] input = Encoding.UTF8.GetBytes(text);
        var output = new List<byte>(input.Length);
        int at = 0;
        while (at < input.Length)
        {
            (int length, int start) = LongestPrefix(input.AsSpan(at));
            if (length > 0 && start < _normalized.Length)
            {
                int end = Array.IndexOf(_normalized, (byte)0, start);
                output.AddRange(_normalized.AsSpan(start, (end < 0 ? _normalized.Length : end) - start));
                at += length;
                continue;
            }
            int units = Utf8Length(input[at]);
            output.AddRange(input.AsSpan(at, Math.Min(units, input.Length - at)));
            at += units;
        }
        return Encoding.UTF8.GetString([.. output]);
    }

    /// <summary>Bytes of the UTF-8 sequence a lead byte starts (1 for a stray continuation byte).</summary>
    private static int Utf8Length(byte lead) => lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;

    /// <summary>The longest prefix of <paramref name="key"/> with a rule: its byte length and the rule's offset (0, 0 for none).</summary>
    private (int Length, int Start) LongestPrefix(ReadOnlySpan<byte> key)
    {
        uint[] trie = _trie;
        int node = Offset(trie[0]), length = 0, start = 0;
        for (int i = 0; i < key.Length; i++)
        {
            byte c = key[i];
            if (c == 0)
                break;
            node ^= c;
            if ((uint)node >= (uint)trie.Length || Label(trie[node]) != c)
                break;
            uint unit = trie[node];
            node ^= Offset(unit);
            if ((uint)node >= (uint)trie.Length)
                break;
            if (HasLeaf(unit))
                (length, start) = (i + 1, (int)Value(trie[node]));
        }
        return (length, start);
    }

    /// <summary>Appends the replacement of <paramref name="key"/>'s shortest prefix that has a rule; false when none has.</summary>
    private bool Transform(ReadOnlySpan<byte> key, StringBuilder output)
    {
        if (ShortestPrefixValue(key) is not int start || start >= _normalized.Length)
            return false;
        int end = Array.IndexOf(_normalized, (byte)0, start);
        if (end < 0)
            end = _normalized.Length;
        output.Append(Encoding.UTF8.GetString(_normalized, start, end - start));
        return true;
    }

    /// <summary>Darts-clone's common prefix search, stopped at its first (shortest) result.</summary>
    private int? ShortestPrefixValue(ReadOnlySpan<byte> key)
    {
        uint[] trie = _trie;
        int node = 0;
        uint unit = trie[node];
        node ^= Offset(unit);
        foreach (byte c in key)
        {
            if (c == 0)
                break;
            node ^= c;
            if ((uint)node >= (uint)trie.Length)
                return null;
            unit = trie[node];
            if (Label(unit) != c)
                return null;
            node ^= Offset(unit);
            if ((uint)node >= (uint)trie.Length)
                return null;
            if (HasLeaf(unit))
                return (int)Value(trie[node]);
        }
        return null;
    }

    private static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;

    private static uint Value(uint unit) => unit & ((1u << 31) - 1);

    private static uint Label(uint unit) => unit & ((1u << 31) | 0xFF);

    private static int Offset(uint unit) => (int)((unit >> 10) << (int)((unit & (1u << 9)) >> 6));
}
