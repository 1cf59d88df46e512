using System.Globalization;
using System.Text.Json;
using SlmKit.Formats;
using SlmKit.Models;

namespace SlmKit.Training;

/// <summary>
/// Everything <c>slm train</c> needs, loadable from a JSON file with snake_case keys (an unknown key is an
/// error, so a typo never silently trains with a default) and overridable field by field from flags.
/// </summary>
public sealed record TrainingConfig
{
    /// <summary>Named Llama shape: "stories260k" (dim 64, 5 layers, 8/4 heads, FFN 172), "tiny" (dim 128, 4 layers, 4 heads, FFN 384) or "stories15m".</summary>
    public string? Preset { get; init; }

    /// <summary>
    /// A Hugging Face config.json whose architecture to train (instead of a preset): its model_type picks the family
    /// (llama, qwen2, gpt2 export; the trainer takes any family whose choices it runs) and the family's own file reads
    /// the choices and sizes; the size keys below override them.
    /// </summary>
    public string? ModelConfig { get; init; }

    public int? Dim { get; init; }
    public int? Layers { get; init; }
    public int? Heads { get; init; }
    public int? KvHeads { get; init; }
    public int? Ffn { get; init; }

    /// <summary>Embedding rows; defaults to the tokenizer's vocabulary size.</summary>
    public int? VocabSize { get; init; }

    /// <summary>Whether the head reuses the token embedding; default: tied for presets, config.json's choice for a model_config.</summary>
    public bool? TiedEmbeddings { get; init; }

    /// <summary>RoPE base; default: 10000 for presets, config.json's for a model_config.</summary>
    public double? RopeTheta { get; init; }

    /// <summary>Tokenizer: a tokenizer.json folder, a GGUF, or a llama2.c tokenizer.bin.</summary>
    public string? Tokenizer { get; init; }

    /// <summary>Training files: .txt (documents split by <see cref="DocumentSeparator"/>), .jsonl, .parquet.</summary>
    public IReadOnlyList<string> Data { get; init; } = [];

    public string TextField { get; init; } = "text";
    public string DocumentSeparator { get; init; } = "<|endoftext|>";
    public double ValidationFraction { get; init; } = 0.05;

    public int Steps { get; init; } = 1000;
    public int BatchSize { get; init; } = 8;
    public int SequenceLength { get; init; } = 256;
    public int GradientAccumulation { get; init; } = 1;

    public string Optimizer { get; init; } = "adamw";
    public double LearningRate { get; init; } = 1e-3;
    public double MinLearningRate { get; init; } = 1e-4;
    public int WarmupSteps { get; init; } = 100;

    /// <summary>"cosine", "linear" or "constant" decay after warmup.</summary>
    public string Schedule { get; init; } = "cosine";

    public double WeightDecay { get; init; } = 0.1;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double Momentum { get; init; } = 0.9;
    public double GradClip { get; init; } = 1.0;

    public int EvalEvery { get; init; } = 100;
    public int EvalBatches { get; init; } = 8;
    public int CheckpointEvery { get; init; } = 200;
    public ulong Seed { get; init; } = 1337;
    public int Threads { get; init; }

    /// <summary>Folder for checkpoint, metrics.csv, loss curve and the exported model.</summary>
    public string? Output { get; init; }

