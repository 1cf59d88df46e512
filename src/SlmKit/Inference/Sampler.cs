namespace SlmKit.Inference;

/// <summary>
/// Turns logits into the next token: penalties, then top-k, top-p and min-p truncation, then temperature, then a
/// draw (llama.cpp's order). Reuses its buffers, so sampling allocates nothing per token.
/// </summary>
public sealed class Sampler
{
    private readonly GenerationOptions _options;
    private readonly Random64 _random;
    private int[] _indices = [];
    private float[] _probabilities = [];
    private float[] _sortKeys = [];
    private readonly Dictionary<int, int> _counts = new();

    public Sampler(GenerationOptions options)
    {
        options.Validate();
        _options = options;
        _random = new Random64(options.Seed ?? (ulong)Random.Shared.NextInt64());
    }

    /// <summary>Picks the next token from <paramref name="logits"/> (modified in place) given the recent <paramref name="history"/>.</summary>
    public int Sample(Span<float> logits, ReadOnlySpan<int> history)
    {
        ApplyPenalties(logits, history);
        if (_options.Temperature <= 0)
            return ArgMax(logits);

        int n = logits.Length;
        if (_indices.Length < n)
        {
            _indices = new int[n];
            _probabilities = new float[n];
            _sortKeys = new float[n];
        }

        // Candidates sorted by logit, most likely first; top-k bounds how many need sorting.
        int k = _options.TopK > 0 ? Math.Min(_options.TopK, n) : n;
        Span<int> indices = _indices.AsSpan(0, n);
        for (int i = 0; i < n; i++)
            indices[i] = i;
        SortTopByLogit(indices, logits, k, _sortKeys);
        int count = k;

        // Probabilities at temperature 1 decide top-p and min-p, as in llama.cpp.
        Span<float> p = _probabilities.AsSpan(0, count);
        float max = logits[indices[0]];
        float sum = 0;
        for (int i = 0; i < count; i++)
        {
            p[i] = MathF.Exp(logits[indices[i]] - max);
            sum += p[i];
        }

        if (_options.TopP < 1)
        {
            float cumulative = 0;
            for (int i = 0; i < count; i++)
            {
                cumulative += p[i] / sum;
                if (cumulative >= _options.TopP)
                {
                    count = i + 1;
                    break;
                }
            }
        }

        if (_options.MinP > 0)
        {
            float threshold = _options.MinP * p[0];
            int kept = 1;
            while (kept < count && p[kept] >= threshold)
                kept++;
            count = kept;
        }

        // Temperature reshapes what is left; then one uniform draw.
        float inverseTemperature = 1f / _options.Temperature;
        sum = 0;
        for (int i = 0; i < count; i++)
        {
            p[i] = MathF.Exp((logits[indices[i]] - max) * inverseTemperature);
            sum += p[i];
        }
        float r = _random.NextSingle() * sum;
        float running = 0;
        for (int i = 0; i < count; i++)
        {
            running += p[i];
            if (r < running)
                return indices[i];
        }
        return indices[count - 1];
    }

    private void ApplyPenalties(Span<float> logits, ReadOnlySpan<int> history)
    {
        var o = _options;
        if (o.RepetitionPenalty == 1f && o.FrequencyPenalty == 0f && o.PresencePenalty == 0f || o.PenaltyLastN == 0 || history.IsEmpty)
            return;
        var window = history.Length > o.PenaltyLastN ? history[^o.PenaltyLastN..] : history;
        _counts.Clear();
        foreach (int token in window)
        {
            if ((uint)token < (uint)logits.Length)
                _counts[token] = _counts.GetValueOrDefault(token) + 1;
        }
        foreach (var (token, count) in _counts)
        {
            ref float logit = ref logits[token];
            logit = logit > 0 ? logit / o.RepetitionPenalty : logit * o.RepetitionPenalty;
            logit -= count * o.FrequencyPenalty + o.PresencePenalty;
        }
    }

    /// <summary>Index of the largest value; the lowest index wins ties, as in llama2.c and llama.cpp.</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
                best = i;
        }
        return best;
    }

    /// <summary>Moves the <paramref name="k"/> highest-logit indices to the front, sorted descending (partial selection sort for small k, full sort otherwise).</summary>
    private static void SortTopByLogit(Span<int> indices, ReadOnlySpan<float> logits, int k, float[] keyBuffer)
    {
        if (k <= 64)
        {
            for (int i = 0; i < k; i++)
            {
                int best = i;
                for (int j = i + 1; j < indices.Length; j++)
                {
                    if (logits[indices[j]] > logits[indices[best]])
                        best = j;
                }
                (indices[i], indices[best]) = (indices[best], indices[i]);
            }
            return;
        }
        Span<float> keys = keyBuffer.AsSpan(0, indices.Length);
        for (int i = 0; i < indices.Length; i++)
            keys[i] = -logits[indices[i]];
        keys.Sort(indices);
    }
}

/// <summary>xorshift64*: small, fast, and reproducible across platforms and .NET versions.</summary>
public sealed class Random64
{
    private ulong _state;

    public Random64(ulong seed) => _state = seed == 0 ? 0x9E3779B97F4A7C15UL : seed;

    public uint NextUInt32()
    {
        _state ^= _state >> 12;
        _state ^= _state << 25;
        _state ^= _state >> 27;
        return (uint)((_state * 0x2545F4914F6CDD1DUL) >> 32);
    }

    /// <summary>Uniform in [0, 1) with 24 bits.</summary>
    public float NextSingle() => (NextUInt32() >> 8) / 16777216f;
}
