using System.Numerics.Tensors;
using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>The sizes and choices of a T5 encoder-decoder: llama.cpp's <c>t5.*</c> keys, transformers' T5Config.</summary>
public sealed record T5Config
{
    public required int HiddenSize { get; init; }
    public required int HeadCount { get; init; }

    /// <summary>Size of each head (d_kv); heads × d_kv need not equal the hidden size.</summary>
    public required int HeadDim { get; init; }
    public required int FeedForwardSize { get; init; }
    public required int EncoderLayers { get; init; }
    public required int DecoderLayers { get; init; }
    public required int VocabSize { get; init; }
    public int RelativeBuckets { get; init; } = 32;

    /// <summary>Distance from which relative positions share the last bucket (llama.cpp fixes 128).</summary>
    public int RelativeMaxDistance { get; init; } = 128;
    public float NormEpsilon { get; init; } = 1e-6f;

    /// <summary>Flan-T5 / T5 v1.1: act(wi_0·x) ⊙ wi_1·x; T5 v1.0: act(wi·x).</summary>
    public bool GatedFeedForward { get; init; }
    public ActivationKind Activation { get; init; } = ActivationKind.Relu;
    public int DecoderStartToken { get; init; }
    public int ContextLength { get; init; } = 512;
    public bool TiedEmbeddings { get; init; }

    /// <summary>
    /// transformers multiplies the decoder's output by 1/√hidden before a tied head (T5 v1.0); llama.cpp's graph does
    /// not, so GGUF models leave it off and Hugging Face ones follow transformers.
    /// </summary>
    public bool ScaleTiedOutput { get; init; }

    public int InnerSize => HeadCount * HeadDim;

    public void Validate(string source)
    {
        foreach (var (name, value) in new[] { ("hidden size", HiddenSize), ("head count", HeadCount), ("head size", HeadDim), ("feed-forward size", FeedForwardSize),
            ("encoder layers", EncoderLayers), ("decoder layers", DecoderLayers), ("vocabulary size", VocabSize), ("relative buckets", RelativeBuckets), ("context length", ContextLength) })
        {
            if (value <= 0)
                throw new ModelFileException(source, $"t5 {name} must be positive (got {value})");
        }
        if ((uint)DecoderStartToken >= (uint)VocabSize)
            throw new ModelFileException(source, $"t5 decoder start token {DecoderStartToken} is outside the vocabulary (0..{VocabSize - 1})");
        if (!(NormEpsilon > 0))
            throw new ModelFileException(source, $"t5 norm epsilon must be positive (got {NormEpsilon})");
    }

    /// <summary>llama.cpp's keys (convert_hf_to_gguf's T5Model); the feed-forward kind from the tensors present.</summary>
    public static T5Config FromGguf(GgufFile file)
    {
        var keys = new ModelFamily.GgufKeys(file);
        var embedding = file.Find("token_embd.weight") ?? throw new ModelFileException(file.SourcePath, "tensor 'token_embd.weight' is missing");
        int layers = keys.Required("block_count");
        bool gated = file.Find("enc.blk.0.ffn_gate.weight") is not null;
        return new T5Config
        {
            HiddenSize = keys.Required("embedding_length"),
            HeadCount = keys.Required("attention.head_count"),
            HeadDim = keys.Required("attention.key_length"),
            FeedForwardSize = keys.Required("feed_forward_length"),
            EncoderLayers = layers,
            DecoderLayers = keys.Optional("decoder_block_count") ?? layers,
            VocabSize = ModelFamily.GgufKeys.ToInt(file.SourcePath, "token_embd rows", embedding.Dimensions[0]),
            RelativeBuckets = keys.Required("attention.relative_buckets_count"),
            NormEpsilon = (float)(keys.Number("attention.layer_norm_rms_epsilon") ?? 1e-6),
            GatedFeedForward = gated,
            // llama.cpp's T5 graph: the tanh GELU for the gated feed-forward, ReLU for the plain one.
            Activation = gated ? ActivationKind.GeluTanh : ActivationKind.Relu,
            DecoderStartToken = keys.Optional("decoder_start_token_id") ?? 0,
            ContextLength = keys.Optional("context_length") ?? 512,
            TiedEmbeddings = file.Find("output.weight") is null,
        };
    }

