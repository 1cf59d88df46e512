namespace SlmKit.Inference;

/// <summary>
/// How to pick tokens. Defaults follow llama.cpp's: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties.
/// A temperature of 0 means greedy decoding; a null seed means a random one.
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens to generate (the prompt not counted).</summary>
    public int MaxTokens { get; init; } = 256;

    public float Temperature { get; init; } = 0.8f;

    /// <summary>Keep the K most likely tokens; 0 keeps all.</summary>
    public int TopK { get; init; } = 40;

    /// <summary>Keep the smallest set of tokens whose probability reaches P; 1 keeps all.</summary>
    public float TopP { get; init; } = 0.95f;

    /// <summary>Drop tokens less likely than MinP × the most likely one; 0 keeps all.</summary>
    public float MinP { get; init; } = 0.05f;

    /// <summary>Divides positive logits (multiplies negative ones) of tokens seen in the last <see cref="PenaltyLastN"/>; 1 is off.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>Subtracted from a logit once per earlier occurrence of its token; 0 is off.</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>Subtracted from a logit once if its token occurred; 0 is off.</summary>
    public float PresencePenalty { get; init; }

    /// <summary>How many recent tokens the penalties look at.</summary>
    public int PenaltyLastN { get; init; } = 64;

    /// <summary>Seed for reproducible sampling; null picks one at random.</summary>
    public ulong? Seed { get; init; }

    /// <summary>Generation ends before any of these strings would be emitted; the stop string itself is not returned.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Also stop at the tokenizer's end-of-generation tokens (EOS, EOT). True by default.</summary>
    public bool StopAtEndOfGeneration { get; init; } = true;

    /// <summary>Greedy decoding: always the most likely token.</summary>
    public static GenerationOptions Greedy { get; } = new() { Temperature = 0, TopK = 0, TopP = 1, MinP = 0 };

    /// <summary>Throws a <see cref="SlmKitException"/> naming the first out-of-range setting.</summary>
    public void Validate()
    {
        if (MaxTokens < 0)
            throw new SlmKitException($"max tokens must be 0 or more (got {MaxTokens})");
        if (!(Temperature >= 0))
            throw new SlmKitException($"temperature must be 0 or more (got {Temperature})");
        if (TopK < 0)
            throw new SlmKitException($"top-k must be 0 or more (got {TopK})");
        if (!(TopP > 0 && TopP <= 1))
            throw new SlmKitException($"top-p must be in (0, 1] (got {TopP})");
        if (!(MinP >= 0 && MinP <= 1))
            throw new SlmKitException($"min-p must be in [0, 1] (got {MinP})");
        if (!(RepetitionPenalty > 0))
            throw new SlmKitException($"repetition penalty must be positive (got {RepetitionPenalty})");
        if (PenaltyLastN < 0)
            throw new SlmKitException($"penalty window must be 0 or more (got {PenaltyLastN})");
    }
}
