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
    /// <summary>
    /// Architectures this build runs: GGUF <c>general.architecture</c> values and Hugging Face <c>model_type</c> values of
    /// every <see cref="ModelFamily"/>.
    /// </summary>
    public static IReadOnlyList<string> SupportedArchitectures { get; } = ModelFamily.All
        .SelectMany(f => f.GgufArchitectures.Concat(f.HuggingFaceModelTypes))
        .Append(MambaArchitecture)
        .Append(T5Architecture)
        .Distinct(StringComparer.Ordinal)
        .ToArray();

    /// <summary>The state-space architecture (GGUF <c>general.architecture</c> and Hugging Face <c>model_type</c>), run by <see cref="MambaModel"/>.</summary>
    private const string MambaArchitecture = "mamba";

    /// <summary>The encoder-decoder architecture (GGUF and Hugging Face), run by <see cref="T5Model"/>.</summary>
    private const string T5Architecture = "t5";

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

    /// <summary>
    /// Loads the model at <paramref name="path"/>; the returned model owns the open file(s). A GGUF file is read into
    /// memory offered huge pages where the system has them (<see cref="HugePages.Available"/>: decoding
    /// streams every weight per token, and runs faster without a TLB miss every 4 KB) and memory-mapped elsewhere, or
    /// as <paramref name="memoryMap"/> says. Hugging Face folders and llama2.c checkpoints are always mapped.
    /// </summary>
    public static LanguageModel Load(string path, WorkerPool? pool = null, bool? memoryMap = null)
    {
        return DetectFormat(path) switch
        {
            ModelFormat.Gguf => LoadGguf(GgufFile.Open(path, memoryMap ?? !HugePages.Available), pool),
            ModelFormat.HuggingFace => LoadHuggingFace(path, pool),
            _ => LoadLlama2C(path, pool),
        };
    }

    private static LanguageModel LoadGguf(GgufFile file, WorkerPool? pool)
    {
        try
        {
            string architecture = file.Architecture ?? throw new ModelFileException(file.SourcePath, "metadata key 'general.architecture' is missing");
            if (architecture == MambaArchitecture)
                return MambaModel.FromGguf(file, pool);
            if (architecture == T5Architecture)
                return T5Model.FromGguf(file, pool);
            var family = ModelFamily.ForGgufArchitecture(architecture) ?? throw Unsupported(file.SourcePath, architecture);
            var config = family.FromGguf(file);
            return new DecoderModel(file, config, TensorLayout.Gguf, family.Name, architecture, "gguf", pool);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The config of a GGUF model as its family reads it from llama.cpp's metadata keys.</summary>
    public static DecoderConfig ConfigFromGguf(GgufFile file)
    {
        string architecture = file.Architecture ?? throw new ModelFileException(file.SourcePath, "metadata key 'general.architecture' is missing");
        var family = ModelFamily.ForGgufArchitecture(architecture) ?? throw Unsupported(file.SourcePath, architecture);
        return family.FromGguf(file);
    }

    private static LanguageModel LoadHuggingFace(string folder, WorkerPool? pool)
    {
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath))
            throw new ModelFileException(folder, "not a Hugging Face model folder: config.json is missing");
        var config = HuggingFaceConfig.Load(configPath);
        if (config.ModelType is MambaArchitecture or T5Architecture)
        {
            var ownWeights = SafeTensorsModel.Open(folder);
            try
            {
                return config.ModelType == MambaArchitecture
                    ? MambaModel.FromHuggingFace(ownWeights, config, pool)
                    : T5Model.FromHuggingFace(ownWeights, config, pool);
            }
            catch
            {
                ownWeights.Dispose();
                throw;
            }
        }
        var family = FamilyOf(config);
        var decoder = family.FromHuggingFace(config);
        var weights = SafeTensorsModel.Open(folder);
        try
        {
            return new DecoderModel(weights, decoder, family.HuggingFaceLayout(weights), family.Name, config.ModelType!, "huggingface", pool);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>The family named by a config.json's <c>model_type</c>, or a <see cref="ModelFileException"/> listing the supported ones.</summary>
    public static ModelFamily FamilyOf(HuggingFaceConfig config)
    {
        string modelType = config.ModelType ?? throw new ModelFileException(config.SourcePath, "field 'model_type' is missing");
        if (modelType == MambaArchitecture)
            throw new ModelFileException(config.SourcePath, "model_type 'mamba' is a state-space model, not a decoder family: SlmKit runs, converts and quantizes it, but does not train it yet");
        if (modelType == T5Architecture)
            throw new ModelFileException(config.SourcePath, "model_type 't5' is an encoder-decoder model, not a decoder family: SlmKit runs, converts and quantizes it, but does not train it yet");
        return ModelFamily.ForHuggingFaceModelType(modelType) ?? throw Unsupported(config.SourcePath, modelType);
    }

    /// <summary>The config of a Hugging Face model as its family reads it from config.json.</summary>
    public static DecoderConfig ConfigFromHuggingFace(HuggingFaceConfig config) => FamilyOf(config).FromHuggingFace(config);

    private static LanguageModel LoadLlama2C(string path, WorkerPool? pool)
    {
        var checkpoint = Llama2CCheckpoint.Open(path);
        try
        {
            var c = checkpoint.Config;
            var config = new DecoderConfig
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
            return new DecoderModel(checkpoint, config, TensorLayout.Gguf, Llama.Family.Name, "llama", "llama2.c", pool);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    private static ModelFileException Unsupported(string path, string architecture) =>
        new(path, $"architecture '{architecture}' is not supported (supported: {string.Join(", ", SupportedArchitectures)})");
}