    /// <summary>transformers' T5Config fields (t5-small, google/flan-t5-*).</summary>
    public static T5Config FromHuggingFace(HuggingFaceConfig config)
    {
        int Required(string key) => config.GetInt(key) ?? throw new ModelFileException(config.SourcePath, $"field '{key}' is missing");
        // feed_forward_proj: "relu", "gated-gelu" (the act of the gated form is dense_act_fn, gelu_new), "gated-silu", …
        string projection = config.GetString("feed_forward_proj") ?? "relu";
        bool gated = projection.StartsWith("gated-", StringComparison.Ordinal);
        string act = gated ? projection["gated-".Length..] : projection;
        ActivationKind activation = (act == "gelu" && gated ? config.GetString("dense_act_fn") ?? "gelu_new" : act) switch
        {
            "relu" => ActivationKind.Relu,
            "gelu_new" or "gelu_pytorch_tanh" => ActivationKind.GeluTanh,
            "gelu" => ActivationKind.GeluErf,
            "silu" or "swish" => ActivationKind.Silu,
            var other => throw new ModelFileException(config.SourcePath, $"feed_forward_proj '{projection}' ({other}) is not supported for t5 (relu, gated-gelu, gated-silu)"),
        };
        bool tied = config.GetBool("tie_word_embeddings") ?? true;
        int layers = Required("num_layers");
        return new T5Config
        {
            HiddenSize = Required("d_model"),
            HeadCount = Required("num_heads"),
            HeadDim = Required("d_kv"),
            FeedForwardSize = Required("d_ff"),
            EncoderLayers = layers,
            DecoderLayers = config.GetInt("num_decoder_layers") ?? layers,
            VocabSize = Required("vocab_size"),
            RelativeBuckets = config.GetInt("relative_attention_num_buckets") ?? 32,
            RelativeMaxDistance = config.GetInt("relative_attention_max_distance") ?? 128,
            NormEpsilon = (float)(config.GetDouble("layer_norm_epsilon") ?? 1e-6),
            GatedFeedForward = gated,
            Activation = activation,
            DecoderStartToken = config.GetInt("decoder_start_token_id") ?? 0,
            ContextLength = config.GetInt("n_positions") ?? 512,
            TiedEmbeddings = tied,
            ScaleTiedOutput = tied,
        };
    }

    /// <summary>
    /// T5's relative position bucket of a key <paramref name="relative"/> positions after its query (negative: before),
    /// as transformers' _relative_position_bucket and llama.cpp compute it: exact buckets for the nearest
    /// distances, logarithmic ones up to the maximum distance; the encoder's buckets tell the two directions apart.
    /// </summary>
    public int Bucket(int relative, bool bidirectional)
    {
        int buckets = RelativeBuckets, bucket = 0;
        if (bidirectional)
        {
            buckets /= 2;
            if (relative > 0)
                bucket += buckets;
            relative = Math.Abs(relative);
        }
        else
        {
            relative = -Math.Min(relative, 0);
        }
        int exact = buckets / 2;
        if (relative < exact)
            return bucket + relative;
        int large = exact + (int)(Math.Log(relative / (double)exact) / Math.Log(RelativeMaxDistance / (double)exact) * (buckets - exact));
        return bucket + Math.Min(large, buckets - 1);
    }
}

/// <summary>
/// A T5 model's memory of one sequence: the encoder's keys and values for every decoder layer's cross-attention (set
/// when the prompt is fed) and the decoder's self-attention cache. <see cref="SequenceState.Length"/> counts the prompt
/// and the tokens generated after it, as for a decoder-only model.
/// </summary>
public sealed class T5State : SequenceState
{
    internal T5State(T5Config config, int capacity) : base(capacity)
    {
        int inner = config.InnerSize;
        SelfKeys = new float[config.DecoderLayers][];
        SelfValues = new float[config.DecoderLayers][];
        CrossKeys = new float[config.DecoderLayers][];
        CrossValues = new float[config.DecoderLayers][];
        for (int l = 0; l < config.DecoderLayers; l++)
        {
            // The decoder sees the start token and at most as many generated tokens as the context holds.
            SelfKeys[l] = new float[(capacity + 1) * inner];
            SelfValues[l] = new float[(capacity + 1) * inner];
        }
    }

