using System.Numerics;
using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Models;
using SlmKit.Tests.Models;
using SlmKit.Tokenizers;
using SlmKit.Training;
using SlmKit.Training.Export;

namespace SlmKit.Tests.Training;

/// <summary>A byte-level BPE tokenizer learned once for the tests that export (GGUF needs the vocabulary).</summary>
public sealed class ExportTokenizerFixture : IDisposable
{
    public ExportTokenizerFixture()
    {
        Folder = Directory.CreateTempSubdirectory("slmkit-single-").FullName;
        var random = new Random(3);
        string[] words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "big", "red", "ball", "Lily", "Tom", "happy"];
        CorpusPath = Path.Combine(Folder, "corpus.txt");
        File.WriteAllText(CorpusPath, string.Join("<|endoftext|>",
            Enumerable.Range(0, 300).Select(_ => string.Join(' ', Enumerable.Range(0, random.Next(8, 30)).Select(_ => words[random.Next(words.Length)])) + ".")));
        TokenizerFolder = Path.Combine(Folder, "tokenizer");
        var trainer = new TokenizerTrainer(new TokenizerTrainingOptions { Kind = TrainedTokenizerKind.ByteLevelBpe, VocabSize = 320 });
        trainer.AddFile(CorpusPath);
        trainer.Train(TokenizerFolder);
        Tokenizer = Tokenizer.FromHuggingFace(TokenizerFolder);
    }

    public string Folder { get; }
    public string CorpusPath { get; }
    public string TokenizerFolder { get; }
    public Tokenizer Tokenizer { get; }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

/// <summary>
/// Training and inference share one definition of each architecture: a <see cref="TrainableDecoder{T}"/> built from a
/// <see cref="DecoderConfig"/> computes the logits the runtime's <see cref="DecoderModel"/> computes from the same config
/// and weights, for every choice the trainer supports, and each exported family loads in SlmKit (GGUF and Hugging Face,
/// read by the family's own file) and in llama.cpp with the same logits.
/// </summary>
public sealed class SingleDefinitionTests(ExportTokenizerFixture fixture, ITestOutputHelper output) : IClassFixture<ExportTokenizerFixture>
{
    private const int Batch = 2, Seq = 7;

    public static TheoryData<string> AllChoices => [.. TrainableConfigs.Names];

    [Theory]
    [MemberData(nameof(AllChoices))]
    public void Trainer_logits_equal_the_runtime_decoder_on_the_same_config_object(string name)
    {
        DecoderConfig config = TrainableConfigs.Get(name);
        (int[] tokens, _) = TrainableConfigs.Batch(config.VocabSize, Batch, Seq);

        var single = new TrainableDecoder<float>(config, seed: 3, threadCount: 2);
        var values = TrainableConfigs.Randomize(single, new Random(21));
        var twin = new TrainableDecoder<double>(config, seed: 3, threadCount: 2);
        foreach (Parameter<double> p in twin.Parameters)
            values[p.Name].CopyTo(p.Value, 0);

        string path = Path.Combine(fixture.Folder, $"direct-{name}.gguf");
        var writer = new GgufWriter();
        writer.Set("general.architecture", "test");
        foreach (Parameter<float> p in single.Parameters)
            writer.AddTensor(p.Name, Array.ConvertAll(p.Shape, d => (long)d), p.Value);
        writer.Write(path);
        float[] runtime;
        using (var model = new DecoderModel(GgufFile.Open(path), config, TensorLayout.Gguf, "test", "test", "gguf"))
            runtime = RuntimeLogits(model, tokens);

        double floatError = RelativeError(single.Logits(tokens, Batch, Seq), runtime);
        double doubleError = RelativeError(twin.Logits(tokens, Batch, Seq), runtime);
        output.WriteLine($"{name}: max |Δ| / max |logit| float {floatError:E2}, double {doubleError:E2}");
        Assert.True(floatError <= 1e-4, $"{name} float: {floatError:E2}");
        Assert.True(doubleError <= 1e-4, $"{name} double: {doubleError:E2}");
    }

