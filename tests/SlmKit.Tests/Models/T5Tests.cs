using System.Globalization;
using SlmKit.Formats;
using SlmKit.Models;
using SlmKit.Tensors;

namespace SlmKit.Tests.Models;

/// <summary>The shape of a random T5 test model.</summary>
public sealed record RandomT5Spec(string Name, int Dim, int Heads, int HeadDim, int Ffn, int EncoderLayers, int DecoderLayers, int Vocab, bool Gated, bool Tied, GgmlType Type, int Seed)
{
    public override string ToString() => Name;
}

/// <summary>
/// Random-weight T5 models written by SlmKit's writers: a GGUF with llama.cpp's t5 names and keys (and a synthetic
/// SentencePiece vocabulary so llama.cpp loads it) and the Hugging Face twin with transformers' names.
/// </summary>
public sealed class RandomT5
{
    private const int Buckets = 32;
    private readonly List<(string Gguf, string HuggingFace, long[] Dims, float[] Values)> _tensors = [];

    public RandomT5(RandomT5Spec spec)
    {
        Spec = spec;
        var random = new Random(spec.Seed);
        float[] Uniform(int count, double scale, double offset = 0) => RandomLlama.Uniform(random, count, scale, offset, spec.Type == GgmlType.F16);
        void Add(string gguf, string hf, long[] dims, float[] values) => _tensors.Add((gguf, hf, dims, values));
        int d = spec.Dim, inner = spec.Heads * spec.HeadDim, f = spec.Ffn;
        Add("token_embd.weight", "shared.weight", [spec.Vocab, d], Uniform(spec.Vocab * d, 1.0));
        foreach (bool decoder in new[] { false, true })
        {
            int layers = decoder ? spec.DecoderLayers : spec.EncoderLayers;
            string stack = decoder ? "dec" : "enc", hfStack = decoder ? "decoder" : "encoder";
            for (int l = 0; l < layers; l++)
            {
                string g = $"{stack}.blk.{l}.", h = $"{hfStack}.block.{l}.layer.";
                Add(g + "attn_norm.weight", h + "0.layer_norm.weight", [d], Uniform(d, 0.2, 1.0));
                // T5 folds 1/√d into its initialisation and never scales q·k; these scales keep the scores moderate.
                foreach (string p in new[] { "q", "k", "v" })
                    Add(g + "attn_" + p + ".weight", h + "0.SelfAttention." + p + ".weight", [inner, d], Uniform(inner * d, (p == "q" ? 0.5 : 1.5) / Math.Sqrt(d)));
                Add(g + "attn_o.weight", h + "0.SelfAttention.o.weight", [d, inner], Uniform(d * inner, 1.5 / Math.Sqrt(inner)));
                if (l == 0)
                    Add(g + "attn_rel_b.weight", h + "0.SelfAttention.relative_attention_bias.weight", [Buckets, spec.Heads], Uniform(Buckets * spec.Heads, 1.0));
                int ffn = 1;
                if (decoder)
                {
                    Add(g + "cross_attn_norm.weight", h + "1.layer_norm.weight", [d], Uniform(d, 0.2, 1.0));
                    foreach (string p in new[] { "q", "k", "v" })
                        Add(g + "cross_attn_" + p + ".weight", h + "1.EncDecAttention." + p + ".weight", [inner, d], Uniform(inner * d, (p == "q" ? 0.5 : 1.5) / Math.Sqrt(d)));
                    Add(g + "cross_attn_o.weight", h + "1.EncDecAttention.o.weight", [d, inner], Uniform(d * inner, 1.5 / Math.Sqrt(inner)));
                    ffn = 2;
                }
                Add(g + "ffn_norm.weight", $"{h}{ffn}.layer_norm.weight", [d], Uniform(d, 0.2, 1.0));
                if (spec.Gated)
                    Add(g + "ffn_gate.weight", $"{h}{ffn}.DenseReluDense.wi_0.weight", [f, d], Uniform(f * d, 1.5 / Math.Sqrt(d)));
                Add(g + "ffn_up.weight", $"{h}{ffn}.DenseReluDense.{(spec.Gated ? "wi_1" : "wi")}.weight", [f, d], Uniform(f * d, 1.5 / Math.Sqrt(d)));
                Add(g + "ffn_down.weight", $"{h}{ffn}.DenseReluDense.wo.weight", [d, f], Uniform(d * f, 1.5 / Math.Sqrt(f)));
            }
            Add($"{stack}.output_norm.weight", $"{hfStack}.final_layer_norm.weight", [d], Uniform(d, 0.2, 1.0));
        }
        if (!spec.Tied)
            Add("output.weight", "lm_head.weight", [spec.Vocab, d], Uniform(spec.Vocab * d, 1.0 / Math.Sqrt(d)));
    }

