using Microsoft.Extensions.AI;
using SlmKit.Inference;

namespace SlmKit.Extensions.AI;

/// <summary>
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> over a model loaded in this process: mean-pooled, unit-length
/// final hidden states (see <see cref="TextEmbedder"/>).
/// </summary>
public sealed class SlmEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly SlmModel _model;
    private readonly TextEmbedder _embedder;
    private readonly EmbeddingGeneratorMetadata _metadata;

    /// <param name="model">The loaded model; the caller keeps ownership.</param>
    /// <param name="modelId">The id reported with embeddings; the architecture name by default.</param>
    public SlmEmbeddingGenerator(SlmModel model, string? modelId = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _embedder = new TextEmbedder(model.Model, model.Tokenizer, model.ContextSize);
        ModelId = modelId ?? model.Info.Architecture;
        _metadata = new EmbeddingGeneratorMetadata("slmkit", null, ModelId, _embedder.Dimensions);
    }

    public string ModelId { get; }

    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (options?.Dimensions is int dimensions && dimensions != _embedder.Dimensions)
            throw new ArgumentException($"this model's embeddings have {_embedder.Dimensions} dimensions (asked for {dimensions})", nameof(options));
        var result = new GeneratedEmbeddings<Embedding<float>>();
        long tokens = 0;
        foreach (string value in values)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int[] ids = _embedder.Tokenize(value);
            float[] vector = await Task.Run(() => _embedder.Embed(ids), cancellationToken).ConfigureAwait(false);
            tokens += ids.Length;
            result.Add(new Embedding<float>(vector) { ModelId = ModelId, CreatedAt = DateTimeOffset.UtcNow });
        }
        result.Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens };
        return result;
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
            return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata))
            return _metadata;
        if (serviceType == typeof(SlmModel))
            return _model;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    public void Dispose()
    {
    }
}