    /// <summary>Decoder self-attention keys and values per layer, [position, heads × head size].</summary>
    internal float[][] SelfKeys { get; }
    internal float[][] SelfValues { get; }

    /// <summary>Cross-attention keys and values per decoder layer, [encoder position, heads × head size].</summary>
    internal float[][] CrossKeys { get; }
    internal float[][] CrossValues { get; }

    /// <summary>Tokens the encoder read (the prompt).</summary>
    internal int EncoderLength { get; set; }

    /// <summary>Decoder positions filled (the start token and the tokens fed after the prompt).</summary>
    internal int DecoderLength { get; set; }
}

/// <summary>
/// T5 (Raffel et al., 2020), the survey's encoder-decoder row: a bidirectional encoder and a causal decoder with
/// cross-attention, RMS norms without bias, relative position biases (computed by the first layer of each stack and
/// shared by the others), no 1/√d scaling of the attention scores, and a ReLU or gated-GELU feed-forward. It runs behind
/// the decoder-only interface: the first <see cref="Forward"/> of a sequence encodes the tokens as the input text and
/// returns the decoder's logits after its start token; later calls feed the decoder, so generation, sampling and the
/// server need nothing new. From GGUF (llama.cpp's <c>t5</c>: enc.*/dec.* tensors) or a Hugging Face folder
/// (t5-small, flan-t5-*).
/// </summary>
public sealed class T5Model : LanguageModel
{
    private readonly IWeightSource _source;
    private readonly WeightBinder _binder;
    private readonly T5Config _config;
    private readonly WorkerPool _pool;
    private readonly WeightTensor _embedding;
    private readonly WeightTensor _output;
    private readonly Block[] _encoder;
    private readonly Block[] _decoder;
    private readonly float[] _encoderNorm, _decoderNorm;
    private readonly float[] _encoderBias, _decoderBias;
    private readonly object _forwardLock = new();

    private float[] _x = [], _normed = [], _q = [], _k = [], _v = [], _attended = [], _projected = [], _gate = [], _up = [], _scores = [];
    private int[] _biasRows = [];

    private sealed record Attention(WeightTensor Q, WeightTensor K, WeightTensor V, WeightTensor O);

    private sealed record Block(float[] AttentionNorm, Attention Self, float[]? CrossNorm, Attention? Cross, float[] FeedForwardNorm,
        WeightTensor? Gate, WeightTensor Up, WeightTensor Down);

