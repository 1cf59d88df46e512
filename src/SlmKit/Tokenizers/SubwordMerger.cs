namespace SlmKit.Tokenizers;

/// <summary>
/// The two merge loops. Both start from one symbol per code point and repeatedly merge the best adjacent pair,
/// using a priority queue with lazy invalidation (O(n log n) per word), and return the final symbols as ranges.
/// </summary>
/// <remarks>
/// Written here rather than taken from Microsoft.ML.Tokenizers: its BpeTokenizer brings its own pre-tokenizer,
/// special-token and unknown-token handling and cannot express llama.cpp's rules exactly (score-ordered SPM merges
/// over every vocabulary entry, ignore_merges, per-pre-type regex chains, byte fallback to &lt;0xXX&gt;), which the
/// tests hold us to token for token; the loops themselves are short.
/// </remarks>
internal static class SubwordMerger
{
    private struct Symbol
    {
        public int Start;
        public int Length;
        public int Prev;
        public int Next;
    }

    private readonly struct Candidate(int left, int right, int leftLength, int rightLength)
    {
        public readonly int Left = left;
        public readonly int Right = right;
        public readonly int LeftLength = leftLength;
        public readonly int RightLength = rightLength;
    }

    /// <summary>BPE by merge rank (lower first; ties: leftmost), as Hugging Face and llama.cpp's BPE do.</summary>
    public static void MergeByRank(string word, Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> ranks, List<Range> output)
    {
        Symbol[] symbols = Initialize(word, out int count);
        if (count == 0)
            return;
        var queue = new PriorityQueue<Candidate, (int Rank, int Left)>();
        Span<char> keyBuffer = stackalloc char[256];

        void TryAdd(int left, int right, Span<char> buffer)
        {
            if (left < 0 || right < 0)
                return;
            ref Symbol l = ref symbols[left];
            ref Symbol r = ref symbols[right];
            int keyLength = l.Length + 1 + r.Length;
            Span<char> key = keyLength <= buffer.Length ? buffer[..keyLength] : new char[keyLength];
            word.AsSpan(l.Start, l.Length).CopyTo(key);
            key[l.Length] = ' ';
            word.AsSpan(r.Start, r.Length).CopyTo(key[(l.Length + 1)..]);
            if (ranks.TryGetValue(key, out int rank))
                queue.Enqueue(new Candidate(left, right, l.Length, r.Length), (rank, left));
        }

        for (int i = 1; i < count; i++)
            TryAdd(i - 1, i, keyBuffer);

        while (queue.TryDequeue(out Candidate c, out _))
        {
            ref Symbol l = ref symbols[c.Left];
            ref Symbol r = ref symbols[c.Right];
            // Stale if either side changed since the pair was queued (starts never move, so lengths tell).
            if (l.Length != c.LeftLength || r.Length != c.RightLength || l.Next != c.Right)
                continue;
            l.Length += r.Length;
            r.Length = 0;
            l.Next = r.Next;
            if (r.Next >= 0)
                symbols[r.Next].Prev = c.Left;
            TryAdd(l.Prev, c.Left, keyBuffer);
            TryAdd(c.Left, l.Next, keyBuffer);
        }

        Collect(symbols, output);
    }

    /// <summary>
    /// SentencePiece BPE as llama.cpp runs it: a pair may merge when the concatenation is any vocabulary entry; the
    /// highest score merges first (ties: leftmost).
    /// </summary>
    public static void MergeByScore(string word, Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> vocabulary, float[] scores, List<Range> output)
    {
        Symbol[] symbols = Initialize(word, out int count);
        if (count == 0)
            return;
        var queue = new PriorityQueue<Candidate, (float NegScore, int Left)>();

        void TryAdd(int left, int right)
        {
            if (left < 0 || right < 0)
                return;
            ref Symbol l = ref symbols[left];
            ref Symbol r = ref symbols[right];
            if (vocabulary.TryGetValue(word.AsSpan(l.Start, l.Length + r.Length), out int id))
                queue.Enqueue(new Candidate(left, right, l.Length, r.Length), (-scores[id], left));
        }

        for (int i = 1; i < count; i++)
            TryAdd(i - 1, i);

        while (queue.TryDequeue(out Candidate c, out _))
        {
            ref Symbol l = ref symbols[c.Left];
            ref Symbol r = ref symbols[c.Right];
            if (l.Length == 0 || r.Length == 0 || l.Length + r.Length != c.LeftLength + c.RightLength || l.Next != c.Right)
                continue;
            l.Length += r.Length;
            r.Length = 0;
            l.Next = r.Next;
            if (r.Next >= 0)
                symbols[r.Next].Prev = c.Left;
            TryAdd(l.Prev, c.Left);
            TryAdd(c.Left, l.Next);
        }

        Collect(symbols, output);
    }

    private static Symbol[] Initialize(string word, out int count)
    {
        var symbols = new Symbol[word.Length];
        count = 0;
        for (int i = 0; i < word.Length; i++)
        {
            int length = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            symbols[count] = new Symbol { Start = i, Length = length, Prev = count - 1, Next = count + 1 };
            count++;
            i += length - 1;
        }
        if (count > 0)
            symbols[count - 1].Next = -1;
        return symbols;
    }

    private static void Collect(Symbol[] symbols, List<Range> output)
    {
        for (int i = 0; i >= 0; i = symbols[i].Next)
        {
            if (symbols[i].Length > 0)
                output.Add(new Range(symbols[i].Start, symbols[i].Start + symbols[i].Length));
        }
    }
}