    /// <summary>Reads a config file; every problem names the file and the key.</summary>
    public static TrainingConfig Load(string path)
    {
        if (!File.Exists(path))
            throw new ModelFileException(path, "training config not found");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new ModelFileException(path, $"not valid JSON (line {e.LineNumber + 1}, position {e.BytePositionInLine + 1})");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelFileException(path, "expected a JSON object");
            var c = new TrainingConfig();
            foreach (JsonProperty p in document.RootElement.EnumerateObject())
                c = c.With(path, p.Name, p.Value);
            return c;
        }
    }

    /// <summary>This config with one key set from JSON; unknown keys and wrong types name the file and key.</summary>
    private TrainingConfig With(string path, string key, JsonElement v)
    {
        string Text() => v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Wrong("a string");
        int Int() => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw Wrong("an integer");
        double Number() => v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Wrong("a number");
        bool Bool() => v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Wrong("true or false");
        ModelFileException Wrong(string expected) => new(path, $"key '{key}' must be {expected} (got {v.ValueKind})");

        return key switch
        {
            "preset" => this with { Preset = Text() },
            "model_config" => this with { ModelConfig = Text() },
            "dim" => this with { Dim = Int() },
            "layers" => this with { Layers = Int() },
            "heads" => this with { Heads = Int() },
            "kv_heads" => this with { KvHeads = Int() },
            "ffn" => this with { Ffn = Int() },
            "vocab_size" => this with { VocabSize = Int() },
            "tied_embeddings" => this with { TiedEmbeddings = Bool() },
            "rope_theta" => this with { RopeTheta = Number() },
            "tokenizer" => this with { Tokenizer = Text() },
            "data" => this with
            {
                Data = v.ValueKind == JsonValueKind.Array
                    ? [.. v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Wrong("an array of strings"))]
                    : [Text()],
            },
            "text_field" => this with { TextField = Text() },
            "document_separator" => this with { DocumentSeparator = Text() },
            "validation_fraction" => this with { ValidationFraction = Number() },
            "steps" => this with { Steps = Int() },
            "batch_size" => this with { BatchSize = Int() },
            "seq_len" => this with { SequenceLength = Int() },
            "grad_accum" => this with { GradientAccumulation = Int() },
            "optimizer" => this with { Optimizer = Text() },
            "learning_rate" => this with { LearningRate = Number() },
            "min_learning_rate" => this with { MinLearningRate = Number() },
            "warmup_steps" => this with { WarmupSteps = Int() },
            "schedule" => this with { Schedule = Text() },
            "weight_decay" => this with { WeightDecay = Number() },
            "beta1" => this with { Beta1 = Number() },
            "beta2" => this with { Beta2 = Number() },
            "momentum" => this with { Momentum = Number() },
            "grad_clip" => this with { GradClip = Number() },
            "eval_every" => this with { EvalEvery = Int() },
            "eval_batches" => this with { EvalBatches = Int() },
            "checkpoint_every" => this with { CheckpointEvery = Int() },
            "seed" => this with { Seed = v.ValueKind == JsonValueKind.Number && v.TryGetUInt64(out ulong s) ? s : throw Wrong("a non-negative integer") },
            "threads" => this with { Threads = Int() },
            "output" => this with { Output = Text() },
            _ => throw new ModelFileException(path, $"unknown key '{key}'"),
        };
    }

    /// <summary>
    /// The architecture this config asks for: a preset (Llama), a model_config (its family), or sizes alone (Llama), with
    /// the size keys overriding and <paramref name="tokenizerVocab"/> filling a missing vocabulary size. Refused with a
    /// <see cref="SlmKitException"/> when incomplete, impossible or not trainable.
    /// </summary>
    public TrainingArchitecture ResolveModel(int tokenizerVocab)
    {
        (int dim, int layers, int heads, int kv, int ffn, int? vocab) = Preset?.ToLowerInvariant() switch
        {
            null => (0, 0, 0, 0, 0, (int?)null),
            "stories260k" => (64, 5, 8, 4, 172, 512),
            "tiny" => (128, 4, 4, 4, 384, null),
            "stories15m" => (288, 6, 6, 6, 768, 32000),
            _ => throw new SlmKitException($"unknown preset '{Preset}' (known: stories260k, tiny, stories15m)"),
        };
        ModelFamily family = Llama.Family;
        DecoderConfig architecture;
        if (ModelConfig is not null)
        {
            var hf = HuggingFaceConfig.Load(ModelConfig);
            family = ModelLoader.FamilyOf(hf);
            architecture = family.FromHuggingFace(hf);
            vocab = architecture.VocabSize;
            // A head size stated in config.json belongs to its own hidden size and head count.
            if (Dim is not null || Heads is not null)
                architecture = architecture with { HeadDim = 0 };
        }
        else
        {
            architecture = ModelPresets.Llama(0, dim, layers, heads, kv, ffn, contextLength: SequenceLength);
        }

        int headCount = Heads ?? architecture.HeadCount;
        var model = architecture with
        {
            VocabSize = VocabSize ?? vocab ?? tokenizerVocab,
            HiddenSize = Dim ?? architecture.HiddenSize,
            LayerCount = Layers ?? architecture.LayerCount,
            HeadCount = headCount,
            KvHeadCount = KvHeads ?? (architecture.KvHeadCount > 0 ? architecture.KvHeadCount : headCount),
            FeedForwardSize = Ffn ?? architecture.FeedForwardSize,
            TiedEmbeddings = TiedEmbeddings ?? (ModelConfig is null || architecture.TiedEmbeddings),
            RopeTheta = RopeTheta is double theta ? (float)theta : architecture.RopeTheta,
        };
        if (model.HiddenSize == 0 || model.LayerCount == 0 || model.HeadCount == 0 || model.FeedForwardSize == 0)
            throw new SlmKitException("the model shape is incomplete: give a preset, a model_config, or dim/layers/heads/ffn");
        TrainableDecoder<float>.EnsureTrainable(model);
        if (model.VocabSize < tokenizerVocab)
            throw new SlmKitException($"vocab_size {model.VocabSize} is smaller than the tokenizer's vocabulary ({tokenizerVocab})");
        if (model.Positions == PositionKind.Learned && SequenceLength > model.ContextLength)
            throw new SlmKitException($"seq_len {SequenceLength} exceeds the {model.ContextLength} learned positions of {ModelConfig}");
        return new TrainingArchitecture(family, model);
    }

    /// <summary>Throws a <see cref="SlmKitException"/> naming the first impossible setting.</summary>
    public void Validate()
    {
        void Require(bool ok, string message)
        {
            if (!ok)
                throw new SlmKitException(message);
        }
        Require(Tokenizer is not null, "no tokenizer given (tokenizer / --tokenizer)");
        Require(Data.Count > 0, "no training data given (data / --data)");
        Require(Output is not null, "no output folder given (output / --out)");
        Require(Steps > 0, $"steps must be positive (got {Steps})");
        Require(BatchSize > 0, $"batch_size must be positive (got {BatchSize})");
        Require(SequenceLength >= 2, $"seq_len must be at least 2 (got {SequenceLength})");
        Require(GradientAccumulation > 0, $"grad_accum must be positive (got {GradientAccumulation})");
        Require(LearningRate > 0 && MinLearningRate >= 0 && MinLearningRate <= LearningRate, $"need 0 ≤ min_learning_rate ≤ learning_rate, learning_rate > 0 (got {LearningRate}, {MinLearningRate})");
        Require(WarmupSteps >= 0, $"warmup_steps must be 0 or more (got {WarmupSteps})");
        Require(Schedule is "cosine" or "linear" or "constant", $"schedule must be cosine, linear or constant (got '{Schedule}')");
        Require(Optimizer is "adamw" or "sgd", $"optimizer must be adamw or sgd (got '{Optimizer}')");
        Require(EvalEvery >= 0 && CheckpointEvery >= 0, "eval_every and checkpoint_every must be 0 (off) or more");
        Require(EvalBatches > 0, $"eval_batches must be positive (got {EvalBatches})");
        Require(ValidationFraction >= 0 && ValidationFraction < 1, $"validation_fraction must be in [0, 1) (got {ValidationFraction})");
        Require(Threads >= 0, $"threads must be 0 (all cores) or more (got {Threads})");
    }

    /// <summary>A one-line summary for logs.</summary>
    public string Describe(TrainingArchitecture model) => string.Create(CultureInfo.InvariantCulture,
        $"{model.Family.Name}: dim {model.Config.HiddenSize}, {model.Config.LayerCount} layers, {model.Config.HeadCount}/{model.Config.KvHeadCount} heads, FFN {model.Config.FeedForwardSize}, vocab {model.Config.VocabSize}; {Steps} steps × {BatchSize}×{SequenceLength} tokens (×{GradientAccumulation}), lr {LearningRate} {Schedule}, seed {Seed}");
}
