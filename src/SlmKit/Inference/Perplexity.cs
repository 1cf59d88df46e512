using SlmKit.Models;

namespace SlmKit.Inference;

/// <summary>Perplexity of a text (and, against a reference model, how far a quantized model's distributions drift).</summary>
/// <param name="Perplexity">exp(mean negative log-likelihood).</param>
/// <param name="Uncertainty">One standard error of the perplexity, as llama-perplexity prints it.</param>
/// <param name="Chunks">Context-sized chunks scored.</param>
/// <param name="ScoredTokens">Tokens whose probability was scored (the second half of each chunk).</param>
/// <param name="MeanKlDivergence">Mean KL(reference ‖ model) per scored token; null without a reference.</param>
/// <param name="KlUncertainty">Standard error of the mean KL divergence.</param>
/// <param name="SameTopTokenFraction">Share of scored positions where both models rank the same token first.</param>
/// <param name="ReferencePerplexity">The reference model's perplexity on the same tokens.</param>
public sealed record PerplexityResult(double Perplexity, double Uncertainty, int Chunks, long ScoredTokens,
    double? MeanKlDivergence = null, double? KlUncertainty = null, double? SameTopTokenFraction = null, double? ReferencePerplexity = null);

/// <summary>
/// llama-perplexity's method: the token stream is cut into chunks of the context size, each chunk starts afresh (its
/// first token replaced by BOS when the tokenizer adds one), and only the second half of each chunk is scored, so every
/// scored token has at least half a context of history.
/// </summary>
public static class PerplexityEvaluator
{
    /// <summary>Scores <paramref name="tokens"/>; <paramref name="progress"/> gets (chunk, chunks, running perplexity).</summary>
    public static PerplexityResult Evaluate(LanguageModel model, int[] tokens, int context, int? bosId,
        LanguageModel? reference = null, Action<int, int, double>? progress = null)
    {
        if (context < 4)
            throw new SlmKitException($"the context must be at least 4 tokens (got {context})");
        int chunks = tokens.Length / context;
        if (chunks == 0)
            throw new SlmKitException($"the text has {tokens.Length} tokens, fewer than one context of {context}; use a longer text or a smaller --ctx");
        if (reference is not null && reference.VocabSize != model.VocabSize)
            throw new SlmKitException($"the reference model's vocabulary ({reference.VocabSize}) differs from the model's ({model.VocabSize})");
        int vocab = model.VocabSize;
        var logits = new float[(long)context * vocab];
        var referenceLogits = reference is null ? [] : new float[(long)context * vocab];
        var cache = model.CreateCache(context);
        var referenceCache = reference?.CreateCache(context);
        var chunk = new int[context];
        double nll = 0, nll2 = 0, referenceNll = 0, kl = 0, kl2 = 0;
        long count = 0, sameTop = 0;
        int first = context / 2;
        for (int c = 0; c < chunks; c++)
        {
            Array.Copy(tokens, (long)c * context, chunk, 0, context);
            if (bosId is int bos)
                chunk[0] = bos;
            cache.Length = 0;
            model.Forward(cache, chunk, logits, allPositions: true);
            if (reference is not null)
            {
                referenceCache!.Length = 0;
                reference.Forward(referenceCache, chunk, referenceLogits, allPositions: true);
            }
            for (int j = first; j < context - 1; j++)
            {
                var row = logits.AsSpan(j * vocab, vocab);
                double logZ = LogSumExp(row);
                double logP = row[chunk[j + 1]] - logZ;
                nll -= logP;
                nll2 += logP * logP;
                count++;
                if (reference is not null)
                {
                    var referenceRow = referenceLogits.AsSpan(j * vocab, vocab);
                    double referenceLogZ = LogSumExp(referenceRow);
                    referenceNll -= referenceRow[chunk[j + 1]] - referenceLogZ;
                    double divergence = 0;
                    for (int v = 0; v < vocab; v++)
                    {
                        double logQ = referenceRow[v] - referenceLogZ;
                        divergence += Math.Exp(logQ) * (logQ - (row[v] - logZ));
                    }
                    kl += divergence;
                    kl2 += divergence * divergence;
                    if (Sampler.ArgMax(row) == Sampler.ArgMax(referenceRow))
                        sameTop++;
                }
            }
            progress?.Invoke(c + 1, chunks, Math.Exp(nll / count));
        }

        double mean = nll / count;
        double variance = nll2 / count - mean * mean;
        double perplexity = Math.Exp(mean);
        double uncertainty = variance > 0 && count > 1 ? Math.Sqrt(variance / (count - 1)) * perplexity : 0;
        if (reference is null)
            return new PerplexityResult(perplexity, uncertainty, chunks, count);
        double klMean = kl / count;
        double klVariance = kl2 / count - klMean * klMean;
        return new PerplexityResult(perplexity, uncertainty, chunks, count, klMean,
            klVariance > 0 && count > 1 ? Math.Sqrt(klVariance / (count - 1)) : 0, sameTop / (double)count, Math.Exp(referenceNll / count));
    }

    private static double LogSumExp(ReadOnlySpan<float> values)
    {
        float max = System.Numerics.Tensors.TensorPrimitives.Max(values);
        double sum = 0;
        foreach (float v in values)
            sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }
}