    private T5Model(IWeightSource source, T5Config config, string architecture, string sourceFormat, WorkerPool? pool, bool huggingFace)
    {
        config.Validate(source.SourcePath);
        _source = source;
        _config = config;
        _pool = pool ?? WorkerPool.Shared;
        _binder = new WeightBinder(source);
        int d = config.HiddenSize, inner = config.InnerSize, f = config.FeedForwardSize;
        try
        {
            Attention BindAttention(Func<string, string> name) => new(
                _binder.Matrix(name("q"), inner, d), _binder.Matrix(name("k"), inner, d), _binder.Matrix(name("v"), inner, d), _binder.Matrix(name("o"), d, inner));
            Block BindBlock(bool decoder, int l)
            {
                string stack = decoder ? "dec" : "enc", hf = $"{(decoder ? "decoder" : "encoder")}.block.{l}.layer.";
                int ffnLayer = decoder ? 2 : 1;
                string Gguf(string role) => $"{stack}.blk.{l}.{role}.weight";
                return new Block(
                    AttentionNorm: _binder.Vector(huggingFace ? hf + "0.layer_norm.weight" : Gguf("attn_norm"), d),
                    Self: BindAttention(p => huggingFace ? $"{hf}0.SelfAttention.{p}.weight" : Gguf("attn_" + p)),
                    CrossNorm: decoder ? _binder.Vector(huggingFace ? hf + "1.layer_norm.weight" : Gguf("cross_attn_norm"), d) : null,
                    Cross: decoder ? BindAttention(p => huggingFace ? $"{hf}1.EncDecAttention.{p}.weight" : Gguf("cross_attn_" + p)) : null,
                    FeedForwardNorm: _binder.Vector(huggingFace ? $"{hf}{ffnLayer}.layer_norm.weight" : Gguf("ffn_norm"), d),
                    Gate: config.GatedFeedForward ? _binder.Matrix(huggingFace ? $"{hf}{ffnLayer}.DenseReluDense.wi_0.weight" : Gguf("ffn_gate"), f, d) : null,
                    Up: _binder.Matrix(huggingFace ? $"{hf}{ffnLayer}.DenseReluDense.{(config.GatedFeedForward ? "wi_1" : "wi")}.weight" : Gguf("ffn_up"), f, d),
                    Down: _binder.Matrix(huggingFace ? $"{hf}{ffnLayer}.DenseReluDense.wo.weight" : Gguf("ffn_down"), d, f));
            }
            _embedding = _binder.Matrix(huggingFace ? "shared.weight" : "token_embd.weight", config.VocabSize, d);
            _encoder = [.. Enumerable.Range(0, config.EncoderLayers).Select(l => BindBlock(decoder: false, l))];
            _decoder = [.. Enumerable.Range(0, config.DecoderLayers).Select(l => BindBlock(decoder: true, l))];
            _encoderNorm = _binder.Vector(huggingFace ? "encoder.final_layer_norm.weight" : "enc.output_norm.weight", d);
            _decoderNorm = _binder.Vector(huggingFace ? "decoder.final_layer_norm.weight" : "dec.output_norm.weight", d);
            // The first layer of each stack holds the relative position bias, [buckets, heads]; the other layers reuse it.
            _encoderBias = _binder.Table(huggingFace ? "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight" : "enc.blk.0.attn_rel_b.weight", config.RelativeBuckets, config.HeadCount);
            _decoderBias = _binder.Table(huggingFace ? "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight" : "dec.blk.0.attn_rel_b.weight", config.RelativeBuckets, config.HeadCount);
            string head = huggingFace ? "lm_head.weight" : "output.weight";
            _output = !config.TiedEmbeddings && source.Find(head) is not null ? _binder.Matrix(head, config.VocabSize, d) : _embedding;
        }
        catch
        {
            _binder.Dispose();
            throw;
        }
        Info = new ModelInfo(
            Architecture: architecture,
            Family: "t5",
            ParameterCount: _binder.ParameterCount,
            ParametersByType: _binder.ParametersByType,
            ContextLength: config.ContextLength,
            VocabSize: config.VocabSize,
            LayerCount: config.EncoderLayers + config.DecoderLayers,
            HiddenSize: d,
            HeadCount: config.HeadCount,
            KvHeadCount: config.HeadCount,
            HeadDim: config.HeadDim,
            FeedForwardSize: f,
            TiedEmbeddings: ReferenceEquals(_output, _embedding),
            SourceFormat: sourceFormat);
    }

    public static T5Model FromGguf(GgufFile file, WorkerPool? pool = null) =>
        new(file, T5Config.FromGguf(file), file.Architecture ?? "t5", "gguf", pool, huggingFace: false);

    public static T5Model FromHuggingFace(SafeTensorsModel weights, HuggingFaceConfig config, WorkerPool? pool = null) =>
        new(weights, T5Config.FromHuggingFace(config), config.ModelType ?? "t5", "huggingface", pool, huggingFace: true);

    public override ModelInfo Info { get; }

    public T5Config Config => _config;

    public override SequenceState CreateCache(int contextSize) => new T5State(_config, contextSize);

    /// <summary>
    /// The first call of a sequence (Length 0) encodes <paramref name="tokens"/> as the input text and runs the decoder on
    /// its start token: the logits are the first output token's (<paramref name="allPositions"/> must be false, since
    /// the input tokens have none). Later calls feed <paramref name="tokens"/> to the decoder.
    /// </summary>
    public override void Forward(SequenceState state, ReadOnlySpan<int> tokens, Span<float> logits, bool allPositions)
    {
        int vocab = _config.VocabSize;
        var own = state as T5State ?? throw new ArgumentException($"a {state.GetType().Name} is not a T5 state; make states with this model's CreateCache", nameof(state));
        CheckFeed(own, tokens);
        if (own.Length == 0 && allPositions)
            throw new SlmKitException("an encoder-decoder model gives no logits for its input text: feed the input with allPositions false, then the decoder's tokens");
        if (logits.Length < (allPositions ? tokens.Length * vocab : vocab))
            throw new ArgumentException("logits buffer too small", nameof(logits));
        lock (_forwardLock)
        {
            if (own.Length == 0)
            {
                Encode(own, tokens);
                own.DecoderLength = 0;
                Decode(own, [_config.DecoderStartToken], logits[..vocab], allPositions: false);
            }
            else
            {
                Decode(own, tokens, logits, allPositions);
            }
            own.Length += tokens.Length;
        }
    }

