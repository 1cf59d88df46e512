using System.Collections.Concurrent;
using System.Text.Json;
using SlmKit.Inference;

namespace SlmKit.Server;

/// <summary>What the endpoints share: the model, its scheduler, prompt format, embedder and counters.</summary>
internal sealed class ModelService : IDisposable
{
    private readonly ConcurrentDictionary<string, JsonGrammar> _schemaGrammars = new(StringComparer.Ordinal);
    private readonly Lazy<JsonGrammar> _anyObject;

    public ModelService(SlmModel model, SlmServerOptions options, string modelId)
    {
        Model = model;
        Options = options;
        ModelId = modelId;
        ContextSize = Math.Min(options.ContextSize ?? model.ContextSize, model.Info.ContextLength);
        if (ContextSize < 1)
            throw new SlmKitException($"context size must be positive (got {options.ContextSize})");
        Scheduler = new BatchScheduler(model.Model, model.Tokenizer, new SchedulerOptions
        {
            Parallel = options.Parallel,
            MaxQueue = options.MaxQueue,
            ContextSize = ContextSize,
        });
        Prompt = new ChatPrompt(model.Tokenizer);
        Embedder = new TextEmbedder(model.Model, model.Tokenizer, ContextSize);
        _anyObject = new Lazy<JsonGrammar>(() => JsonGrammar.ForAnyObject(model.Tokenizer));
        Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    }

    public SlmModel Model { get; }
    public SlmServerOptions Options { get; }
    public string ModelId { get; }
    public int ContextSize { get; }
    public BatchScheduler Scheduler { get; }
    public ChatPrompt Prompt { get; }
    public TextEmbedder Embedder { get; }
    public ServerMetrics Metrics { get; } = new();
    public long Created { get; }

    public JsonGrammar AnyObjectGrammar => _anyObject.Value;

    /// <summary>The grammar for a JSON schema, compiled once per distinct schema text.</summary>
    public JsonGrammar SchemaGrammar(JsonElement schema, string param)
    {
        string key = schema.GetRawText();
        if (_schemaGrammars.TryGetValue(key, out var grammar))
            return grammar;
        try
        {
            grammar = JsonGrammar.ForSchema(Model.Tokenizer, schema);
        }
        catch (SlmKitException e)
        {
            throw ApiException.BadField(param, e.Message);
        }
        if (_schemaGrammars.Count < 256)
            _schemaGrammars.TryAdd(key, grammar);
        return grammar;
    }

    /// <summary>Queues a generation, turning refusals into API errors.</summary>
    public GenerationStream Submit(GenerationRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return Scheduler.Submit(request, cancellationToken);
        }
        catch (QueueFullException e)
        {
            throw new ApiException(429, e.Message, "rate_limit_error", null, "rate_limit_exceeded") { RetryAfterSeconds = 1 };
        }
        catch (SlmKitException e)
        {
            throw ApiException.BadRequest(e.Message);
        }
    }

    public void Dispose() => Scheduler.Dispose();
}
