using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using SlmKit.Formats;

namespace SlmKit.Tokenizers;

/// <summary>Which kind of BPE tokenizer <see cref="TokenizerTrainer"/> learns.</summary>
public enum TrainedTokenizerKind
{
    /// <summary>GPT-2 style: UTF-8 bytes as the base alphabet, words split by GPT-2's regex; never an unknown token.</summary>
    ByteLevelBpe,

    /// <summary>Llama 2 style: characters as the base alphabet, spaces as ▁, byte fallback (&lt;0xXX&gt;) for the rest.</summary>
    SentencePieceBpe,
}

/// <summary>Settings for <see cref="TokenizerTrainer.Train"/>.</summary>
public sealed record TokenizerTrainingOptions
{
    public required TrainedTokenizerKind Kind { get; init; }

    /// <summary>Size of the vocabulary, special tokens and the base alphabet included.</summary>
    public required int VocabSize { get; init; }

    /// <summary>A pair must occur at least this often to be merged.</summary>
    public int MinPairFrequency { get; init; } = 2;

    /// <summary>SentencePiece kind only: characters rarer than this fall back to bytes instead of joining the alphabet.</summary>
    public int MinCharacterFrequency { get; init; } = 2;

    /// <summary>Extra special tokens (kept whole, never split), after the kind's own.</summary>
    public IReadOnlyList<string> SpecialTokens { get; init; } = [];
}

/// <summary>
/// Learns a BPE vocabulary from text — the most frequent adjacent pair is merged into a new symbol until the
/// vocabulary is full — and writes it as a Hugging Face <c>tokenizer.json</c> (+ <c>tokenizer_config.json</c>)
/// that <see cref="Tokenizer.FromHuggingFace"/> and transformers load. Deterministic: the same text and options
/// give the same file (ties between pairs go to the lexicographically smaller pair).
/// </summary>
public sealed class TokenizerTrainer
{
    private readonly TokenizerTrainingOptions _options;
    private readonly Dictionary<string, long> _wordCounts = new(StringComparer.Ordinal);
    private readonly Dictionary<char, long> _charCounts = new();
    private readonly PreTokenizer? _preTokenizer;

    public TokenizerTrainer(TokenizerTrainingOptions options)
    {
        int baseSize = SpecialTokensOf(options).Count + (options.Kind == TrainedTokenizerKind.SentencePieceBpe ? 256 : 256);
        if (options.VocabSize <= baseSize)
            throw new SlmKitException($"vocabulary size {options.VocabSize} leaves no room for merges: the special tokens and the 256 byte tokens already take {baseSize}");
        if (options.VocabSize > 1_000_000)
            throw new SlmKitException($"vocabulary size {options.VocabSize} is larger than this trainer supports (1,000,000)");
        _options = options;
        if (options.Kind == TrainedTokenizerKind.ByteLevelBpe)
            _preTokenizer = new PreTokenizer([PreTokenizer.Gpt2Pattern]);
    }

    /// <summary>Counts the words of one document (or any piece of text); call once per piece, in any order.</summary>
    public void AddText(string text)
    {
        if (_options.Kind == TrainedTokenizerKind.ByteLevelBpe)
        {
            var words = new List<Range>();
            _preTokenizer!.Split(text, words);
            foreach (Range r in words)
                Count(_wordCounts, ByteLevelAlphabet.Encode(text.AsSpan()[r]));
            return;
        }

        // SentencePiece: a space starts a word ("▁word"); each line gets the dummy prefix like the whole text would.
        foreach (string line in text.Split('\n'))
        {
            if (line.Length == 0)
                continue;
            string normalized = "\u2581" + line.Replace(' ', '\u2581');
            int start = 0;
            for (int i = 1; i <= normalized.Length; i++)
            {
                if (i == normalized.Length || normalized[i] == '\u2581')
                {
                    string word = normalized[start..i];
                    Count(_wordCounts, word);
                    foreach (char c in word)
                        _charCounts[c] = _charCounts.GetValueOrDefault(c) + 1;
                    start = i;
                }
            }
        }
    }

