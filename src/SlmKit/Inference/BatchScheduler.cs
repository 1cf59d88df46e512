using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using SlmKit.Models;
using SlmKit.Tokenizers;

namespace SlmKit.Inference;

/// <summary>Settings of a <see cref="BatchScheduler"/>.</summary>
public sealed record SchedulerOptions
{
    /// <summary>Sequences decoded together (slots); each has its own KV cache of <see cref="ContextSize"/> positions.</summary>
    public int Parallel { get; init; } = 1;

    /// <summary>Requests that may wait for a slot; one more is refused with <see cref="QueueFullException"/>.</summary>
    public int MaxQueue { get; init; } = 64;

    /// <summary>Positions per slot (prompt + generated).</summary>
    public int ContextSize { get; init; } = 2048;
}

/// <summary>What to generate: prompt tokens and how to pick the next ones.</summary>
public sealed record GenerationRequest
{
    public required int[] PromptTokens { get; init; }
    public GenerationOptions Options { get; init; } = new();

    /// <summary>Output grammar (JSON, tool calls); null for free text.</summary>
    public JsonGrammar? Grammar { get; init; }

    /// <summary>-1: no log-probabilities; 0: the chosen token's; N: also the N most likely alternatives (at most 20).</summary>
    public int TopLogprobs { get; init; } = -1;
}

/// <summary>A token's log-probability under the distribution it was drawn from (after any grammar mask, at temperature 1).</summary>
public sealed record TokenLogprob(int TokenId, string Token, float Logprob, IReadOnlyList<TokenAlternative> TopAlternatives);

/// <summary>One of the most likely tokens at a position.</summary>
public readonly record struct TokenAlternative(int TokenId, string Token, float Logprob);

/// <summary>
/// Output for one generated token: the text it releases (may be empty while a multi-byte character or a possible stop
/// string is held back; the last piece may carry held-back text and no token) and, when asked for, its log-probability.
/// </summary>
public readonly record struct GeneratedPiece(string Text, TokenLogprob? Logprob);

/// <summary>How a generation ended and what it counted.</summary>
public sealed record GenerationResult(FinishReason Reason, int PromptTokens, int CompletionTokens);

/// <summary>A request refused because every slot is busy and the waiting queue is full.</summary>
public sealed class QueueFullException : SlmKitException
{
    public QueueFullException(int maxQueue) : base($"the server is busy: {maxQueue} requests are already waiting") => MaxQueue = maxQueue;

    public int MaxQueue { get; }
}

/// <summary>Counters for monitoring.</summary>
public sealed record SchedulerMetrics(
    int Slots, int ActiveSequences, int QueueDepth,
    long RequestsStarted, long RequestsCompleted, long RequestsCancelled, long RequestsRejected,
    long PromptTokens, long GeneratedTokens, long DecodeSteps, double RecentTokensPerSecond);

/// <summary>The pieces of one generation as they are produced, and how it ended.</summary>
public sealed class GenerationStream : IAsyncEnumerable<GeneratedPiece>
{
    internal GenerationStream(ChannelReader<GeneratedPiece> pieces, Task<GenerationResult> completion)
    {
        Pieces = pieces;
        Completion = completion;
    }

    public ChannelReader<GeneratedPiece> Pieces { get; }

    /// <summary>Completes once generation has ended (also when cancelled).</summary>
    public Task<GenerationResult> Completion { get; }

    public IAsyncEnumerator<GeneratedPiece> GetAsyncEnumerator(CancellationToken cancellationToken = default) =>
        Pieces.ReadAllAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
}

/// <summary>
/// Continuous batching: one thread owns the model and runs a loop in which waiting requests take free slots (their
/// prompts are prefilled on entry), every active sequence samples its next token, and then a single
/// <see cref="LanguageModel.ForwardBatch"/> advances all of them together. Sequences join and leave between steps; a
/// cancelled request leaves at the next step and its slot is reused at once.
/// </summary>
public sealed class BatchScheduler : IDisposable
{
    private readonly LanguageModel _model;
    private readonly Tokenizer _tokenizer;
    private readonly SchedulerOptions _options;
    private readonly object _lock = new();
    private readonly LinkedList<Sequence> _waiting = new();
    private readonly List<Sequence> _active = [];
    private readonly Stack<SequenceState> _freeCaches = new();
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly Thread _thread;
    private readonly Queue<(long Ticks, int Tokens)> _recent = new();
    private bool _disposed;
    private long _started, _completed, _cancelled, _rejected, _promptTokens, _generatedTokens, _steps;