    /// <summary>
    /// The exported families, each with the config its own file reads from a config.json (or, for "llama-gguf", the
    /// preset in GGUF's rotary order).
    /// </summary>
    public static TheoryData<string> ExportedFamilies => ["llama-gguf", "llama", "qwen2", "gpt2"];

    [Theory]
    [MemberData(nameof(ExportedFamilies))]
    public void Each_exported_family_loads_in_slmkit_and_llama_cpp_with_the_trainers_logits(string name)
    {
        TrainingArchitecture architecture = FamilyArchitecture(name, fixture.Tokenizer.VocabSize);
        DecoderConfig config = architecture.Config;
        var trainer = new TrainableDecoder<float>(config, seed: 5, threadCount: 2);
        TrainableConfigs.Randomize(trainer, new Random(22));
        // Weights of ± 0.2 (far from the 0.02 initialisation, so the logits spread), norms and biases as randomised.
        foreach (Parameter<float> p in trainer.Parameters)
        {
            if (p.Kind is ParameterKind.Weight or ParameterKind.Embedding)
                for (int i = 0; i < p.Value.Length; i++)
                    p.Value[i] /= 3;
        }
        int[] tokens = [.. Enumerable.Range(0, 2 * 12).Select(i => (i * 37 + 5) % config.VocabSize)];
        float[] expected = trainer.Logits(tokens, 2, 12);

        string folder = Path.Combine(fixture.Folder, "export-" + name);
        Directory.CreateDirectory(folder);
        string gguf = Path.Combine(folder, "model.gguf"), hf = Path.Combine(folder, "hf");
        var parameters = trainer.Parameters.Select(p => (p.Name, p.Shape, p.Value)).ToList();
        ModelExport.WriteGguf(gguf, architecture, parameters, fixture.Tokenizer, name);
        ModelExport.WriteHuggingFace(hf, architecture, parameters, fixture.Tokenizer, fixture.TokenizerFolder);

        // The family reads back exactly the trained choices (the rotary row order aside, which export converts).
        using (var file = GgufFile.Open(gguf))
            Assert.Empty(ModelExport.Differences(config, architecture.Family.FromGguf(file)));
        Assert.Empty(ModelExport.Differences(config, architecture.Family.FromHuggingFace(HuggingFaceConfig.Load(Path.Combine(hf, "config.json")))));

        foreach (string path in new[] { gguf, hf })
        {
            using var model = ModelLoader.Load(path);
            Assert.Equal(architecture.Family.Name, model.Info.Family);
            var runtime = new float[expected.Length];
            for (int b = 0; b < 2; b++)
            {
                var cache = model.CreateCache(12);
                model.Forward(cache, tokens.AsSpan(b * 12, 12), runtime.AsSpan(b * 12 * config.VocabSize, 12 * config.VocabSize), allPositions: true);
            }
            double error = RelativeError(expected, runtime);
            output.WriteLine($"{name} {Path.GetFileName(path)}: {error:E2}");
            Assert.True(error <= 1e-4, $"{name} {path}: {error:E2}");
        }

        // llama.cpp runs one sequence from position 0.
        float[] llamaCpp = LlamaCppForward.Logits(gguf, tokens[..12]);
        double cppError = RelativeError(expected.AsSpan(0, 12 * config.VocabSize).ToArray(), llamaCpp);
        output.WriteLine($"{name} llama.cpp: {cppError:E2} (max |logit| {llamaCpp.Max(Math.Abs):F2})");
        // The oracle tests' bound for F32 files: llama.cpp keeps its KV cache in F16.
        ModelTestHelpers.AssertLogitsMatch(llamaCpp, expected.AsSpan(0, 12 * config.VocabSize).ToArray(), 1e-3);
    }