    private void Encode(T5State state, ReadOnlySpan<int> tokens)
    {
        var c = _config;
        int n = tokens.Length, d = c.HiddenSize, inner = c.InnerSize;
        Ensure(n, n);
        for (int t = 0; t < n; t++)
            Embeddings.Lookup(_embedding, tokens[t], _x.AsSpan(t * d, d));
        foreach (var block in _encoder)
        {
            NormRows(_x, block.AttentionNorm, n, _normed);
            Project(_normed, n, block.Self.Q, _q);
            Project(_normed, n, block.Self.K, _k);
            Project(_normed, n, block.Self.V, _v);
            Attend(_q, n, 0, _k, _v, n, _encoderBias, bidirectional: true, causal: false, _attended);
            Project(_attended, n, block.Self.O, _projected);
            TensorPrimitives.Add(_x.AsSpan(0, n * d), _projected.AsSpan(0, n * d), _x.AsSpan(0, n * d));
            FeedForward(block, n);
        }
        NormRows(_x, _encoderNorm, n, _normed);
        // Each decoder layer's cross-attention keys and values, computed once per input.
        for (int l = 0; l < _decoder.Length; l++)
        {
            if (state.CrossKeys[l] is null || state.CrossKeys[l].Length < n * inner)
            {
                state.CrossKeys[l] = new float[n * inner];
                state.CrossValues[l] = new float[n * inner];
            }
            Project(_normed, n, _decoder[l].Cross!.K, state.CrossKeys[l]);
            Project(_normed, n, _decoder[l].Cross!.V, state.CrossValues[l]);
        }
        state.EncoderLength = n;
    }

    private void Decode(T5State state, ReadOnlySpan<int> tokens, Span<float> logits, bool allPositions)
    {
        var c = _config;
        int n = tokens.Length, d = c.HiddenSize, inner = c.InnerSize, vocab = c.VocabSize, start = state.DecoderLength;
        Ensure(n, Math.Max(start + n, state.EncoderLength));
        for (int t = 0; t < n; t++)
            Embeddings.Lookup(_embedding, tokens[t], _x.AsSpan(t * d, d));
        for (int l = 0; l < _decoder.Length; l++)
        {
            var block = _decoder[l];
            NormRows(_x, block.AttentionNorm, n, _normed);
            Project(_normed, n, block.Self.Q, _q);
            Project(_normed, n, block.Self.K, state.SelfKeys[l].AsSpan(start * inner, n * inner));
            Project(_normed, n, block.Self.V, state.SelfValues[l].AsSpan(start * inner, n * inner));
            Attend(_q, n, start, state.SelfKeys[l], state.SelfValues[l], start + n, _decoderBias, bidirectional: false, causal: true, _attended);
            Project(_attended, n, block.Self.O, _projected);
            TensorPrimitives.Add(_x.AsSpan(0, n * d), _projected.AsSpan(0, n * d), _x.AsSpan(0, n * d));

            NormRows(_x, block.CrossNorm!, n, _normed);
            Project(_normed, n, block.Cross!.Q, _q);
            Attend(_q, n, start, state.CrossKeys[l], state.CrossValues[l], state.EncoderLength, bias: null, bidirectional: false, causal: false, _attended);
            Project(_attended, n, block.Cross.O, _projected);
            TensorPrimitives.Add(_x.AsSpan(0, n * d), _projected.AsSpan(0, n * d), _x.AsSpan(0, n * d));
            FeedForward(block, n);
        }
        state.DecoderLength = start + n;

        int first = allPositions ? 0 : n - 1, rows = n - first;
        for (int t = 0; t < rows; t++)
        {
            var row = _normed.AsSpan(t * d, d);
            Normalization.RmsNorm(_x.AsSpan((first + t) * d, d), _decoderNorm, c.NormEpsilon, row);
            if (c.ScaleTiedOutput && ReferenceEquals(_output, _embedding))
                TensorPrimitives.Multiply(row, 1f / MathF.Sqrt(d), row);
        }
        MatMul.Multiply(_pool, _normed, rows, _output, logits[..(rows * vocab)]);
    }

