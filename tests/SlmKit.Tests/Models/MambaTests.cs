using System.Globalization;
using SlmKit.Formats;
using SlmKit.Models;
using SlmKit.Tensors;

namespace SlmKit.Tests.Models;

/// <summary>The shape of a random Mamba test model.</summary>
public sealed record RandomMambaSpec(string Name, int Dim, int Layers, int Inner, int State, int Conv, int Rank, int Vocab, bool Tied, GgmlType Type, int Seed)
{
    public override string ToString() => Name;
}

/// <summary>
/// Random-weight Mamba models written by SlmKit's writers: a GGUF as llama.cpp's converter writes one (A stored as
/// −exp(A_log), the convolution as [inner, width], a synthetic SentencePiece vocabulary) and the Hugging Face twin as
/// transformers saves state-spaces/mamba-*-hf (backbone.* names, A_log, conv1d.weight [inner, 1, width]).
/// </summary>
public sealed class RandomMamba
{
    private readonly List<(string Gguf, string HuggingFace, long[] Dims, float[] Values)> _tensors = [];

    public RandomMamba(RandomMambaSpec spec)
    {
        Spec = spec;
        var random = new Random(spec.Seed);
        float[] Uniform(int count, double scale, double offset = 0) => RandomLlama.Uniform(random, count, scale, offset, spec.Type == GgmlType.F16);
        void Add(string gguf, string hf, long[] dims, float[] values) => _tensors.Add((gguf, hf, dims, values));
        int d = spec.Dim, di = spec.Inner, ds = spec.State;
        Add("token_embd.weight", "backbone.embeddings.weight", [spec.Vocab, d], Uniform(spec.Vocab * d, 1.0));
        for (int l = 0; l < spec.Layers; l++)
        {
            string g = $"blk.{l}.", h = $"backbone.layers.{l}.";
            Add(g + "attn_norm.weight", h + "norm.weight", [d], Uniform(d, 0.2, 1.0));
            Add(g + "ssm_in.weight", h + "mixer.in_proj.weight", [2 * di, d], Uniform(2 * di * d, 1.5 / Math.Sqrt(d)));
            Add(g + "ssm_conv1d.weight", h + "mixer.conv1d.weight", [di, spec.Conv], Uniform(di * spec.Conv, 0.5));
            Add(g + "ssm_conv1d.bias", h + "mixer.conv1d.bias", [di], Uniform(di, 0.1));
            Add(g + "ssm_x.weight", h + "mixer.x_proj.weight", [spec.Rank + 2 * ds, di], Uniform((spec.Rank + 2 * ds) * di, 1.5 / Math.Sqrt(di)));
            Add(g + "ssm_dt.weight", h + "mixer.dt_proj.weight", [di, spec.Rank], Uniform(di * spec.Rank, 1.0 / Math.Sqrt(spec.Rank)));
            Add(g + "ssm_dt.bias", h + "mixer.dt_proj.bias", [di], Uniform(di, 1.0, -2.0));
            // A = −exp(A_log) with A_log = ln(1 … 16) per state entry, as Mamba initialises it, slightly perturbed.
            var aLog = new float[di * ds];
            for (int i = 0; i < di; i++)
            {
                for (int s = 0; s < ds; s++)
                    aLog[i * ds + s] = (float)(Math.Log(s + 1) + (random.NextDouble() - 0.5) * 0.2);
            }
            Add(g + "ssm_a", h + "mixer.A_log", [di, ds], aLog);
            Add(g + "ssm_d", h + "mixer.D", [di], Uniform(di, 0.5, 1.0));
            Add(g + "ssm_out.weight", h + "mixer.out_proj.weight", [d, di], Uniform(d * di, 1.5 / Math.Sqrt(di)));
        }
        Add("output_norm.weight", "backbone.norm_f.weight", [d], Uniform(d, 0.2, 1.0));
        if (!spec.Tied)
            Add("output.weight", "lm_head.weight", [spec.Vocab, d], Uniform(spec.Vocab * d, 1.0 / Math.Sqrt(d)));
    }

    public RandomMambaSpec Spec { get; }

