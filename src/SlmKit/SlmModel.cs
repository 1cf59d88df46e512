using System.Runtime.CompilerServices;
using SlmKit.Formats;
using SlmKit.Inference;
using SlmKit.Kernels;
using SlmKit.Models;
using SlmKit.Tokenizers;

namespace SlmKit;

/// <summary>Options for <see cref="SlmModel.Load"/>.</summary>
public sealed record SlmModelOptions
{
    /// <summary>Tokenizer to use instead of the model's own: a llama2.c tokenizer.bin, a tokenizer folder or a GGUF. Required for llama2.c checkpoints.</summary>
    public string? TokenizerPath { get; init; }

    /// <summary>Threads for the kernels; null uses every core.</summary>
    public int? Threads { get; init; }

    /// <summary>Most positions a generation may use; null uses the model's context length, capped at 4096.</summary>
    public int? ContextSize { get; init; }

    /// <summary>
    /// True maps a GGUF file; false reads it into memory offered huge pages (faster decoding, private memory the size
    /// of the file); null reads it where the system offers huge pages (Linux) and maps it elsewhere.
    /// </summary>
    public bool? MemoryMap { get; init; }
}

/// <summary>
/// A loaded model with its tokenizer: the front door of SlmKit.
/// <code>
/// using var model = SlmModel.Load("model.gguf");
/// await foreach (var piece in model.GenerateAsync("Once upon a time", new GenerationOptions { MaxTokens = 50 }))
///     Console.Write(piece);
/// </code>
/// </summary>
public sealed class SlmModel : IDisposable
{
    private const int DefaultMaxContext = 4096;
    private readonly WorkerPool? _ownedPool;
    private readonly TextGenerator _generator;

    private SlmModel(LanguageModel model, Tokenizer tokenizer, int contextSize, WorkerPool? ownedPool, ModelFormat format, IReadOnlyList<int>? extraEndIds)
    {
        Model = model;
        Tokenizer = tokenizer;
        ContextSize = contextSize;
        Format = format;
        _ownedPool = ownedPool;
        _generator = new TextGenerator(model, tokenizer, contextSize, extraEndIds);
    }

    public LanguageModel Model { get; }
    public Tokenizer Tokenizer { get; }
    public ModelInfo Info => Model.Info;
    public ModelFormat Format { get; }

    /// <summary>Most positions (prompt + generated) one generation may use.</summary>
    public int ContextSize { get; }

    /// <summary>Statistics of the last finished generation.</summary>
    public GenerationStats? LastStats => _generator.LastStats;

