using SlmKit.Inference;
using SlmKit.Tokenizers;

namespace SlmKit.Training.Data;

/// <summary>
/// Turns documents into training batches: tokenize each document with the model's tokenizer, mark document
/// boundaries (BOS before each document when the tokenizer adds BOS, as llama2.c does; otherwise EOS after it, as
/// GPT-2 does), pack the stream into fixed windows of SequenceLength + 1 tokens (inputs and shifted targets), and
/// shuffle windows through a seeded buffer. Every <c>1/ValidationFraction</c>-th document is held out, so the split
/// is deterministic and needs no second pass. Everything streams: only the shuffle buffer is held in memory.
/// </summary>
public sealed class TrainingCorpus
{
    private readonly IReadOnlyList<DataSource> _sources;
    private readonly Tokenizer _tokenizer;
    private readonly int _validationEvery;
    private readonly ulong _seed;
    private readonly int _shuffleBuffer;

    public TrainingCorpus(IReadOnlyList<DataSource> sources, Tokenizer tokenizer, int sequenceLength, double validationFraction = 0.05, ulong seed = 1, int shuffleBuffer = 512)
    {
        if (sources.Count == 0)
            throw new SlmKitException("no training data: give at least one data file");
        if (sequenceLength < 2)
            throw new SlmKitException($"sequence length must be at least 2 (got {sequenceLength})");
        if (!(validationFraction >= 0 && validationFraction < 1))
            throw new SlmKitException($"validation fraction must be in [0, 1) (got {validationFraction})");
        _sources = sources;
        _tokenizer = tokenizer;
        SequenceLength = sequenceLength;
        _validationEvery = validationFraction > 0 ? Math.Max(2, (int)Math.Round(1 / validationFraction)) : 0;
        _seed = seed;
        _shuffleBuffer = Math.Max(1, shuffleBuffer);
    }

    public int SequenceLength { get; }

    /// <summary>Endless shuffled training batches, epoch after epoch; the same seed gives the same sequence.</summary>
    public IEnumerable<TokenBatch> TrainingBatches(int batchSize)
    {
        if (batchSize < 1)
            throw new SlmKitException($"batch size must be at least 1 (got {batchSize})");
        var random = new Random64(_seed * 0x9E3779B97F4A7C15UL + 1);
        var buffer = new List<int[]>(_shuffleBuffer);
        var batch = new List<int[]>(batchSize);
        for (int epoch = 0; ; epoch++)
        {
            int produced = 0;
            foreach (int[] window in Windows(validation: false))
            {
                produced++;
                if (buffer.Count < _shuffleBuffer)
                {
                    buffer.Add(window);
                    continue;
                }
                int pick = (int)(random.NextUInt32() % (uint)buffer.Count);
                batch.Add(buffer[pick]);
                buffer[pick] = window;
                if (batch.Count == batchSize)
                {
                    yield return ToBatch(batch);
                    batch.Clear();
                }
            }
            if (produced == 0)
                throw new SlmKitException($"the training data holds no sequence of {SequenceLength + 1} tokens");
            // Drain the buffer at the end of each epoch, in random order.
            while (buffer.Count > 0)
            {
                int pick = (int)(random.NextUInt32() % (uint)buffer.Count);
                batch.Add(buffer[pick]);
                buffer[pick] = buffer[^1];
                buffer.RemoveAt(buffer.Count - 1);
                if (batch.Count == batchSize)
                {
                    yield return ToBatch(batch);
                    batch.Clear();
                }
            }
        }
    }

    /// <summary>The held-out windows as batches (at most <paramref name="maxBatches"/>), in file order.</summary>
    public IReadOnlyList<TokenBatch> ValidationBatches(int batchSize, int maxBatches)
    {
        var batches = new List<TokenBatch>();
        if (_validationEvery == 0)
            return batches;
        var batch = new List<int[]>(batchSize);
        foreach (int[] window in Windows(validation: true))
        {
            batch.Add(window);
            if (batch.Count == batchSize)
            {
                batches.Add(ToBatch(batch));
                batch.Clear();
                if (batches.Count == maxBatches)
                    break;
            }
        }
        if (batch.Count > 0 && batches.Count < maxBatches)
            batches.Add(ToBatch(batch));
        return batches;
    }

    /// <summary>Windows of SequenceLength + 1 tokens from the training or the validation documents.</summary>
    public IEnumerable<int[]> Windows(bool validation)
    {
        int window = SequenceLength + 1;
        var pending = new List<int>(window * 2);
        long index = 0;
        bool bosFirst = _tokenizer.AddBos && _tokenizer.BosId is not null;
        foreach (var source in _sources)
        {
            foreach (string document in DocumentReader.Read(source))
            {
                bool held = _validationEvery > 0 && index % _validationEvery == _validationEvery - 1;
                index++;
                if (held != validation)
                    continue;
                if (bosFirst)
                    pending.Add(_tokenizer.BosId!.Value);
                pending.AddRange(_tokenizer.Encode(document, addSpecial: false));
                if (!bosFirst && _tokenizer.EosId is int eos)
                    pending.Add(eos);
                // Consecutive windows share one token: the last target of one is the first input of the next.
                int start = 0;
                while (pending.Count - start >= window)
                {
                    yield return pending.GetRange(start, window).ToArray();
                    start += SequenceLength;
                }
                pending.RemoveRange(0, start);
            }
        }
    }

    private TokenBatch ToBatch(List<int[]> windows)
    {
        int seq = SequenceLength;
        var tokens = new int[windows.Count * seq];
        var targets = new int[windows.Count * seq];
        for (int b = 0; b < windows.Count; b++)
        {
            Array.Copy(windows[b], 0, tokens, b * seq, seq);
            Array.Copy(windows[b], 1, targets, b * seq, seq);
        }
        return new TokenBatch(tokens, targets, windows.Count, seq);
    }
}