    [Theory]
    [InlineData("qwen2")]
    [InlineData("gpt2")]
    public void Slm_train_trains_a_config_json_of_another_family_and_exports_it(string name)
    {
        string configJson = Path.Combine(fixture.Folder, $"train-{name}.json");
        File.WriteAllText(configJson, HuggingFaceConfigJson(name, fixture.Tokenizer.VocabSize));
        var config = new TrainingConfig
        {
            ModelConfig = configJson, Tokenizer = fixture.TokenizerFolder, Data = [fixture.CorpusPath], Output = Path.Combine(fixture.Folder, "run-" + name),
            Steps = 12, BatchSize = 4, SequenceLength = 16, LearningRate = 3e-3, MinLearningRate = 3e-4, WarmupSteps = 2,
            EvalEvery = 12, EvalBatches = 2, CheckpointEvery = 0, Seed = 11, Threads = 2,
        };
        var result = TrainingRun.Run(config);
        Assert.True(result.History[^1].Loss < result.History[0].Loss, $"loss {result.History[0].Loss} → {result.History[^1].Loss}");

        int[] tokens = fixture.Tokenizer.Encode("the cat sat on a mat and the dog ran", addSpecial: false);
        float[] Logits(string path)
        {
            using var model = ModelLoader.Load(path);
            Assert.Equal(name, model.Info.Family);
            var cache = model.CreateCache(tokens.Length);
            var logits = new float[tokens.Length * model.VocabSize];
            model.Forward(cache, tokens, logits, allPositions: true);
            return logits;
        }
        float[] fromGguf = Logits(result.GgufPath);
        Assert.True(RelativeError(fromGguf, Logits(result.HuggingFaceFolder)) <= 1e-5);

        // The trained weights, read back into a trainer of the config the run resolved, compute the runtime's logits.
        var trainer = new TrainableDecoder<float>(config.ResolveModel(fixture.Tokenizer.VocabSize).Config, 1, 1);
        using (var file = GgufFile.Open(result.GgufPath))
        {
            foreach (var p in trainer.Parameters)
            {
                if (file.Find(p.Name) is { } tensor)
                    tensor.AsFloat32().CopyTo(p.Value);
            }
            if (name == "gpt2")
            {
                // GGUF fuses q, k, v for llama.cpp's gpt2; split them back.
                for (int l = 0; l < trainer.Config.LayerCount; l++)
                {
                    foreach (string kind in new[] { "weight", "bias" })
                    {
                        float[] fused = file.Find($"blk.{l}.attn_qkv.{kind}")!.AsFloat32().ToArray();
                        int at = 0;
                        foreach (string role in new[] { "attn_q", "attn_k", "attn_v" })
                        {
                            float[] part = trainer.Find($"blk.{l}.{role}.{kind}")!.Value;
                            fused.AsSpan(at, part.Length).CopyTo(part);
                            at += part.Length;
                        }
                    }
                }
            }
        }
        Assert.True(RelativeError(trainer.Logits(tokens, 1, tokens.Length), fromGguf) <= 1e-4);
    }

