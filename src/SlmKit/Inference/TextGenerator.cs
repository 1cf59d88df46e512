using System.Diagnostics;
using System.Runtime.CompilerServices;
using SlmKit.Models;
using SlmKit.Tokenizers;

namespace SlmKit.Inference;

/// <summary>Why generation ended.</summary>
public enum FinishReason
{
    /// <summary>The model produced an end-of-generation token or a stop string.</summary>
    Stop,

    /// <summary>MaxTokens or the context size was reached.</summary>
    Length,

    /// <summary>The caller cancelled.</summary>
    Cancelled,
}

/// <summary>Counters of the last generation, for progress output and benchmarks.</summary>
public sealed record GenerationStats(int PromptTokens, int GeneratedTokens, TimeSpan PromptTime, TimeSpan GenerationTime, FinishReason FinishReason)
{
    public double PromptTokensPerSecond => PromptTokens / Math.Max(PromptTime.TotalSeconds, 1e-9);
    public double GeneratedTokensPerSecond => GeneratedTokens / Math.Max(GenerationTime.TotalSeconds, 1e-9);
}

/// <summary>
/// Runs the prompt → forward → sample → decode loop for one model and tokenizer. Text comes out as it is
/// decoded: never half a UTF-8 character, and never a piece of text that might turn out to start a stop string.
/// </summary>
public sealed class TextGenerator
{
    private readonly LanguageModel _model;
    private readonly Tokenizer _tokenizer;
    private readonly int _contextSize;
    private readonly int[] _endOfGenerationIds;

    /// <param name="model">The model to run.</param>
    /// <param name="tokenizer">Its tokenizer; its end-of-generation ids stop generation.</param>
    /// <param name="contextSize">Most positions one generation may use.</param>
    /// <param name="extraEndOfGenerationIds">More ids that end generation, e.g. from generation_config.json.</param>
    public TextGenerator(LanguageModel model, Tokenizer tokenizer, int contextSize, IReadOnlyList<int>? extraEndOfGenerationIds = null)
    {
        _model = model;
        _tokenizer = tokenizer;
        _contextSize = contextSize;
        _endOfGenerationIds = [.. tokenizer.EndOfGenerationIds.Union(extraEndOfGenerationIds ?? [])];
    }

    /// <summary>Token ids that end a generation (unless <see cref="GenerationOptions.StopAtEndOfGeneration"/> is off).</summary>
    public IReadOnlyList<int> EndOfGenerationIds => _endOfGenerationIds;

    /// <summary>Statistics of the most recent completed generation.</summary>
    public GenerationStats? LastStats { get; private set; }

    /// <summary>Encodes a prompt with the model's own BOS rule; an empty prompt is just BOS.</summary>
    public int[] EncodePrompt(string prompt)
    {
        int[] tokens = _tokenizer.Encode(prompt, addSpecial: true);
        if (tokens.Length == 0)
        {
            if (_tokenizer.BosId is not int bos)
                throw new SlmKitException("the prompt is empty and the tokenizer has no BOS token to start from");
            tokens = [bos];
        }
        return tokens;
    }

    /// <summary>Streams generated text for <paramref name="prompt"/>.</summary>
    public IEnumerable<string> Generate(string prompt, GenerationOptions options, CancellationToken cancellationToken = default) =>
        Generate(EncodePrompt(prompt), options, cancellationToken);

    /// <summary>Streams generated text after the given prompt tokens.</summary>
    public IEnumerable<string> Generate(int[] promptTokens, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        var decoder = _tokenizer.CreateStreamingDecoder(skipSpecial: true);
        foreach (int token in promptTokens)
            decoder.Append(token);
        var stops = new StopStringFilter(options.StopStrings);
        foreach (int token in GenerateTokens(promptTokens, options, cancellationToken))
        {
            string text = stops.Push(decoder.Append(token));
            if (text.Length > 0)
                yield return text;
            if (stops.Stopped)
                break;
        }
        if (stops.Stopped)
        {
            // Leaving the loop disposed the token enumerator, which published its stats.
            if (LastStats is { } stats)
                LastStats = stats with { FinishReason = FinishReason.Stop };
            yield break;
        }
        string rest = stops.Push(decoder.Flush()) + (stops.Stopped ? "" : stops.Drain());
        if (rest.Length > 0)
            yield return rest;
    }