    /// <summary>Counts every line-delimited document of <paramref name="path"/>, streaming it.</summary>
    public void AddFile(string path)
    {
        if (!File.Exists(path))
            throw new ModelFileException(path, "file not found");
        var document = new StringBuilder();
        foreach (string line in File.ReadLines(path))
        {
            document.Append(line).Append('\n');
            if (document.Length > 1 << 16)
            {
                AddText(document.ToString());
                document.Clear();
            }
        }
        if (document.Length > 0)
            AddText(document.ToString());
    }

    /// <summary>Learns the merges and writes tokenizer.json and tokenizer_config.json into <paramref name="folder"/>.</summary>
    public TokenizerTrainingResult Train(string folder, IProgress<(int Done, int Total)>? progress = null)
    {
        if (_wordCounts.Count == 0)
            throw new SlmKitException("no training text: every input was empty");
        var specials = SpecialTokensOf(_options);
        var vocab = new List<string>(specials);
        if (_options.Kind == TrainedTokenizerKind.ByteLevelBpe)
        {
            for (int b = 0; b < 256; b++)
                vocab.Add(ByteLevelAlphabet.ByteToChar((byte)b).ToString());
        }
        else
        {
            for (int b = 0; b < 256; b++)
                vocab.Add($"<0x{b:X2}>");
            var alphabet = new List<char>();
            foreach (var (c, n) in _charCounts)
            {
                if (n >= _options.MinCharacterFrequency && !char.IsSurrogate(c))
                    alphabet.Add(c);
            }
            alphabet.Sort((a, b) => _charCounts[b] != _charCounts[a] ? _charCounts[b].CompareTo(_charCounts[a]) : a.CompareTo(b));
            int room = _options.VocabSize - vocab.Count - 1;
            foreach (char c in alphabet.Take(Math.Max(room, 0)))
                vocab.Add(c.ToString());
        }

        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < vocab.Count; i++)
            ids.TryAdd(vocab[i], i);
        var merges = LearnMerges(vocab, ids, progress);