    /// <summary>Loads a GGUF file, a Hugging Face folder, or a llama2.c checkpoint (with <see cref="SlmModelOptions.TokenizerPath"/>).</summary>
    public static SlmModel Load(string path, SlmModelOptions? options = null)
    {
        options ??= new SlmModelOptions();
        var format = ModelLoader.DetectFormat(path);
        if (format == ModelFormat.Llama2C && options.TokenizerPath is null)
            throw new SlmKitException($"{path}: a llama2.c checkpoint needs a tokenizer (--tokenizer PATH to its tokenizer.bin)");

        WorkerPool? pool = options.Threads is int threads ? new WorkerPool(threads) : null;
        LanguageModel? model = null;
        try
        {
            model = ModelLoader.Load(path, pool, options.MemoryMap);
            var tokenizer = options.TokenizerPath is { } tokenizerPath
                ? LoadTokenizer(tokenizerPath, model.VocabSize)
                : LoadTokenizer(path, model.VocabSize);
            int context = Math.Min(options.ContextSize ?? Math.Min(model.Info.ContextLength, DefaultMaxContext), model.Info.ContextLength);
            if (context <= 0)
                throw new SlmKitException($"context size must be positive (got {options.ContextSize})");
            // Chat checkpoints often end turns with a token generation_config.json names (Llama 3's <|eot_id|>).
            int[]? configEndIds = format == ModelFormat.HuggingFace ? GenerationConfig.TryLoadFromFolder(path)?.EosTokenIds : null;
            return new SlmModel(model, tokenizer, context, pool, format, configEndIds);
        }
        catch
        {
            model?.Dispose();
            pool?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads only the tokenizer that goes with <paramref name="modelPath"/> (a GGUF, also vocab-only, or a folder with
    /// tokenizer.json), or <paramref name="tokenizerPath"/> when given (a llama2.c tokenizer.bin, a folder, a GGUF).
    /// </summary>
    public static Tokenizer LoadTokenizerFor(string modelPath, string? tokenizerPath = null)
    {
        if (tokenizerPath is not null)
        {
            int? vocabSize = null;
            if (File.Exists(modelPath) && ModelLoader.DetectFormat(modelPath) == ModelFormat.Llama2C)
            {
                using var checkpoint = Llama2CCheckpoint.Open(modelPath);
                vocabSize = checkpoint.Config.VocabSize;
            }
            return LoadTokenizer(tokenizerPath, vocabSize);
        }
        if (!Directory.Exists(modelPath) && ModelLoader.DetectFormat(modelPath) == ModelFormat.Llama2C)
            throw new SlmKitException($"{modelPath}: a llama2.c checkpoint has no tokenizer inside; pass --tokenizer PATH (its tokenizer.bin)");
        return LoadTokenizer(modelPath, null);
    }

    /// <summary>
    /// Loads a tokenizer on its own: a folder with tokenizer.json, a GGUF (also vocab-only), or a llama2.c
    /// tokenizer.bin (which does not store its size: pass <paramref name="vocabSize"/>).
    /// </summary>
    public static Tokenizer LoadTokenizer(string path, int? vocabSize)
    {
        if (Directory.Exists(path))
            return Tokenizer.FromHuggingFace(path);
        if (ModelLoader.DetectFormat(path) == ModelFormat.Gguf)
        {
            using var file = GgufFile.Open(path);
            return Tokenizer.FromGguf(file);
        }
        return Tokenizer.FromLlama2C(path, vocabSize
            ?? throw new SlmKitException($"{path}: a llama2.c tokenizer.bin does not store its vocabulary size; pass the model too (--model CHECKPOINT --tokenizer {path})"));
    }

    /// <summary>Tokenizes with the model's own BOS/special-token rules.</summary>
    public int[] Tokenize(string text) => Tokenizer.Encode(text, addSpecial: true);

    /// <summary>Generates a whole completion and returns it.</summary>
    public string Generate(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        string.Concat(GenerateStreaming(prompt, options, cancellationToken));

    /// <summary>Streams a completion piece by piece on the calling thread.</summary>
    public IEnumerable<string> GenerateStreaming(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        _generator.Generate(prompt, options ?? new GenerationOptions(), cancellationToken);

    /// <summary>Streams a completion piece by piece; forward passes run off the caller's thread.</summary>
    public async IAsyncEnumerable<string> GenerateAsync(string prompt, GenerationOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (string piece in _generator.GenerateAsync(prompt, options ?? new GenerationOptions(), cancellationToken).ConfigureAwait(false))
            yield return piece;
    }

    /// <summary>Logits of every position for <paramref name="tokens"/>, row-major [tokens, vocab], from an empty context.</summary>
    public float[] ComputeLogits(ReadOnlySpan<int> tokens)
    {
        if (tokens.Length > ContextSize)
            throw new SlmKitException($"{tokens.Length} tokens exceed the context size {ContextSize}");
        var cache = Model.CreateCache(Math.Max(tokens.Length, 1));
        var logits = new float[(long)tokens.Length * Model.VocabSize];
        Model.Forward(cache, tokens, logits, allPositions: true);
        return logits;
    }

    public void Dispose()
    {
        Model.Dispose();
        _ownedPool?.Dispose();
    }
}
