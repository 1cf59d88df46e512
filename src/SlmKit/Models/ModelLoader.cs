using System.Text.Json;
using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>The kinds of file a model can come from.</summary>
public enum ModelFormat
{
    Gguf,
    HuggingFace,
    Llama2C,
}

/// <summary>
/// Opens a model from a GGUF file, a Hugging Face folder (config.json + safetensors) or a llama2.c checkpoint,
/// reads its configuration and hands the weights to the family that knows the architecture.
/// </summary>
public static class ModelLoader
{
    /// <summary>Architectures (GGUF <c>general.architecture</c> / HF <c>model_type</c>) this build runs.</summary>
    public static IReadOnlyList<string> SupportedArchitectures { get; } = ["llama"];

    /// <summary>Tells the format from the path: a folder is Hugging Face, "GGUF" magic is GGUF, anything else llama2.c.</summary>
    public static ModelFormat DetectFormat(string path)
    {
        if (Directory.Exists(path))
            return ModelFormat.HuggingFace;
        if (!File.Exists(path))
            throw new ModelFileException(path, "file not found");
        Span<byte> magic = stackalloc byte[4];
        using (var stream = File.OpenRead(path))
        {
            if (stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false) < 4)
                throw new ModelFileException(path, $"file is too short ({stream.Length} bytes) to be a model");
        }
        return magic.SequenceEqual("GGUF"u8) ? ModelFormat.Gguf : ModelFormat.Llama2C;
    }

    /// <summary>Loads the model at <paramref name="path"/>; the returned model owns the open file(s).</summary>
    public static LanguageModel Load(string path, WorkerPool? pool = null)
    {
        return DetectFormat(path) switch
        {
            ModelFormat.Gguf => LoadGguf(GgufFile.Open(path), pool),
            ModelFormat.HuggingFace => LoadHuggingFace(path, pool),
            _ => LoadLlama2C(path, pool),
        };
    }

    private static LanguageModel LoadGguf(GgufFile file, WorkerPool? pool)
    {
        try
        {
            string architecture = file.Architecture ?? throw new ModelFileException(file.SourcePath, "metadata key 'general.architecture' is missing");
            if (architecture != "llama")
                throw Unsupported(file.SourcePath, architecture);
            var config = LlamaConfigFromGguf(file);
            return new LlamaModel(file, config, TensorNaming.Gguf, architecture, "gguf", pool);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Reads a Llama config from llama.cpp's metadata keys (<c>llama.*</c>).</summary>
    public static LlamaConfig LlamaConfigFromGguf(GgufFile file)
    {
        string a = file.Architecture ?? "llama";
        int Required(string key) => ToInt(file.SourcePath, key, file.GetInteger($"{a}.{key}") ?? throw new ModelFileException(file.SourcePath, $"metadata key '{a}.{key}' is missing"));
        int? Optional(string key) => file.GetInteger($"{a}.{key}") is long v ? ToInt(file.SourcePath, key, v) : null;

        int heads = Required("attention.head_count");
        var embedding = file.Find("token_embd.weight") ?? throw new ModelFileException(file.SourcePath, "tensor 'token_embd.weight' is missing");
        int vocab = Optional("vocab_size") ?? file.GetStringArray("tokenizer.ggml.tokens")?.Length ?? ToInt(file.SourcePath, "token_embd rows", embedding.Dimensions[0]);
        RopeScaling? scaling = file.GetString($"{a}.rope.scaling.type") switch
        {
            null or "none" => null,
            "linear" => RopeScaling.Linear((float)(file.GetNumber($"{a}.rope.scaling.factor") ?? 1)),
            string other => throw new ModelFileException(file.SourcePath, $"rope scaling type '{other}' is not supported (supported: none, linear)"),
        };
        return new LlamaConfig
        {
            HiddenSize = Required("embedding_length"),
            LayerCount = Required("block_count"),
            HeadCount = heads,
            KvHeadCount = Optional("attention.head_count_kv") ?? heads,
            FeedForwardSize = Required("feed_forward_length"),
            VocabSize = vocab,
            HeadDim = Optional("attention.key_length") ?? Optional("rope.dimension_count") ?? 0,
            ContextLength = Optional("context_length") ?? 2048,
            NormEpsilon = (float)(file.GetNumber($"{a}.attention.layer_norm_rms_epsilon") ?? 1e-5),
            RopeTheta = (float)(file.GetNumber($"{a}.rope.freq_base") ?? 10000),
            RopeScaling = scaling,
            RopeLayout = RopeLayout.Normal,
            TiedEmbeddings = file.Find("output.weight") is null,
        };
    }

    private static LanguageModel LoadHuggingFace(string folder, WorkerPool? pool)
    {
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath))
            throw new ModelFileException(folder, "not a Hugging Face model folder: config.json is missing");
        var config = HuggingFaceConfig.Load(configPath);
        string modelType = config.ModelType ?? throw new ModelFileException(configPath, "field 'model_type' is missing");
        if (modelType != "llama")
            throw Unsupported(configPath, modelType);
        var llama = LlamaConfigFromHuggingFace(config, configPath);
        var weights = SafeTensorsModel.Open(folder);
        try
        {
            return new LlamaModel(weights, llama, TensorNaming.HuggingFace, modelType, "huggingface", pool);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>Reads a Llama config from transformers' config.json fields.</summary>
    public static LlamaConfig LlamaConfigFromHuggingFace(HuggingFaceConfig config, string configPath)
    {
        int Required(string key) => config.GetInt(key) ?? throw new ModelFileException(configPath, $"field '{key}' is missing");
        int heads = Required("num_attention_heads");
        RopeScaling? scaling = null;
        if (config.TryGetObject("rope_scaling", out JsonElement rope) && rope.ValueKind == JsonValueKind.Object)
        {
            string type = (rope.TryGetProperty("rope_type", out var t) || rope.TryGetProperty("type", out t)) && t.ValueKind == JsonValueKind.String
                ? t.GetString()!
                : "default";
            float Number(string name, float fallback) =>
                rope.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetSingle() : fallback;
            scaling = type switch
            {
                "default" => null,
                "linear" => RopeScaling.Linear(Number("factor", 1)),
                "llama3" => RopeScaling.Llama3(Number("factor", 8), Number("low_freq_factor", 1), Number("high_freq_factor", 4), (int)Number("original_max_position_embeddings", 8192)),
                _ => throw new ModelFileException(configPath, $"rope_scaling type '{type}' is not supported (supported: linear, llama3)"),
            };
        }
        return new LlamaConfig
        {
            HiddenSize = Required("hidden_size"),
            LayerCount = Required("num_hidden_layers"),
            HeadCount = heads,
            KvHeadCount = config.GetInt("num_key_value_heads") ?? heads,
            FeedForwardSize = Required("intermediate_size"),
            VocabSize = Required("vocab_size"),
            HeadDim = config.GetInt("head_dim") ?? 0,
            ContextLength = config.GetInt("max_position_embeddings") ?? 2048,
            NormEpsilon = (float)(config.GetDouble("rms_norm_eps") ?? 1e-6),
            RopeTheta = (float)(config.GetDouble("rope_theta") ?? 10000),
            RopeScaling = scaling,
            RopeLayout = RopeLayout.NeoX,
            TiedEmbeddings = config.GetBool("tie_word_embeddings") ?? false,
        };
    }

    private static LanguageModel LoadLlama2C(string path, WorkerPool? pool)
    {
        var checkpoint = Llama2CCheckpoint.Open(path);
        try
        {
            var c = checkpoint.Config;
            var config = new LlamaConfig
            {
                HiddenSize = c.Dim,
                LayerCount = c.LayerCount,
                HeadCount = c.HeadCount,
                KvHeadCount = c.KvHeadCount,
                FeedForwardSize = c.HiddenDim,
                VocabSize = c.VocabSize,
                ContextLength = c.SeqLen,
                NormEpsilon = 1e-5f,
                RopeTheta = 10000f,
                RopeLayout = RopeLayout.Normal,
                TiedEmbeddings = c.SharedClassifier,
            };
            return new LlamaModel(checkpoint, config, TensorNaming.Gguf, "llama", "llama2.c", pool);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    private static int ToInt(string path, string key, long value) =>
        value is >= int.MinValue and <= int.MaxValue ? (int)value : throw new ModelFileException(path, $"value of '{key}' ({value}) is out of range");

    private static ModelFileException Unsupported(string path, string architecture) =>
        new(path, $"architecture '{architecture}' is not supported (supported: {string.Join(", ", SupportedArchitectures)})");
}