    public static TheoryData<string, string> Refusals => new()
    {
        { "PostNorms", "PostNorms" },
        { "QkNorm", "QkNorm" },
        { "Alibi", "Positions = Alibi" },
        { "Sinusoidal", "Positions = Sinusoidal" },
        { "SlidingWindow", "SlidingWindow" },
        { "SoftCap", "AttentionSoftCap" },
        { "FinalSoftCap", "FinalLogitSoftCap" },
        { "EmbeddingScale", "EmbeddingScale" },
        { "LogitScale", "LogitScale" },
        { "ResidualScale", "ResidualScale" },
        { "GeGLU", "Activation = GeluTanh in a gated MLP" },
        { "RopeScaling", "RopeScaling = linear" },
        { "NoNormWeight", "NormHasWeight" },
        { "RmsNormBias", "NormHasBias = true with RmsNorm" },
        { "EmbeddingNorm", "EmbeddingNorm" },
        { "PostLayerNorm", "PostLayerNorm" },
        { "ClipQkv", "ClipQkv" },
        { "AttentionScale", "AttentionScale" },
        { "EmbeddingSize", "EmbeddingSize" },
        { "PerLayer", "LayerHeadCounts" },
        { "SlidingRope", "SlidingRopeTheta" },
        { "NoRope", "NoRopeLayers" },
        { "NoPreNorms", "PreNorms" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Every_unsupported_choice_is_refused_by_name(string choice, string expected)
    {
        DecoderConfig llama = TrainableConfigs.Get("llama");
        DecoderConfig config = choice switch
        {
            "PostNorms" => llama with { PostNorms = true },
            "QkNorm" => llama with { QkNorm = true },
            "Alibi" => llama with { Positions = PositionKind.Alibi },
            "Sinusoidal" => llama with { Positions = PositionKind.Sinusoidal },
            "SlidingWindow" => llama with { SlidingWindow = 4 },
            "SoftCap" => llama with { AttentionSoftCap = 50 },
            "FinalSoftCap" => llama with { FinalLogitSoftCap = 30 },
            "EmbeddingScale" => llama with { EmbeddingScale = 2 },
            "LogitScale" => llama with { LogitScale = 0.5f },
            "ResidualScale" => llama with { ResidualScale = 0.5f },
            "GeGLU" => llama with { Activation = ActivationKind.GeluTanh },
            "RopeScaling" => llama with { RopeScaling = RopeScaling.Linear(2) },
            "NoNormWeight" => llama with { NormHasWeight = false },
            "RmsNormBias" => llama with { NormHasBias = true },
            "EmbeddingNorm" => llama with { EmbeddingNorm = true },
            "PostLayerNorm" => llama with { PostLayerNorm = true },
            "ClipQkv" => llama with { ClipQkv = 8 },
            "AttentionScale" => llama with { AttentionScale = 0.1f },
            "EmbeddingSize" => llama with { EmbeddingSize = 4 },
            "PerLayer" => llama with { LayerHeadCounts = [2, 1] },
            "SlidingRope" => llama with { SlidingRopeTheta = 10000 },
            "NoRope" => llama with { NoRopeLayers = [.. Enumerable.Range(0, llama.LayerCount).Select(l => l == 0)] },
            "NoPreNorms" => llama with { PreNorms = false, PostNorms = true },
            _ => throw new ArgumentException(choice),
        };
        var error = Assert.Throws<SlmKitException>(() => new TrainableDecoder<float>(config, 1, 1));
        Assert.Contains(expected, error.Message);
        Assert.Contains("cannot be trained", error.Message);
    }

    [Fact]
    public void A_choice_the_family_file_cannot_express_is_refused_before_training()
    {
        // A trainable config that a llama GGUF would read back as a different model (RMSNorm).
        var layerNormLlama = new TrainingArchitecture(Llama.Family, TrainableConfigs.Get("llama") with { Norm = NormKind.LayerNorm });
        var error = Assert.Throws<SlmKitException>(() => ModelExport.EnsureExportable(layerNormLlama));
        Assert.Contains("Norm: LayerNorm vs RmsNorm", error.Message);

        // GPT-NeoX configs train, but this exporter does not write that family: refused before any file is made.
        string neox = Path.Combine(fixture.Folder, "neox.json");
        File.WriteAllText(neox, $$"""
        {"model_type": "gpt_neox", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
         "vocab_size": {{fixture.Tokenizer.VocabSize}}, "max_position_embeddings": 64, "rotary_pct": 0.25, "hidden_act": "gelu", "layer_norm_eps": 1e-5}
        """);
        string outputFolder = Path.Combine(fixture.Folder, "neox-run");
        var config = new TrainingConfig { ModelConfig = neox, Tokenizer = fixture.TokenizerFolder, Data = [fixture.CorpusPath], Output = outputFolder, Steps = 2 };
        Assert.Contains("'gptneox' family is not supported", Assert.Throws<SlmKitException>(() => TrainingRun.Run(config)).Message);
        Assert.False(Directory.Exists(outputFolder));

        // Gemma scales its embeddings: the trainer refuses the choice by name.
        string gemma = Path.Combine(fixture.Folder, "gemma.json");
        File.WriteAllText(gemma, $$"""
        {"model_type": "gemma", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 8,
         "intermediate_size": 64, "vocab_size": {{fixture.Tokenizer.VocabSize}}, "max_position_embeddings": 64, "rms_norm_eps": 1e-6}
        """);
        Assert.Contains("cannot be trained", Assert.Throws<SlmKitException>(() => TrainingRun.Run(config with { ModelConfig = gemma })).Message);
        Assert.False(Directory.Exists(outputFolder));
    }

    [Fact]
    public void Evaluation_runs_the_training_forward_without_recording()
    {
        var model = new TrainableDecoder<double>(TrainableConfigs.Get("gpt2"), seed: 4, threadCount: 1);
        TrainableConfigs.Randomize(model, new Random(5));
        (int[] tokens, int[] targets) = TrainableConfigs.Batch(model.Config.VocabSize, Batch, Seq);
        model.ZeroGradients();
        double evaluated = model.EvaluateLoss(tokens, targets, Batch, Seq);
        Assert.All(model.Parameters, p => Assert.All(p.Grad, g => Assert.Equal(0, g)));
        Assert.True(model.Tape.Recording);
        double trained = model.Loss(tokens, targets, Batch, Seq);
        Assert.Equal(trained, evaluated); // the same forward pass, bit for bit
        Assert.Contains(model.Parameters, p => p.Grad.Any(g => g != 0));

        var tape = new Tape<double>(1) { Recording = false };
        var x = Tape<double>.Leaf([1, 2, 3], [3], requiresGrad: true);
        Variable<double> y = tape.Add(x, x);
        Assert.False(y.RequiresGrad);
        tape.Backward(y, [1, 1, 1]);
        Assert.Null(x.Grad);
    }

    private static TrainingArchitecture FamilyArchitecture(string name, int vocab)
    {
        if (name == "llama-gguf")
            return new TrainingArchitecture(Llama.Family, ModelPresets.Llama(vocab, 32, 2, 4, 2, 64, tiedEmbeddings: false, contextLength: 64));
        string path = Path.Combine(Directory.CreateTempSubdirectory("slmkit-family-").FullName, "config.json");
        File.WriteAllText(path, HuggingFaceConfigJson(name, vocab));
        var hf = HuggingFaceConfig.Load(path);
        ModelFamily family = ModelLoader.FamilyOf(hf);
        var architecture = new TrainingArchitecture(family, family.FromHuggingFace(hf));
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        return architecture;
    }

    /// <summary>Small transformers configs as the families publish them.</summary>
    private static string HuggingFaceConfigJson(string family, int vocab) => family switch
    {
        "llama" => $$"""
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": {{vocab}}, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
             "rope_theta": 10000.0, "tie_word_embeddings": true, "hidden_act": "silu"}
            """,
        "qwen2" => $$"""
            {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": {{vocab}}, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
             "rope_theta": 1000000.0, "tie_word_embeddings": false, "hidden_act": "silu", "use_sliding_window": false, "sliding_window": 64}
            """,
        "gpt2" => $$"""
            {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": 64,
             "vocab_size": {{vocab}}, "n_positions": 64, "n_ctx": 64, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"}
            """,
        _ => throw new ArgumentException(family),
    };

    private static float[] RuntimeLogits(LanguageModel model, int[] tokens)
    {
        int vocab = model.VocabSize;
        var logits = new float[tokens.Length * vocab];
        for (int b = 0; b < Batch; b++)
        {
            var cache = model.CreateCache(Seq);
            model.Forward(cache, tokens.AsSpan(b * Seq, Seq), logits.AsSpan(b * Seq * vocab, Seq * vocab), allPositions: true);
        }
        return logits;
    }

    /// <summary>max |a − b| / max |b|.</summary>
    private static double RelativeError<T>(T[] actual, float[] expected) where T : unmanaged, INumber<T>
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(double.CreateChecked(actual[i]) - expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        return worst / scale;
    }
}