    public BatchScheduler(LanguageModel model, Tokenizer tokenizer, SchedulerOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Parallel < 1)
            throw new SlmKitException($"parallel slots must be 1 or more (got {options.Parallel})");
        if (options.MaxQueue < 0)
            throw new SlmKitException($"queue size must be 0 or more (got {options.MaxQueue})");
        if (options.ContextSize < 1)
            throw new SlmKitException($"context size must be positive (got {options.ContextSize})");
        _model = model;
        _tokenizer = tokenizer;
        _options = options;
        _thread = new Thread(Run) { IsBackground = true, Name = "SlmKit batch scheduler" };
        _thread.Start();
    }

    public SchedulerOptions Options => _options;

    /// <summary>Queues a generation. Validates everything a caller can get wrong before returning.</summary>
    /// <exception cref="SlmKitException">A bad prompt or option; the message says which.</exception>
    /// <exception cref="QueueFullException">All slots are busy and the queue is full.</exception>
    public GenerationStream Submit(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Options.Validate();
        if (request.PromptTokens.Length == 0)
            throw new SlmKitException("the prompt is empty");
        if (request.PromptTokens.Length > _options.ContextSize)
            throw new SlmKitException($"the prompt has {request.PromptTokens.Length} tokens, more than the context size {_options.ContextSize}");
        foreach (int token in request.PromptTokens)
        {
            if ((uint)token >= (uint)_model.VocabSize)
                throw new SlmKitException($"token id {token} is outside the vocabulary (0..{_model.VocabSize - 1})");
        }
        if (request.TopLogprobs > 20)
            throw new SlmKitException($"top log-probabilities must be at most 20 (got {request.TopLogprobs})");

        var sequence = new Sequence(request, _tokenizer, _model.VocabSize, cancellationToken);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int free = _options.Parallel - _active.Count;
            if (_waiting.Count - free >= _options.MaxQueue)
            {
                _rejected++;
                throw new QueueFullException(_options.MaxQueue);
            }
            sequence.Node = _waiting.AddLast(sequence);
            _wake.Set();
        }
        if (cancellationToken.CanBeCanceled)
            sequence.Registration = cancellationToken.Register(static state => ((ManualResetEventSlim)state!).Set(), _wake);
        return new GenerationStream(sequence.Channel.Reader, sequence.Result.Task);
    }

    /// <summary>A snapshot of the counters.</summary>
    public SchedulerMetrics GetMetrics()
    {
        lock (_lock)
        {
            long now = Stopwatch.GetTimestamp();
            double window = 10.0;
            int tokens = 0;
            foreach (var (ticks, count) in _recent)
            {
                if (Stopwatch.GetElapsedTime(ticks, now).TotalSeconds <= window)
                    tokens += count;
            }
            return new SchedulerMetrics(_options.Parallel, _active.Count, _waiting.Count, _started, _completed, _cancelled, _rejected,
                _promptTokens, _generatedTokens, _steps, tokens / window);
        }
    }

    private void Run()
    {
        var caches = new List<SequenceState>(_options.Parallel);
        var stepping = new List<Sequence>(_options.Parallel);
        var tokens = new int[_options.Parallel];
        var logits = new float[_options.Parallel * _model.VocabSize];
        while (true)
        {
            lock (_lock)
            {
                if (_disposed)
                    break;
                if (_active.Count == 0 && _waiting.Count == 0)
                    _wake.Reset();
            }
            if (!_wake.IsSet && _active.Count == 0)
            {
                _wake.Wait();
                continue;
            }

            Admit();
            caches.Clear();
            stepping.Clear();
            for (int i = _active.Count - 1; i >= 0; i--)
            {
                var sequence = _active[i];
                if (sequence.CancellationToken.IsCancellationRequested)
                {
                    Finish(sequence, FinishReason.Cancelled);
                    continue;
                }
                if (SampleNext(sequence) is int next)
                {
                    tokens[stepping.Count] = next;
                    stepping.Add(sequence);
                    caches.Add(sequence.Cache!);
                }
            }
            if (stepping.Count == 0)
                continue;

            int vocab = _model.VocabSize;
            try
            {
                _model.ForwardBatch(caches, tokens.AsSpan(0, stepping.Count), logits.AsSpan(0, stepping.Count * vocab));
            }
            catch (Exception e)
            {
                foreach (var sequence in stepping)
                    Fail(sequence, e);
                continue;
            }
            for (int i = 0; i < stepping.Count; i++)
                logits.AsSpan(i * vocab, vocab).CopyTo(stepping[i].Logits);
            lock (_lock)
            {
                _steps++;
                _generatedTokens += stepping.Count;
                _recent.Enqueue((Stopwatch.GetTimestamp(), stepping.Count));
                while (_recent.Count > 0 && Stopwatch.GetElapsedTime(_recent.Peek().Ticks).TotalSeconds > 10)
                    _recent.Dequeue();
            }
        }

        lock (_lock)
        {
            foreach (var sequence in _waiting)
                sequence.Abandon();
            _waiting.Clear();
            foreach (var sequence in _active)
                sequence.Abandon();
            _active.Clear();
        }
    }

    /// <summary>Moves waiting requests into free slots and prefills their prompts; drops cancelled waiters.</summary>
    private void Admit()
    {
        while (true)
        {
            Sequence? sequence = null;
            lock (_lock)
            {
                for (var node = _waiting.First; node is not null;)
                {
                    var nextNode = node.Next;
                    if (node.Value.CancellationToken.IsCancellationRequested)
                    {
                        _waiting.Remove(node);
                        node.Value.Complete(FinishReason.Cancelled);
                        _cancelled++;
                    }
                    node = nextNode;
                }
                if (_active.Count >= _options.Parallel || _waiting.First is null)
                    return;
                sequence = _waiting.First.Value;
                _waiting.RemoveFirst();
                _active.Add(sequence);
                _started++;
                _promptTokens += sequence.Request.PromptTokens.Length;
            }

            sequence.Cache = _freeCaches.Count > 0 ? _freeCaches.Pop() : _model.CreateCache(_options.ContextSize);
            sequence.Cache.Length = 0;
            try
            {
                _model.Forward(sequence.Cache, sequence.Request.PromptTokens, sequence.Logits, allPositions: false);
            }
            catch (Exception e)
            {
                Fail(sequence, e);
            }
        }
    }

    /// <summary>Samples and emits the next token; returns it when the sequence goes on (it must be fed next step).</summary>
    private int? SampleNext(Sequence s)
    {
        var maxTokens = s.Request.Options.MaxTokens;
        if (s.Generated >= maxTokens)
            return Finish(s, FinishReason.Length);
        if (s.Constraint is { IsComplete: true })
            return Finish(s, FinishReason.Stop);

        Span<float> logits = s.Logits;
        s.Constraint?.Mask(logits, Math.Min(maxTokens - s.Generated, s.Cache!.Capacity - s.Cache.Length + 1));
        float[]? original = null;
        if (s.Request.TopLogprobs >= 0)
        {
            original = s.LogprobScratch ??= new float[logits.Length];
            logits.CopyTo(original);
        }

        int next;
        try
        {
            next = s.Sampler.Sample(logits, CollectionsMarshal.AsSpan(s.History));
        }
        catch (Exception e)
        {
            Fail(s, e);
            return null;
        }
        if (s.EndIds.Contains(next))
            return Finish(s, FinishReason.Stop);

        s.Constraint?.Accept(next);
        s.Generated++;
        s.History.Add(next);
        string text = s.Stops.Push(s.Decoder.Append(next));
        TokenLogprob? logprob = original is null ? null : Logprobs(original, next, s.Request.TopLogprobs);
        s.Channel.Writer.TryWrite(new GeneratedPiece(text, logprob));

        if (s.Stops.Stopped || s.Constraint is { IsComplete: true })
            return Finish(s, FinishReason.Stop);
        if (s.Generated >= maxTokens || s.Cache!.Length >= s.Cache.Capacity)
            return Finish(s, FinishReason.Length);
        return next;
    }

    private TokenLogprob Logprobs(float[] logits, int chosen, int top)
    {
        float max = float.NegativeInfinity;
        foreach (float v in logits)
            max = Math.Max(max, v);
        double sum = 0;
        foreach (float v in logits)
            sum += Math.Exp(v - max);
        float logZ = max + (float)Math.Log(sum);
        var alternatives = new List<TokenAlternative>(top);
        if (top > 0)
        {
            // Partial selection of the top entries; top is at most 20.
            var picked = new HashSet<int>();
            for (int k = 0; k < top; k++)
            {
                int best = -1;
                for (int i = 0; i < logits.Length; i++)
                {
                    if (!picked.Contains(i) && (best < 0 || logits[i] > logits[best]))
                        best = i;
                }
                if (best < 0 || float.IsNegativeInfinity(logits[best]))
                    break;
                picked.Add(best);
                alternatives.Add(new TokenAlternative(best, TokenText(best), logits[best] - logZ));
            }
        }
        return new TokenLogprob(chosen, TokenText(chosen), logits[chosen] - logZ, alternatives);
    }

    /// <summary>The text a token adds in the middle of a sequence (no leading-space stripping; special tokens as their text).</summary>
    private string TokenText(int id)
    {
        if (id >= _tokenizer.VocabSize)
            return "";
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(16);
        bool emitted = true;
        _tokenizer.AppendPieceBytes(id, skipSpecial: false, ref emitted, buffer);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private int? Finish(Sequence s, FinishReason reason)
    {
        if (reason != FinishReason.Cancelled)
        {
            string rest = s.Stops.Stopped ? "" : s.Stops.Push(s.Decoder.Flush());
            if (!s.Stops.Stopped)
                rest += s.Stops.Drain();
            if (rest.Length > 0)
                s.Channel.Writer.TryWrite(new GeneratedPiece(rest, null));
        }
        Release(s);
        s.Complete(reason);
        lock (_lock)
        {
            if (reason == FinishReason.Cancelled)
                _cancelled++;
            else
                _completed++;
        }
        return null;
    }

    private void Fail(Sequence s, Exception e)
    {
        Release(s);
        s.Fail(e);
        lock (_lock)
            _completed++;
    }

    private void Release(Sequence s)
    {
        lock (_lock)
            _active.Remove(s);
        if (s.Cache is { } cache)
        {
            _freeCaches.Push(cache);
            s.Cache = null;
        }
        s.Registration.Dispose();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            _wake.Set();
        }
        _thread.Join();
        _wake.Dispose();
    }

    private sealed class Sequence
    {
        public Sequence(GenerationRequest request, Tokenizer tokenizer, int vocab, CancellationToken cancellationToken)
        {
            Request = request;
            CancellationToken = cancellationToken;
            Sampler = new Sampler(request.Options);
            History = new List<int>(request.PromptTokens);
            Decoder = tokenizer.CreateStreamingDecoder(skipSpecial: true);
            foreach (int token in request.PromptTokens)
            {
                if (token < tokenizer.VocabSize)
                    Decoder.Append(token);
            }
            Stops = new StopStringFilter(request.Options.StopStrings);
            Constraint = request.Grammar?.CreateConstraint();
            EndIds = request.Options.StopAtEndOfGeneration ? [.. tokenizer.EndOfGenerationIds] : [];
            Logits = new float[vocab];
        }

        public GenerationRequest Request { get; }
        public CancellationToken CancellationToken { get; }
        public CancellationTokenRegistration Registration;
        public LinkedListNode<Sequence>? Node;
        public Sampler Sampler { get; }
        public List<int> History { get; }
        public StreamingDecoder Decoder { get; }
        public StopStringFilter Stops { get; }
        public ITokenConstraint? Constraint { get; }
        public HashSet<int> EndIds { get; }
        public float[] Logits { get; }
        public float[]? LogprobScratch;
        public SequenceState? Cache;
        public int Generated;
        public Channel<GeneratedPiece> Channel { get; } = System.Threading.Channels.Channel.CreateUnbounded<GeneratedPiece>(new UnboundedChannelOptions { SingleWriter = true, SingleReader = true });
        public TaskCompletionSource<GenerationResult> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Complete(FinishReason reason)
        {
            Channel.Writer.TryComplete();
            Result.TrySetResult(new GenerationResult(reason, Request.PromptTokens.Length, Generated));
        }

        public void Fail(Exception e)
        {
            Channel.Writer.TryComplete(e);
            Result.TrySetException(e);
        }

        public void Abandon() => Fail(new ObjectDisposedException(nameof(BatchScheduler)));
    }
}