    public RandomT5Spec Spec { get; }

    public string WriteGguf(string path)
    {
        var s = Spec;
        var writer = new GgufWriter();
        writer.Set("general.architecture", "t5");
        writer.Set("general.name", "slmkit-random-" + s.Name);
        writer.Set("t5.context_length", 512u);
        writer.Set("t5.embedding_length", (uint)s.Dim);
        writer.Set("t5.feed_forward_length", (uint)s.Ffn);
        writer.Set("t5.block_count", (uint)s.EncoderLayers);
        writer.Set("t5.decoder_block_count", (uint)s.DecoderLayers);
        writer.Set("t5.attention.head_count", (uint)s.Heads);
        writer.Set("t5.attention.key_length", (uint)s.HeadDim);
        writer.Set("t5.attention.value_length", (uint)s.HeadDim);
        writer.Set("t5.attention.layer_norm_epsilon", 1e-6f);
        writer.Set("t5.attention.relative_buckets_count", (uint)Buckets);
        writer.Set("t5.attention.layer_norm_rms_epsilon", 1e-6f);
        writer.Set("t5.decoder_start_token_id", 0u);
        writer.Set("general.file_type", s.Type == GgmlType.F16 ? 1u : 0u);
        RandomLlama.SetSyntheticTokenizer(writer, s.Vocab, addBos: false);
        foreach (var (name, _, dims, values) in _tensors)
            writer.AddTensor(name, dims, values, dims.Length == 1 || name.Contains("attn_rel_b", StringComparison.Ordinal) ? GgmlType.F32 : s.Type);
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
        foreach (var (_, hf, dims, values) in _tensors)
        {
            entries.Add(new SafeTensorEntry(hf, s.Type, dims, RandomLlama.StoredBytes(values, s.Type)));
        }
        SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), entries);
        File.WriteAllText(Path.Combine(folder, "config.json"), string.Create(CultureInfo.InvariantCulture, $$"""
            {"architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "d_model": {{s.Dim}}, "d_kv": {{s.HeadDim}},
             "d_ff": {{s.Ffn}}, "num_layers": {{s.EncoderLayers}}, "num_decoder_layers": {{s.DecoderLayers}}, "num_heads": {{s.Heads}},
             "vocab_size": {{s.Vocab}}, "relative_attention_num_buckets": {{Buckets}}, "relative_attention_max_distance": 128,
             "layer_norm_epsilon": 1e-06, "feed_forward_proj": "{{(s.Gated ? "gated-gelu" : "relu")}}", "dense_act_fn": "{{(s.Gated ? "gelu_new" : "relu")}}",
             "is_gated_act": {{(s.Gated ? "true" : "false")}}, "tie_word_embeddings": {{(s.Tied ? "true" : "false")}},
             "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1, "is_encoder_decoder": true, "torch_dtype": "{{(s.Type == GgmlType.F16 ? "float16" : "float32")}}"}
            """));
        return folder;
    }
}

