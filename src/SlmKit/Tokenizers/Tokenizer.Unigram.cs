namespace SlmKit.Tokenizers;

public sealed partial class Tokenizer
{
    /// <summary>Score of an unknown character below the vocabulary's lowest (Hugging Face's and SentencePiece's kUnkPenalty).</summary>
    private const float UnknownPenalty = 10f;

    /// <summary>
    /// A Unigram vocabulary's encoding of one stretch of normalized text: split on whitespace where the pre-tokenizer
    /// says so (T5), each word prefixed with "▁", then the most probable segmentation of each word (Viterbi over the
    /// pieces' log probabilities), a character no piece starts with becoming &lt;unk&gt; at the lowest score minus 10, and
    /// runs of &lt;unk&gt; fused into one, as Hugging Face's Unigram model encodes.
    /// </summary>
    private void EncodeUnigram(string text, List<int> output)
    {
        if (_unigramSplitOnWhitespace)
        {
            foreach (string word in text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
                EncodeUnigramWord("▁" + word, output);
            return;
        }
        // Metaspace alone: spaces become "▁", a "▁" is prepended, and the text splits before each "▁".
        string escaped = "▁" + text.Replace(' ', '▁');
        int start = 0;
        for (int i = 1; i <= escaped.Length; i++)
        {
            if (i == escaped.Length || escaped[i] == '▁')
            {
                EncodeUnigramWord(escaped[start..i], output);
                start = i;
            }
        }
    }

    private void EncodeUnigramWord(string word, List<int> output)
    {
        int n = word.Length;
        var score = new double[n + 1];
        var from = new int[n + 1];
        var id = new int[n + 1];
        Array.Fill(from, -1);
        float unknownScore = _unigramMinScore - UnknownPenalty;
        for (int start = 0; start < n; start++)
        {
            if (start > 0 && from[start] < 0)
                continue; // not reachable (the second half of a surrogate pair)
            int step = char.IsSurrogatePair(word, start) ? 2 : 1;
            bool single = false;
            int longest = Math.Min(_unigramMaxPieceLength, n - start);
            for (int length = 1; length <= longest; length++)
            {
                if (!_pieceLookup.TryGetValue(word.AsSpan(start, length), out int piece))
                    continue;
                double candidate = score[start] + _scores[piece];
                int end = start + length;
                if (from[end] < 0 || candidate > score[end])
                {
                    score[end] = candidate;
                    from[end] = start;
                    id[end] = piece;
                }
                single |= length == step;
            }
            if (!single)
            {
                int end = start + step;
                double candidate = score[start] + unknownScore;
                if (from[end] < 0 || candidate > score[end])
                {
                    score[end] = candidate;
                    from[end] = start;
                    id[end] = _unkId ?? 0;
                }
            }
        }

        int first = output.Count;
        for (int end = n; end > 0; end = from[end])
        {
            // Consecutive unknowns become one (fuse_unk).
            if (_unkId is int unk && id[end] == unk && output.Count > first && output[^1] == unk)
                continue;
            output.Add(id[end]);
        }
        output.Reverse(first, output.Count - first);
    }
}