    public string WriteGguf(string path)
    {
        var s = Spec;
        var writer = new GgufWriter();
        writer.Set("general.architecture", "mamba");
        writer.Set("general.name", "slmkit-random-" + s.Name);
        writer.Set("mamba.context_length", 1u << 20);
        writer.Set("mamba.embedding_length", (uint)s.Dim);
        writer.Set("mamba.feed_forward_length", 0u);
        writer.Set("mamba.attention.head_count", 0u);
        writer.Set("mamba.block_count", (uint)s.Layers);
        writer.Set("mamba.ssm.conv_kernel", (uint)s.Conv);
        writer.Set("mamba.ssm.inner_size", (uint)s.Inner);
        writer.Set("mamba.ssm.state_size", (uint)s.State);
        writer.Set("mamba.ssm.time_step_rank", (uint)s.Rank);
        writer.Set("mamba.attention.layer_norm_rms_epsilon", 1e-5f);
        writer.Set("general.file_type", s.Type == GgmlType.F16 ? 1u : 0u);
        RandomLlama.SetSyntheticTokenizer(writer, s.Vocab);
        foreach (var (name, _, dims, values) in _tensors)
        {
            // llama.cpp's converter keeps A as −exp(A_log), and the vectors, A and the convolution in F32.
            float[] data = name.EndsWith("ssm_a", StringComparison.Ordinal) ? Array.ConvertAll(values, v => -MathF.Exp(v)) : values;
            bool small = dims.Length == 1 || name.EndsWith("ssm_a", StringComparison.Ordinal) || name.EndsWith("ssm_conv1d.weight", StringComparison.Ordinal);
            writer.AddTensor(name, dims, data, small ? GgmlType.F32 : s.Type);
        }
        writer.Write(path);
        return path;
    }

    /// <summary>The Hugging Face twin; with <paramref name="tokenizerFolder"/>, its tokenizer.json is copied in (what conversion needs).</summary>
    public string WriteHuggingFace(string folder, string? tokenizerFolder = null)
    {
        if (tokenizerFolder is not null)
            RandomLlama.CopyTokenizer(tokenizerFolder, folder);
        var s = Spec;
        Directory.CreateDirectory(folder);
        var entries = new List<SafeTensorEntry>();
        foreach (var (name, hf, dims, values) in _tensors)
        {
            long[] shape = name.EndsWith("ssm_conv1d.weight", StringComparison.Ordinal) ? [dims[0], 1, dims[1]] : dims;
            // transformers keeps A_log and D in F32 whatever the dtype of the rest.
            bool f32 = hf.EndsWith("A_log", StringComparison.Ordinal) || hf.EndsWith(".D", StringComparison.Ordinal);
            GgmlType type = f32 ? GgmlType.F32 : s.Type;
            entries.Add(new SafeTensorEntry(hf, type, shape, RandomLlama.StoredBytes(values, type)));
        }
        SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), entries);
        string dtype = s.Type == GgmlType.F16 ? "float16" : "float32";
        File.WriteAllText(Path.Combine(folder, "config.json"), string.Create(CultureInfo.InvariantCulture, $$"""
            {"architectures": ["MambaForCausalLM"], "model_type": "mamba", "hidden_size": {{s.Dim}}, "num_hidden_layers": {{s.Layers}},
             "vocab_size": {{s.Vocab}}, "state_size": {{s.State}}, "expand": {{s.Inner / s.Dim}}, "intermediate_size": {{s.Inner}},
             "conv_kernel": {{s.Conv}}, "time_step_rank": {{s.Rank}}, "layer_norm_epsilon": 1e-05, "use_bias": false,
             "use_conv_bias": true, "hidden_act": "silu", "tie_word_embeddings": {{(s.Tied ? "true" : "false")}}, "torch_dtype": "{{dtype}}",
             "bos_token_id": 1, "eos_token_id": 2}
            """));
        return folder;
    }
}