        Directory.CreateDirectory(folder);
        string tokenizerPath = Path.Combine(folder, "tokenizer.json");
        AtomicFile.Write(tokenizerPath, stream => WriteTokenizerJson(stream, vocab, merges, specials));
        AtomicFile.Write(Path.Combine(folder, "tokenizer_config.json"), stream => WriteTokenizerConfig(stream, specials));
        return new TokenizerTrainingResult(tokenizerPath, vocab.Count, merges.Count, _wordCounts.Count);
    }

    private List<(string Left, string Right)> LearnMerges(List<string> vocab, Dictionary<string, int> ids, IProgress<(int, int)>? progress)
    {
        // Each distinct word as a sequence of symbol ids, with how often it occurs.
        var words = new List<int[]>(_wordCounts.Count);
        var frequencies = new List<long>(_wordCounts.Count);
        var keys = _wordCounts.Keys.ToArray();
        Array.Sort(keys, StringComparer.Ordinal);
        Span<byte> bytes = stackalloc byte[4];
        foreach (string word in keys)
        {
            var symbols = new List<int>(word.Length);
            foreach (char c in word)
            {
                if (ids.TryGetValue(c.ToString(), out int id))
                    symbols.Add(id);
                else
                {
                    // SentencePiece kind: a character outside the alphabet becomes its UTF-8 byte tokens.
                    int n = Encoding.UTF8.GetBytes([c], bytes);
                    for (int i = 0; i < n; i++)
                        symbols.Add(ids[$"<0x{bytes[i]:X2}>"]);
                }
            }
            words.Add([.. symbols]);
            frequencies.Add(_wordCounts[word]);
        }

        var pairCounts = new Dictionary<(int, int), long>();
        var pairWords = new Dictionary<(int, int), HashSet<int>>();
        var queue = new PriorityQueue<(int, int), (long, string, string)>(Comparer<(long Count, string Left, string Right)>.Create((a, b) =>
        {
            int byCount = b.Count.CompareTo(a.Count);
            if (byCount != 0)
                return byCount;
            int byLeft = string.CompareOrdinal(a.Left, b.Left);
            return byLeft != 0 ? byLeft : string.CompareOrdinal(a.Right, b.Right);
        }));
        bool enqueueChanges = false;
        for (int w = 0; w < words.Count; w++)
            AddPairs(w, +1);
        foreach (var (pair, count) in pairCounts)
            queue.Enqueue(pair, (count, vocab[pair.Item1], vocab[pair.Item2]));
        enqueueChanges = true;

        var merges = new List<(string, string)>();
        int target = _options.VocabSize - vocab.Count;
        while (merges.Count < target && queue.TryDequeue(out var best, out var priority))
        {
            if (!pairCounts.TryGetValue(best, out long current) || current != priority.Item1)
                continue; // stale entry: the count changed since it was queued
            if (current < _options.MinPairFrequency)
                break;
            string merged = vocab[best.Item1] + vocab[best.Item2];
            if (ids.ContainsKey(merged))
            {
                // The same string can arise from two different pairs; keep one id per string.
                pairCounts.Remove(best);
                continue;
            }
            int newId = vocab.Count;
            vocab.Add(merged);
            ids[merged] = newId;
            merges.Add((vocab[best.Item1], vocab[best.Item2]));

            foreach (int w in pairWords[best].ToArray())
            {
                AddPairs(w, -1);
                words[w] = Merge(words[w], best, newId);
                AddPairs(w, +1);
            }
            pairCounts.Remove(best);
            pairWords.Remove(best);
            if (merges.Count % 64 == 0)
                progress?.Report((merges.Count, target));
        }
        progress?.Report((merges.Count, target));
        return merges;

        void AddPairs(int w, int sign)
        {
            int[] symbols = words[w];
            long f = frequencies[w] * sign;
            for (int i = 0; i + 1 < symbols.Length; i++)
            {
                var pair = (symbols[i], symbols[i + 1]);
                long count = pairCounts.GetValueOrDefault(pair) + f;
                if (count <= 0)
                {
                    pairCounts.Remove(pair);
                    continue;
                }
                pairCounts[pair] = count;
                if (sign > 0)
                {
                    if (!pairWords.TryGetValue(pair, out var set))
                        pairWords[pair] = set = [];
                    set.Add(w);
                }
                // Queue every new count, down as well as up: entries whose count no longer matches are skipped.
                if (enqueueChanges)
                    queue.Enqueue(pair, (count, vocab[pair.Item1], vocab[pair.Item2]));
            }
        }
    }

    private static int[] Merge(int[] symbols, (int Left, int Right) pair, int newId)
    {
        var result = new List<int>(symbols.Length);
        for (int i = 0; i < symbols.Length; i++)
        {
            if (i + 1 < symbols.Length && symbols[i] == pair.Left && symbols[i + 1] == pair.Right)
            {
                result.Add(newId);
                i++;
            }
            else
            {
                result.Add(symbols[i]);
            }
        }
        return [.. result];
    }

    private static List<string> SpecialTokensOf(TokenizerTrainingOptions options)
    {
        var specials = options.Kind == TrainedTokenizerKind.ByteLevelBpe
            ? new List<string> { "<|endoftext|>" }
            : new List<string> { "<unk>", "<s>", "</s>" };
        foreach (string s in options.SpecialTokens)
        {
            if (!specials.Contains(s))
                specials.Add(s);
        }
        return specials;
    }

    private void WriteTokenizerJson(Stream stream, List<string> vocab, List<(string Left, string Right)> merges, List<string> specials)
    {
        bool spm = _options.Kind == TrainedTokenizerKind.SentencePieceBpe;
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        for (int i = 0; i < specials.Count; i++)
        {
            w.WriteStartObject();
            w.WriteNumber("id", i);
            w.WriteString("content", specials[i]);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("special", true);
            w.WriteEndObject();
        }
        w.WriteEndArray();

        if (spm)
        {
            // The same normalizer/decoder shape as Llama 2's tokenizer.json.
            w.WriteStartObject("normalizer");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("normalizers");
            w.WriteStartObject();
            w.WriteString("type", "Prepend");
            w.WriteString("prepend", "\u2581");
            w.WriteEndObject();
            w.WriteStartObject();
            w.WriteString("type", "Replace");
            w.WriteStartObject("pattern");
            w.WriteString("String", " ");
            w.WriteEndObject();
            w.WriteString("content", "\u2581");
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteNull("pre_tokenizer");
            w.WriteStartObject("post_processor");
            w.WriteString("type", "TemplateProcessing");
            w.WriteStartArray("single");
            w.WriteStartObject();
            w.WriteStartObject("SpecialToken");
            w.WriteString("id", "<s>");
            w.WriteNumber("type_id", 0);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject();
            w.WriteStartObject("Sequence");
            w.WriteString("id", "A");
            w.WriteNumber("type_id", 0);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteStartArray("pair");
            w.WriteEndArray();
            w.WriteStartObject("special_tokens");
            w.WriteStartObject("<s>");
            w.WriteString("id", "<s>");
            w.WriteStartArray("ids");
            w.WriteNumberValue(1);
            w.WriteEndArray();
            w.WriteStartArray("tokens");
            w.WriteStringValue("<s>");
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject("decoder");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("decoders");
            w.WriteStartObject();
            w.WriteString("type", "Replace");
            w.WriteStartObject("pattern");
            w.WriteString("String", "\u2581");
            w.WriteEndObject();
            w.WriteString("content", " ");
            w.WriteEndObject();
            w.WriteStartObject();
            w.WriteString("type", "ByteFallback");
            w.WriteEndObject();
            w.WriteStartObject();
            w.WriteString("type", "Fuse");
            w.WriteEndObject();
            w.WriteStartObject();
            w.WriteString("type", "Strip");
            w.WriteString("content", " ");
            w.WriteNumber("start", 1);
            w.WriteNumber("stop", 0);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("normalizer");
            WriteByteLevel(w, "pre_tokenizer", useRegex: true);
            WriteByteLevel(w, "post_processor", useRegex: true);
            WriteByteLevel(w, "decoder", useRegex: true);
        }

        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        if (spm)
            w.WriteString("unk_token", "<unk>");
        else
            w.WriteNull("unk_token");
        w.WriteNull("continuing_subword_prefix");
        w.WriteNull("end_of_word_suffix");
        w.WriteBoolean("fuse_unk", spm);
        w.WriteBoolean("byte_fallback", spm);
        w.WriteBoolean("ignore_merges", false);
        w.WriteStartObject("vocab");
        for (int i = 0; i < vocab.Count; i++)
            w.WriteNumber(vocab[i], i);
        w.WriteEndObject();
        w.WriteStartArray("merges");
        foreach (var (left, right) in merges)
        {
            w.WriteStartArray();
            w.WriteStringValue(left);
            w.WriteStringValue(right);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteByteLevel(Utf8JsonWriter w, string name, bool useRegex)
    {
        w.WriteStartObject(name);
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", false);
        w.WriteBoolean("trim_offsets", true);
        w.WriteBoolean("use_regex", useRegex);
        w.WriteEndObject();
    }

    private void WriteTokenizerConfig(Stream stream, List<string> specials)
    {
        bool spm = _options.Kind == TrainedTokenizerKind.SentencePieceBpe;
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        w.WriteStartObject();
        w.WriteBoolean("add_bos_token", spm);
        w.WriteBoolean("add_eos_token", false);
        w.WriteString("bos_token", spm ? "<s>" : "<|endoftext|>");
        w.WriteString("eos_token", spm ? "</s>" : "<|endoftext|>");
        if (spm)
            w.WriteString("unk_token", "<unk>");
        w.WriteString("tokenizer_class", spm ? "LlamaTokenizerFast" : "GPT2TokenizerFast");
        w.WriteNumber("model_max_length", 2048);
        w.WriteEndObject();
    }

    private static void Count(Dictionary<string, long> counts, string key) =>
        counts[key] = counts.GetValueOrDefault(key) + 1;
}

/// <summary>What <see cref="TokenizerTrainer.Train"/> produced.</summary>
public sealed record TokenizerTrainingResult(string TokenizerJsonPath, int VocabSize, int MergeCount, int DistinctWords)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{VocabSize} tokens ({MergeCount} merges) from {DistinctWords} distinct words → {TokenizerJsonPath}");
}