/// <summary>
/// T5 against llama.cpp (llama_encode, then the decoder) on random models written by our GGUF writer, the Hugging Face
/// twin against the GGUF, and the encoder-decoder behind the decoder-only interface.
/// </summary>
public sealed class T5Tests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-t5-").FullName;

    public static TheoryData<RandomT5Spec> Specs => new(
        // Flan-T5's kind: gated GELU, untied head, three encoder and two decoder layers.
        new RandomT5Spec("flan-f32", Dim: 64, Heads: 4, HeadDim: 16, Ffn: 128, EncoderLayers: 3, DecoderLayers: 2, Vocab: 300, Gated: true, Tied: false, Type: GgmlType.F32, Seed: 401),
        // T5 v1.0's kind: ReLU, tied head, heads × d_kv wider than the hidden size.
        new RandomT5Spec("v1-f16", Dim: 64, Heads: 4, HeadDim: 32, Ffn: 256, EncoderLayers: 2, DecoderLayers: 2, Vocab: 320, Gated: false, Tied: true, Type: GgmlType.F16, Seed: 402));

    private static double Tolerance(RandomT5Spec spec) => spec.Type == GgmlType.F16 ? 1e-2 : 1e-3;

    /// <summary>SlmKit's decoder logits: the input through the first Forward, then the decoder tokens after the start token.</summary>
    private static float[] OurLogits(string path, int[] input, int[] decoder)
    {
        using var model = ModelLoader.Load(path);
        int vocab = model.VocabSize;
        var state = model.CreateCache(input.Length + decoder.Length);
        var logits = new float[decoder.Length * vocab];
        model.Forward(state, input, logits.AsSpan(0, vocab), allPositions: false);
        model.Forward(state, decoder.AsSpan(1), logits.AsSpan(vocab), allPositions: true);
        Assert.Equal(input.Length + decoder.Length - 1, state.Length);
        return logits;
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void Decoder_logits_of_every_position_match_llama_cpp(RandomT5Spec spec)
    {
        string path = new RandomT5(spec).WriteGguf(Path.Combine(_folder, spec.Name + ".gguf"));
        // 40 input tokens (relative distances beyond the exact buckets) and 24 decoder positions after the start token 0.
        int[] input = ModelTestHelpers.RandomTokens(40, spec.Vocab, spec.Seed);
        int[] decoder = [0, .. ModelTestHelpers.RandomTokens(24, spec.Vocab, spec.Seed + 1)[1..]];
        ModelTestHelpers.AssertLogitsMatch(LlamaCppForward.EncoderDecoderLogits(path, input, decoder), OurLogits(path, input, decoder), Tolerance(spec));
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void The_hugging_face_twin_gives_the_logits_of_the_gguf(RandomT5Spec spec)
    {
        var random = new RandomT5(spec);
        string gguf = random.WriteGguf(Path.Combine(_folder, spec.Name + ".gguf"));
        string hf = random.WriteHuggingFace(Path.Combine(_folder, spec.Name + "-hf"));
        int[] input = ModelTestHelpers.RandomTokens(20, spec.Vocab, spec.Seed + 2);
        int[] decoder = [0, .. ModelTestHelpers.RandomTokens(10, spec.Vocab, spec.Seed + 3)[1..]];
        float[] fromGguf = OurLogits(gguf, input, decoder);
        // transformers scales the decoder output by 1/√d_model before a tied head; llama.cpp's graph does not.
        if (spec.Tied)
            fromGguf = Array.ConvertAll(fromGguf, v => v / MathF.Sqrt(spec.Dim));
        ModelTestHelpers.AssertLogitsMatch(fromGguf, OurLogits(hf, input, decoder), 1e-4);
        using var model = ModelLoader.Load(hf);
        Assert.Equal("t5", model.Info.Family);
    }

    [Fact]
    public void A_t5_folder_converts_and_quantizes_to_ggufs_that_llama_cpp_runs_as_slmkit_runs_the_folder()
    {
        // t5-small's Unigram tokenizer (32100 tokens) rides along into the GGUF; an untied head, since transformers
        // scales a tied one's input by 1/√d and llama.cpp does not.
        string tokenizer = SharedAssets.Require("assets/hf-tokenizers/t5-small");
        var spec = new RandomT5Spec("convert", Dim: 32, Heads: 2, HeadDim: 16, Ffn: 64, EncoderLayers: 2, DecoderLayers: 2, Vocab: 32100, Gated: true, Tied: false, Type: GgmlType.F16, Seed: 404);
        string folder = new RandomT5(spec).WriteHuggingFace(Path.Combine(_folder, "model-404"), tokenizer);
        string converted = Path.Combine(_folder, "converted.gguf"), quantized = Path.Combine(_folder, "converted-q8_0.gguf");
        var stderr = new StringWriter();
        Assert.True(SlmKit.Cli.Program.Run(["convert", folder, converted], new StringWriter(), stderr) == 0, stderr.ToString());
        Assert.True(SlmKit.Cli.Program.Run(["quantize", folder, quantized, "--type", "Q8_0"], new StringWriter(), stderr) == 0, stderr.ToString());

        int[] input = ModelTestHelpers.RandomTokens(30, spec.Vocab, 5);
        int[] decoder = [0, .. ModelTestHelpers.RandomTokens(12, spec.Vocab, 6)[1..]];
        float[] fromFolder = OurLogits(folder, input, decoder);
        ModelTestHelpers.AssertLogitsMatch(fromFolder, OurLogits(converted, input, decoder), 1e-4);
        ModelTestHelpers.AssertLogitsMatch(LlamaCppForward.EncoderDecoderLogits(converted, input, decoder), fromFolder, 1e-2);
        var (worst, scale, agreement, _) = SlmKit.Tests.Quantization.QuantizedOracleTests.Compare(
            LlamaCppForward.EncoderDecoderLogits(quantized, input, decoder), OurLogits(quantized, input, decoder), decoder.Length);
        Assert.True(agreement >= 0.99 && worst <= 0.025 * scale, $"Q8_0: top-1 {agreement:P1}, max |Δlogit| {worst / scale:P2} of scale");

        // The converted file carries the tokenizer: text in, as a T5 GGUF from llama.cpp's converter would run.
        var stdout = new StringWriter();
        Assert.True(SlmKit.Cli.Program.Run(["generate", "--model", converted, "--prompt", "summarize: a b c", "--max-tokens", "4", "--temperature", "0"], stdout, stderr) == 0, stderr.ToString());
    }

    [Fact]
    public void Relative_position_buckets_follow_transformers_definition()
    {
        var config = new T5Config { HiddenSize = 8, HeadCount = 1, HeadDim = 8, FeedForwardSize = 8, EncoderLayers = 1, DecoderLayers = 1, VocabSize = 4 };
        // Bidirectional (encoder), 32 buckets: 16 per direction, exact below 8, keys after the query in the upper half.
        Assert.Equal(0, config.Bucket(0, bidirectional: true));
        Assert.Equal(5, config.Bucket(-5, bidirectional: true));
        Assert.Equal(16 + 5, config.Bucket(5, bidirectional: true));
        // 8 + ⌊ln(20/8) / ln(128/8) · 8⌋ = 8 + ⌊2.64⌋ = 10, and everything from 128 on in the last bucket.
        Assert.Equal(10, config.Bucket(-20, bidirectional: true));
        Assert.Equal(15, config.Bucket(-500, bidirectional: true));
        Assert.Equal(31, config.Bucket(500, bidirectional: true));
        // Unidirectional (decoder): keys after the query share bucket 0; 32 buckets for the past, exact below 16.
        Assert.Equal(0, config.Bucket(3, bidirectional: false));
        Assert.Equal(15, config.Bucket(-15, bidirectional: false));
        Assert.Equal(16 + (int)(Math.Log(40 / 16.0) / Math.Log(128 / 16.0) * 16), config.Bucket(-40, bidirectional: false));
        Assert.Equal(31, config.Bucket(-1000, bidirectional: false));
    }

    [Fact]
    public void Generation_runs_a_t5_gguf_through_the_decoder_only_interface()
    {
        var spec = new RandomT5Spec("generate", Dim: 64, Heads: 4, HeadDim: 16, Ffn: 128, EncoderLayers: 2, DecoderLayers: 2, Vocab: 300, Gated: true, Tied: false, Type: GgmlType.F32, Seed: 403);
        string path = new RandomT5(spec).WriteGguf(Path.Combine(_folder, "generate.gguf"));
        int[] input = ModelTestHelpers.RandomTokens(12, spec.Vocab, 4);
        // Greedy by SlmKit: the input, then each argmax token fed back; the same tokens as llama.cpp's argmax per step.
        int[] ours = ModelTestHelpers.OurGreedy(path, input, 8);
        int[] decoder = [0, .. ours[..7]];
        float[] theirs = LlamaCppForward.EncoderDecoderLogits(path, input, decoder);
        for (int i = 0; i < 8; i++)
            Assert.Equal(SlmKit.Inference.Sampler.ArgMax(theirs.AsSpan(i * spec.Vocab, spec.Vocab)), ours[i]);

        using var model = ModelLoader.Load(path);
        var state = model.CreateCache(16);
        var logits = new float[input.Length * spec.Vocab];
        Assert.Contains("no logits for its input text", Assert.Throws<SlmKitException>(() => model.Forward(state, input, logits, allPositions: true)).Message);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