/// <summary>
/// Mamba against llama.cpp (its <c>mamba</c> architecture) on random models written by our GGUF writer, the Hugging Face
/// twin against the GGUF, and the recurrent state: carried across calls and chunks, and reset by a zero length.
/// </summary>
public sealed class MambaTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-mamba-").FullName;

    public static TheoryData<RandomMambaSpec> Specs => new(
        new RandomMambaSpec("tied-f32", Dim: 64, Layers: 2, Inner: 128, State: 16, Conv: 4, Rank: 4, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 301),
        new RandomMambaSpec("untied-f16", Dim: 96, Layers: 3, Inner: 192, State: 8, Conv: 4, Rank: 6, Vocab: 320, Tied: false, Type: GgmlType.F16, Seed: 302),
        // A state size that is not a multiple of eight: the scan's general path.
        new RandomMambaSpec("state12-f32", Dim: 64, Layers: 2, Inner: 128, State: 12, Conv: 3, Rank: 4, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 308));

    private static double Tolerance(RandomMambaSpec spec) => spec.Type == GgmlType.F16 ? 1e-2 : 1e-3;

    private string Gguf(RandomMambaSpec spec) => new RandomMamba(spec).WriteGguf(Path.Combine(_folder, spec.Name + ".gguf"));

    [Theory]
    [MemberData(nameof(Specs))]
    public void Logits_of_every_position_match_llama_cpp(RandomMambaSpec spec)
    {
        string path = Gguf(spec);
        int[] tokens = ModelTestHelpers.RandomTokens(48, spec.Vocab, spec.Seed);
        ModelTestHelpers.AssertLogitsMatch(LlamaCppForward.Logits(path, tokens), ModelTestHelpers.OurLogits(path, tokens), Tolerance(spec));
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void Greedy_continuations_are_identical_to_llama_cpp(RandomMambaSpec spec)
    {
        string path = Gguf(spec);
        int[] prompt = ModelTestHelpers.RandomTokens(8, spec.Vocab, spec.Seed + 100);
        int[] expected = LlamaCppForward.Greedy(path, prompt, 24);
        using (var model = ModelLoader.Load(path))
        {
            Assert.Equal("mamba", model.Info.Family);
            Assert.Equal(((MambaModel)model).Config.ParameterCount(), model.Info.ParameterCount);
        }
        Assert.Equal(expected, ModelTestHelpers.OurGreedy(path, prompt, 24));
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void The_hugging_face_twin_gives_the_same_logits_as_the_gguf(RandomMambaSpec spec)
    {
        var random = new RandomMamba(spec);
        string gguf = random.WriteGguf(Path.Combine(_folder, spec.Name + ".gguf"));
        string hf = random.WriteHuggingFace(Path.Combine(_folder, spec.Name + "-hf"));
        int[] tokens = ModelTestHelpers.RandomTokens(40, spec.Vocab, spec.Seed + 7);
        ModelTestHelpers.AssertLogitsMatch(ModelTestHelpers.OurLogits(gguf, tokens), ModelTestHelpers.OurLogits(hf, tokens), 1e-4);
        using var model = ModelLoader.Load(hf);
        Assert.Equal("huggingface", model.Info.SourceFormat);
        Assert.Equal(spec.Tied, model.Info.TiedEmbeddings);
    }

    [Fact]
    public void A_mamba_gguf_quantized_to_q8_0_here_runs_in_llama_cpp_as_in_slmkit()
    {
        var spec = new RandomMambaSpec("quantized", Dim: 64, Layers: 2, Inner: 128, State: 16, Conv: 4, Rank: 4, Vocab: 300, Tied: false, Type: GgmlType.F32, Seed: 306);
        string source = Gguf(spec), quantized = Path.Combine(_folder, "q8_0.gguf");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.True(SlmKit.Cli.Program.Run(["quantize", source, quantized, "--type", "Q8_0"], stdout, stderr) == 0, stderr.ToString());
        using (var file = GgufFile.Open(quantized))
        {
            // The projections are quantized; the convolution, A, D and the vectors stay in F32, as llama.cpp keeps them.
            Assert.Equal(GgmlType.Q8_0, file.Find("blk.0.ssm_in.weight")!.Type);
            Assert.Equal(GgmlType.F32, file.Find("blk.0.ssm_a")!.Type);
            Assert.Equal(GgmlType.F32, file.Find("blk.0.ssm_conv1d.weight")!.Type);
        }
        int[] tokens = ModelTestHelpers.RandomTokens(48, spec.Vocab, 9);
        float[] ours = ModelTestHelpers.OurLogits(quantized, tokens);
        var (worst, scale, agreement, _) = SlmKit.Tests.Quantization.QuantizedOracleTests.Compare(LlamaCppForward.Logits(quantized, tokens), ours, tokens.Length);
        Assert.True(agreement >= 0.99, $"top-1 agreement {agreement:P1}");
        Assert.True(worst <= 0.025 * scale, $"max |Δlogit| {worst:G4} exceeds 2.5 % of {scale:G4}");
    }

    [Fact]
    public void Slm_info_and_slm_generate_run_a_mamba_gguf()
    {
        var spec = new RandomMambaSpec("cli", Dim: 64, Layers: 2, Inner: 128, State: 16, Conv: 4, Rank: 4, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 307);
        string path = Gguf(spec);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.True(SlmKit.Cli.Program.Run(["info", "--model", path, "--json"], stdout, stderr) == 0, stderr.ToString());
        using (var json = System.Text.Json.JsonDocument.Parse(stdout.ToString()))
        {
            Assert.Equal("mamba", json.RootElement.GetProperty("family").GetString());
            Assert.Equal(new MambaConfig { HiddenSize = 64, LayerCount = 2, VocabSize = 300, InnerSize = 128, StateSize = 16, ConvKernel = 4, TimeStepRank = 4, TiedEmbeddings = true }.ParameterCount(),
                json.RootElement.GetProperty("parameters").GetInt64());
        }
        stdout = new StringWriter();
        stderr = new StringWriter();
        Assert.True(SlmKit.Cli.Program.Run(["generate", "--model", path, "--prompt", "a b c", "--max-tokens", "8", "--temperature", "0"], stdout, stderr) == 0, stderr.ToString());
        Assert.NotEqual("", stdout.ToString().Trim());
    }

    [Fact]
    public void A_mamba_folder_converts_and_quantizes_to_ggufs_that_llama_cpp_runs_as_slmkit_runs_the_folder()
    {
        // The committed byte-level tokenizer has 2048 tokens, the vocabulary llama.cpp then expects of the model.
        var spec = new RandomMambaSpec("convert", Dim: 64, Layers: 2, Inner: 128, State: 16, Conv: 4, Rank: 4, Vocab: 2048, Tied: false, Type: GgmlType.F16, Seed: 309);
        string tokenizer = Path.Combine(SharedAssets.RepositoryRoot, "models", "default", "tokenizer");
        string folder = new RandomMamba(spec).WriteHuggingFace(Path.Combine(_folder, "model-309"), tokenizer);
        string converted = Path.Combine(_folder, "converted.gguf"), quantized = Path.Combine(_folder, "converted-q8_0.gguf");
        var stderr = new StringWriter();
        Assert.True(SlmKit.Cli.Program.Run(["convert", folder, converted], new StringWriter(), stderr) == 0, stderr.ToString());
        Assert.True(SlmKit.Cli.Program.Run(["quantize", folder, quantized, "--type", "Q8_0"], new StringWriter(), stderr) == 0, stderr.ToString());
        using (var file = GgufFile.Open(converted))
        {
            // llama.cpp's converter: A as −exp(A_log), the convolution squeezed and in F32.
            Assert.Equal(GgmlType.F32, file.Find("blk.0.ssm_a")!.Type);
            Assert.Equal([128L, 4L], file.Find("blk.0.ssm_conv1d.weight")!.Dimensions);
        }

        int[] tokens = ModelTestHelpers.RandomTokens(40, spec.Vocab, 3);
        float[] fromFolder = ModelTestHelpers.OurLogits(folder, tokens);
        ModelTestHelpers.AssertLogitsMatch(fromFolder, ModelTestHelpers.OurLogits(converted, tokens), 1e-4);
        ModelTestHelpers.AssertLogitsMatch(LlamaCppForward.Logits(converted, tokens), fromFolder, 1e-2);
        var (worst, scale, agreement, _) = SlmKit.Tests.Quantization.QuantizedOracleTests.Compare(LlamaCppForward.Logits(quantized, tokens), ModelTestHelpers.OurLogits(quantized, tokens), tokens.Length);
        Assert.True(agreement >= 0.99 && worst <= 0.025 * scale, $"Q8_0: top-1 {agreement:P1}, max |Δlogit| {worst / scale:P2} of scale");
    }

    [Fact]
    public void The_state_carries_across_calls_and_chunks_and_a_zero_length_starts_afresh()
    {
        var spec = new RandomMambaSpec("state", Dim: 64, Layers: 2, Inner: 128, State: 16, Conv: 4, Rank: 4, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 303);
        using var model = ModelLoader.Load(Gguf(spec));
        int vocab = model.VocabSize;
        // 150 tokens: three chunks of at most 64 in one call, against pieces of 1, 2 and 70 tokens.
        int[] tokens = ModelTestHelpers.RandomTokens(150, vocab, 5);
        var state = model.CreateCache(150);
        var whole = new float[tokens.Length * vocab];
        model.Forward(state, tokens, whole, allPositions: true);
        Assert.Equal(150, state.Length);

        state.Length = 0;
        var pieces = new float[tokens.Length * vocab];
        int at = 0;
        foreach (int size in new[] { 1, 2, 70, 1, 76 })
        {
            model.Forward(state, tokens.AsSpan(at, size), pieces.AsSpan(at * vocab, size * vocab), allPositions: true);
            at += size;
        }
        ModelTestHelpers.AssertLogitsMatch(whole, pieces, 1e-5);

        // A zero length starts a new sequence: the first logits are those of a fresh state.
        state.Length = 0;
        var again = new float[vocab];
        model.Forward(state, tokens.AsSpan(0, 1), again, allPositions: false);
        Assert.Equal(whole.AsSpan(0, vocab).ToArray(), again);
    }

    [Fact]
    public void A_mamba_state_is_refused_by_a_transformer_and_a_transformer_cache_by_mamba()
    {
        var spec = new RandomMambaSpec("mixed", Dim: 64, Layers: 1, Inner: 128, State: 16, Conv: 4, Rank: 4, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 304);
        using var mamba = ModelLoader.Load(Gguf(spec));
        using var llama = ModelLoader.Load(new RandomLlama(new RandomLlamaSpec("mixed-llama", Dim: 64, Layers: 1, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 96,
            Vocab: 300, Tied: true, RopeTheta: 10000f, Type: GgmlType.F32, Seed: 1)).WriteGguf(Path.Combine(_folder, "llama.gguf")));
        var logits = new float[300];
        Assert.Contains("not a transformer's cache", Assert.Throws<ArgumentException>(() => llama.Forward(mamba.CreateCache(4), [1], logits, false)).Message);
        Assert.Contains("not a Mamba state", Assert.Throws<ArgumentException>(() => mamba.Forward(llama.CreateCache(4), [1], logits, false)).Message);
    }

    [Fact]
    public void A_mamba_gguf_missing_its_state_size_is_refused_naming_the_key()
    {
        var spec = new RandomMambaSpec("broken", Dim: 64, Layers: 1, Inner: 128, State: 16, Conv: 4, Rank: 4, Vocab: 300, Tied: true, Type: GgmlType.F32, Seed: 305);
        string path = Gguf(spec);
        using (var file = GgufFile.Open(path))
        {
            var writer = new GgufWriter();
            foreach (var (key, value) in file.Metadata)
            {
                if (key != "mamba.ssm.state_size")
                    writer.Set(key, value);
            }
            foreach (var tensor in file.Tensors)
                writer.AddTensor(tensor.Name, tensor.Type, [.. tensor.Dimensions], file.Find(tensor.Name)!.Bytes);
            writer.Write(path + ".broken");
        }
        var error = Assert.Throws<ModelFileException>(() => ModelLoader.Load(path + ".broken"));
        Assert.Contains("mamba.ssm.state_size", error.Message);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