    /// <summary>Streams generated text asynchronously; the forward passes run on a worker thread.</summary>
    public async IAsyncEnumerable<string> GenerateAsync(string prompt, GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var enumerator = Generate(prompt, options, cancellationToken).GetEnumerator();
        while (await Task.Run(enumerator.MoveNext, cancellationToken).ConfigureAwait(false))
            yield return enumerator.Current;
    }

    /// <summary>Streams generated token ids (end-of-generation tokens are not yielded).</summary>
    public IEnumerable<int> GenerateTokens(int[] promptTokens, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        options.Validate();
        if (promptTokens.Length == 0)
            throw new SlmKitException("at least one prompt token is needed");
        int capacity = Math.Min(_contextSize, promptTokens.Length + options.MaxTokens);
        if (promptTokens.Length > _contextSize)
            throw new SlmKitException($"the prompt has {promptTokens.Length} tokens, more than the context size {_contextSize}");

        var cache = _model.CreateCache(Math.Max(capacity, 1));
        var sampler = new Sampler(options);
        float[] logits = new float[_model.VocabSize];
        var history = new List<int>(promptTokens.Length + options.MaxTokens);
        history.AddRange(promptTokens);
        IReadOnlyList<int> endIds = options.StopAtEndOfGeneration ? _endOfGenerationIds : [];
        int[] step = new int[1];

        var clock = Stopwatch.StartNew();
        _model.Forward(cache, promptTokens, logits, allPositions: false);
        var promptTime = clock.Elapsed;
        clock.Restart();
        int generated = 0;
        var reason = FinishReason.Length;
        // Stats are published once, when the loop ends or the caller stops enumerating: a record per token would be
        // the only allocation of a steady-state decoding step.
        try
        {
            while (generated < options.MaxTokens)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    reason = FinishReason.Cancelled;
                    break;
                }
                int next = sampler.Sample(logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history));
                if (Contains(endIds, next))
                {
                    reason = FinishReason.Stop;
                    break;
                }
                generated++;
                history.Add(next);
                yield return next;
                if (generated == options.MaxTokens || cache.Length >= cache.Capacity)
                    break;
                step[0] = next;
                _model.Forward(cache, step, logits, allPositions: false);
            }
        }
        finally
        {
            LastStats = new GenerationStats(promptTokens.Length, generated, promptTime, clock.Elapsed, reason);
        }
    }

    private static bool Contains(IReadOnlyList<int> ids, int id)
    {
        for (int i = 0; i < ids.Count; i++)
        {
            if (ids[i] == id)
                return true;
        }
        return false;
    }
}

/// <summary>
/// Holds back text that could be the start of a stop string, releases it once it cannot be, and cuts the
/// output just before the first stop string.
/// </summary>
internal sealed class StopStringFilter
{
    private readonly IReadOnlyList<string> _stops;
    private string _pending = "";

    public StopStringFilter(IReadOnlyList<string> stops) => _stops = stops;

    public bool Stopped { get; private set; }

    public string Push(string text)
    {
        if (Stopped)
            return "";
        if (_stops.Count == 0)
            return text;
        _pending += text;
        int cut = -1;
        foreach (string stop in _stops)
        {
            if (stop.Length == 0)
                continue;
            int at = _pending.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut))
                cut = at;
        }
        if (cut >= 0)
        {
            Stopped = true;
            string before = _pending[..cut];
            _pending = "";
            return before;
        }

        int hold = 0;
        foreach (string stop in _stops)
        {
            for (int length = Math.Min(stop.Length - 1, _pending.Length); length > hold; length--)
            {
                if (_pending.AsSpan(_pending.Length - length).SequenceEqual(stop.AsSpan(0, length)))
                {
                    hold = length;
                    break;
                }
            }
        }
        string ready = _pending[..^hold];
        _pending = _pending[^hold..];
        return ready;
    }

    public string Drain()
    {
        string rest = _pending;
        _pending = "";
        return rest;
    }
}