    /// <summary>
    /// Multi-head attention of <paramref name="queries"/> (n rows at positions start…) over <paramref name="keyCount"/>
    /// keys, with T5's relative position bias where given and no 1/√d scaling; causal masks keys after the query.
    /// </summary>
    private void Attend(float[] queries, int n, int start, float[] keys, float[] values, int keyCount, float[]? bias, bool bidirectional, bool causal, float[] output)
    {
        var c = _config;
        int heads = c.HeadCount, dk = c.HeadDim, inner = c.InnerSize;
        var scores = _scores.AsSpan(0, keyCount);
        var biasRows = _biasRows.AsSpan(0, keyCount);
        for (int t = 0; t < n; t++)
        {
            int position = start + t, visible = causal ? position + 1 : keyCount;
            // Each key's bucket is the same for every head: its row of the bias table, found once per query.
            if (bias is not null)
            {
                for (int j = 0; j < visible; j++)
                    biasRows[j] = c.Bucket(j - position, bidirectional) * heads;
            }
            for (int h = 0; h < heads; h++)
            {
                var q = queries.AsSpan(t * inner + h * dk, dk);
                var live = scores[..visible];
                for (int j = 0; j < visible; j++)
                {
                    float score = TensorPrimitives.Dot(q, keys.AsSpan(j * inner + h * dk, dk));
                    if (bias is not null)
                        score += bias[biasRows[j] + h];
                    live[j] = score;
                }
                TensorPrimitives.SoftMax(live, live);
                var o = output.AsSpan(t * inner + h * dk, dk);
                o.Clear();
                for (int j = 0; j < visible; j++)
                    TensorPrimitives.MultiplyAdd(values.AsSpan(j * inner + h * dk, dk), live[j], o, o);
            }
        }
    }

    /// <summary>x += down(act(gate·norm(x)) ⊙ up·norm(x)), or down(act(up·norm(x))) without a gate.</summary>
    private void FeedForward(Block block, int n)
    {
        var c = _config;
        int d = c.HiddenSize, f = c.FeedForwardSize;
        NormRows(_x, block.FeedForwardNorm, n, _normed);
        Project(_normed, n, block.Up, _up);
        var up = _up.AsSpan(0, n * f);
        if (block.Gate is { } gate)
        {
            Project(_normed, n, gate, _gate);
            var g = _gate.AsSpan(0, n * f);
            Activations.Apply(c.Activation, g);
            TensorPrimitives.Multiply(g, up, up);
        }
        else
        {
            Activations.Apply(c.Activation, up);
        }
        Project(_up, n, block.Down, _projected);
        TensorPrimitives.Add(_x.AsSpan(0, n * d), _projected.AsSpan(0, n * d), _x.AsSpan(0, n * d));
    }

    private void Project(float[] input, int n, WeightTensor weight, Span<float> output) =>
        MatMul.Multiply(_pool, input, n, weight, output[..(n * (int)weight.Dimensions[0])]);

    private void NormRows(float[] input, float[] weight, int n, float[] output)
    {
        int d = _config.HiddenSize;
        for (int t = 0; t < n; t++)
            Normalization.RmsNorm(input.AsSpan(t * d, d), weight, _config.NormEpsilon, output.AsSpan(t * d, d));
    }

    private void Ensure(int tokens, int keys)
    {
        var c = _config;
        int d = c.HiddenSize, inner = c.InnerSize, f = c.FeedForwardSize;
        if (_x.Length < tokens * d)
        {
            _x = new float[tokens * d];
            _normed = new float[tokens * d];
            _projected = new float[tokens * d];
            _q = new float[tokens * inner];
            _k = new float[tokens * inner];
            _v = new float[tokens * inner];
            _attended = new float[tokens * inner];
            _gate = new float[tokens * f];
            _up = new float[tokens * f];
        }
        if (_scores.Length < keys)
        {
            _scores = new float[keys];
            _biasRows = new int[keys];
        }
    }

    public override void Dispose()
    {
        _binder.Dispose();
        _source.Dispose();
        base.Dispose();
    }
}
