using System.Numerics.Tensors;
using SlmKit.Models;
using SlmKit.Tokenizers;

namespace SlmKit.Inference;

/// <summary>
/// Sentence embeddings from a decoder model: the mean of the final hidden states (after the last norm) over the input's
/// tokens, scaled to unit length so a dot product is the cosine similarity.
/// </summary>
public sealed class TextEmbedder
{
    private readonly LanguageModel _model;
    private readonly Tokenizer _tokenizer;
    private readonly int _contextSize;

    public TextEmbedder(LanguageModel model, Tokenizer tokenizer, int contextSize)
    {
        _model = model;
        _tokenizer = tokenizer;
        _contextSize = contextSize;
    }

    /// <summary>Length of each embedding (the model's hidden size).</summary>
    public int Dimensions => _model.Info.HiddenSize;

    /// <summary>Tokens <see cref="Embed(string)"/> would read for <paramref name="text"/> (with the model's BOS rule).</summary>
    public int[] Tokenize(string text)
    {
        int[] tokens = _tokenizer.Encode(text, addSpecial: true);
        if (tokens.Length == 0 && _tokenizer.BosId is int bos)
            tokens = [bos];
        return tokens;
    }

    /// <summary>Embeds one text.</summary>
    /// <exception cref="SlmKitException">The text is empty for a model without BOS, or longer than the context.</exception>
    public float[] Embed(string text) => Embed(Tokenize(text));

    /// <summary>Embeds already tokenized input.</summary>
    public float[] Embed(ReadOnlySpan<int> tokens)
    {
        if (!_model.SupportsHiddenStates)
            throw new SlmKitException($"embeddings are not available for {_model.Info.Architecture} models");
        if (tokens.Length == 0)
            throw new SlmKitException("the input is empty");
        if (tokens.Length > _contextSize)
            throw new SlmKitException($"the input has {tokens.Length} tokens, more than the context size {_contextSize}");
        int dim = _model.Info.HiddenSize;
        var cache = _model.CreateCache(tokens.Length);
        var hidden = new float[tokens.Length * dim];
        _model.ForwardHidden(cache, tokens, hidden);
        var mean = new float[dim];
        for (int t = 0; t < tokens.Length; t++)
            TensorPrimitives.Add(mean, hidden.AsSpan(t * dim, dim), mean);
        float norm = TensorPrimitives.Norm(mean);
        if (norm > 0)
            TensorPrimitives.Divide(mean, norm, mean);
        return mean;
    }
}
