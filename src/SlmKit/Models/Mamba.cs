using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Models;

/// <summary>The sizes of a Mamba (v1) model: llama.cpp's <c>mamba.*</c> keys, transformers' MambaConfig.</summary>
public sealed record MambaConfig
{
    public required int HiddenSize { get; init; }
    public required int LayerCount { get; init; }
    public required int VocabSize { get; init; }

    /// <summary>Channels of the selective scan (expand × hidden; d_inner).</summary>
    public required int InnerSize { get; init; }

    /// <summary>State entries per channel (d_state, 16).</summary>
    public required int StateSize { get; init; }

    /// <summary>Width of the causal depthwise convolution (d_conv, 4).</summary>
    public required int ConvKernel { get; init; }

    /// <summary>Rank of the step-size projection (dt_rank, ⌈hidden / 16⌉).</summary>
    public required int TimeStepRank { get; init; }

    public float NormEpsilon { get; init; } = 1e-5f;
    public int ContextLength { get; init; } = 1 << 20;
    public bool TiedEmbeddings { get; init; }

    /// <summary>Refuses sizes a model cannot have, naming <paramref name="source"/>.</summary>
    public void Validate(string source)
    {
        foreach (var (name, value) in new[] { ("hidden size", HiddenSize), ("layer count", LayerCount), ("vocabulary size", VocabSize),
            ("inner size", InnerSize), ("state size", StateSize), ("convolution width", ConvKernel), ("time-step rank", TimeStepRank), ("context length", ContextLength) })
        {
            if (value <= 0)
                throw new ModelFileException(source, $"mamba {name} must be positive (got {value})");
        }
        if (!(NormEpsilon > 0))
            throw new ModelFileException(source, $"mamba norm epsilon must be positive (got {NormEpsilon})");
    }

    /// <summary>llama.cpp's keys (convert_hf_to_gguf's MambaModel).</summary>
    public static MambaConfig FromGguf(GgufFile file)
    {
        var keys = new ModelFamily.GgufKeys(file);
        var embedding = file.Find("token_embd.weight") ?? throw new ModelFileException(file.SourcePath, "tensor 'token_embd.weight' is missing");
        return new MambaConfig
        {
            HiddenSize = keys.Required("embedding_length"),
            LayerCount = keys.Required("block_count"),
            VocabSize = keys.Optional("vocab_size") ?? ModelFamily.GgufKeys.ToInt(file.SourcePath, "token_embd rows", embedding.Dimensions[0]),
            InnerSize = keys.Required("ssm.inner_size"),
            StateSize = keys.Required("ssm.state_size"),
            ConvKernel = keys.Required("ssm.conv_kernel"),
            TimeStepRank = keys.Required("ssm.time_step_rank"),
            NormEpsilon = (float)(keys.Number("attention.layer_norm_rms_epsilon") ?? 1e-5),
            // llama.cpp's converter writes 2^20: a state-space model has no positions to run out of.
            ContextLength = file.GetInteger($"{keys.Architecture}.context_length") is long context ? (int)Math.Clamp(context, int.MinValue, int.MaxValue) : 1 << 20,
            TiedEmbeddings = file.Find("output.weight") is null,
        };
    }

    /// <summary>transformers' MambaConfig fields (state-spaces/mamba-*-hf).</summary>
    public static MambaConfig FromHuggingFace(HuggingFaceConfig config)
    {
        int Required(string key) => config.GetInt(key) ?? throw new ModelFileException(config.SourcePath, $"field '{key}' is missing");
        if (config.GetBool("use_bias") == true)
            throw new ModelFileException(config.SourcePath, "use_bias true (biases on in_proj and out_proj) is not supported for mamba");
        if (config.GetBool("use_conv_bias") == false)
            throw new ModelFileException(config.SourcePath, "use_conv_bias false is not supported for mamba");
        if ((config.GetString("hidden_act") ?? "silu") is not ("silu" or "swish"))
            throw new ModelFileException(config.SourcePath, $"hidden_act '{config.GetString("hidden_act")}' is not supported for mamba (silu)");
        int hidden = Required("hidden_size");
        // time_step_rank is a number or "auto" (⌈hidden / 16⌉).
        int rank = config.Root.TryGetProperty("time_step_rank", out var r) && r.ValueKind == System.Text.Json.JsonValueKind.Number
            ? r.GetInt32()
            : (hidden + 15) / 16;
        return new MambaConfig
        {
            HiddenSize = hidden,
            LayerCount = Required("num_hidden_layers"),
            VocabSize = Required("vocab_size"),
            InnerSize = config.GetInt("intermediate_size") ?? (config.GetInt("expand") ?? 2) * hidden,
            StateSize = config.GetInt("state_size") ?? 16,
            ConvKernel = config.GetInt("conv_kernel") ?? 4,
            TimeStepRank = rank,
            NormEpsilon = (float)(config.GetDouble("layer_norm_epsilon") ?? 1e-5),
            TiedEmbeddings = config.GetBool("tie_word_embeddings") ?? true,
        };
    }

    /// <summary>Parameters of a checkpoint of this config (tied head counted once).</summary>
    public long ParameterCount()
    {
        long d = HiddenSize, di = InnerSize, ds = StateSize;
        long perLayer = d + 2 * di * d + di * ConvKernel + di + di * (TimeStepRank + 2 * ds) + TimeStepRank * di + di + di * ds + di + di * d;
        return (long)VocabSize * d * (TiedEmbeddings ? 1 : 2) + LayerCount * perLayer + d;
    }
}

/// <summary>
/// A Mamba model's memory of one sequence: for every layer the last ConvKernel − 1 inputs of its convolution and the
/// InnerSize × StateSize state of its selective scan. Its size does not grow with the sequence.
/// </summary>
public sealed class MambaState : SequenceState
{
    private readonly float[][] _conv;
    private readonly float[][] _scan;

    public MambaState(MambaConfig config, int capacity) : base(capacity)
    {
        _conv = new float[config.LayerCount][];
        _scan = new float[config.LayerCount][];
        for (int l = 0; l < config.LayerCount; l++)
        {
            _conv[l] = new float[(config.ConvKernel - 1) * config.InnerSize];
            _scan[l] = new float[config.InnerSize * config.StateSize];
        }
    }

    /// <summary>Layer <paramref name="layer"/>'s last convolution inputs, oldest first: [ConvKernel − 1, InnerSize].</summary>
    internal float[] Conv(int layer) => _conv[layer];

    /// <summary>Layer <paramref name="layer"/>'s scan state: [InnerSize, StateSize].</summary>
    internal float[] Scan(int layer) => _scan[layer];

    /// <summary>Zeroes every layer: what a sequence starts from.</summary>
    internal void Clear()
    {
        foreach (var conv in _conv)
            Array.Clear(conv);
        foreach (var scan in _scan)
            Array.Clear(scan);
    }
}

/// <summary>
/// Mamba (v1; Gu and Dao, 2023), the survey's state-space row: per layer x += out_proj(y) where, from h = RMSNorm(x)
/// and [u, z] = in_proj(h), u goes through a causal depthwise convolution and SiLU, [Δ', B, C] = x_proj(u),
/// Δ = softplus(dt_proj(Δ')), and the selective scan runs sᵢ ← exp(Δᵢ·Aᵢ) ⊙ sᵢ + Δᵢ·uᵢ·B, yᵢ = C·sᵢ + Dᵢ·uᵢ, then
/// y ⊙ SiLU(z). From GGUF (llama.cpp's <c>mamba</c>: A stored as −exp(A_log)) or a Hugging Face folder
/// (state-spaces/mamba-*-hf: A_log, conv1d weights [inner, 1, width]). The projections run on the shared kernels
/// (any weight type), a batch of tokens at a time; the convolution and scan step through the tokens in order.
/// </summary>
public sealed class MambaModel : LanguageModel
{
    private const int MaxBatch = 64;

    private readonly IWeightSource _source;
    private readonly WeightBinder _binder;
    private readonly MambaConfig _config;
    private readonly WorkerPool _pool;
    private readonly WeightTensor _embedding;
    private readonly WeightTensor _output;
    private readonly float[] _finalNorm;
    private readonly Layer[] _layers;
    private readonly object _forwardLock = new();

    // Scratch, [tokens, width] row-major.
    private float[] _x = [], _normed = [], _xz = [], _u = [], _projected = [], _steps = [], _delta = [], _y = [], _out = [], _decay = [];
    private int _scratchTokens;

    private sealed record Layer(float[] Norm, WeightTensor InProj, float[] ConvWeight, float[] ConvBias, WeightTensor XProj,
        WeightTensor DtProj, float[] DtBias, float[] A, float[] D, WeightTensor OutProj);

    private MambaModel(IWeightSource source, MambaConfig config, string architecture, string sourceFormat, WorkerPool? pool, bool huggingFace)
    {
        config.Validate(source.SourcePath);
        _source = source;
        _config = config;
        _pool = pool ?? WorkerPool.Shared;
        _binder = new WeightBinder(source);
        int d = config.HiddenSize, di = config.InnerSize, ds = config.StateSize, rank = config.TimeStepRank, width = config.ConvKernel;
        try
        {
            string prefix = huggingFace ? HuggingFacePrefix(source) : "";
            string Name(string gguf, string hf, int layer = -1) => huggingFace
                ? prefix + (layer < 0 ? hf : $"layers.{layer}.{hf}")
                : layer < 0 ? gguf : $"blk.{layer}.{gguf}";
            _embedding = _binder.Matrix(Name("token_embd.weight", "embeddings.weight"), config.VocabSize, d);
            _layers = new Layer[config.LayerCount];
            for (int l = 0; l < config.LayerCount; l++)
            {
                float[] a = _binder.Table(Name("ssm_a", "mixer.A_log", l), di, ds);
                if (huggingFace)
                {
                    // transformers keeps A_log; llama.cpp's converter stores A = −exp(A_log).
                    for (int i = 0; i < a.Length; i++)
                        a[i] = -MathF.Exp(a[i]);
                }
                _layers[l] = new Layer(
                    Norm: _binder.Vector(Name("attn_norm.weight", "norm.weight", l), d),
                    InProj: _binder.Matrix(Name("ssm_in.weight", "mixer.in_proj.weight", l), 2 * di, d),
                    ConvWeight: _binder.Table(Name("ssm_conv1d.weight", "mixer.conv1d.weight", l), di, width),
                    ConvBias: _binder.Vector(Name("ssm_conv1d.bias", "mixer.conv1d.bias", l), di),
                    XProj: _binder.Matrix(Name("ssm_x.weight", "mixer.x_proj.weight", l), rank + 2 * ds, di),
                    DtProj: _binder.Matrix(Name("ssm_dt.weight", "mixer.dt_proj.weight", l), di, rank),
                    DtBias: _binder.Vector(Name("ssm_dt.bias", "mixer.dt_proj.bias", l), di),
                    A: a,
                    D: _binder.Vector(Name("ssm_d", "mixer.D", l), di),
                    OutProj: _binder.Matrix(Name("ssm_out.weight", "mixer.out_proj.weight", l), d, di));
            }
            _finalNorm = _binder.Vector(Name("output_norm.weight", "norm_f.weight"), d);
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
            Family: "mamba",
            ParameterCount: _binder.ParameterCount,
            ParametersByType: _binder.ParametersByType,
            ContextLength: config.ContextLength,
            VocabSize: config.VocabSize,
            LayerCount: config.LayerCount,
            HiddenSize: d,
            HeadCount: 0,
            KvHeadCount: 0,
            HeadDim: 0,
            FeedForwardSize: di,
            TiedEmbeddings: ReferenceEquals(_output, _embedding),
            SourceFormat: sourceFormat);
    }

    /// <summary>Binds a GGUF file's tensors (llama.cpp's names) and owns the file from then on.</summary>
    public static MambaModel FromGguf(GgufFile file, WorkerPool? pool = null) =>
        new(file, MambaConfig.FromGguf(file), file.Architecture ?? "mamba", "gguf", pool, huggingFace: false);

    /// <summary>Binds a Hugging Face folder's tensors (transformers' names) and owns the files from then on.</summary>
    public static MambaModel FromHuggingFace(SafeTensorsModel weights, HuggingFaceConfig config, WorkerPool? pool = null) =>
        new(weights, MambaConfig.FromHuggingFace(config), config.ModelType ?? "mamba", "huggingface", pool, huggingFace: true);

    /// <summary>"backbone." when the checkpoint was saved from MambaForCausalLM, "" when from the bare MambaModel.</summary>
    private static string HuggingFacePrefix(IWeightSource source) =>
        source.Find("backbone.embeddings.weight") is not null ? "backbone." : "";

    public override ModelInfo Info { get; }

    public MambaConfig Config => _config;

    public override SequenceState CreateCache(int contextSize) => new MambaState(_config, contextSize);

    public override void Forward(SequenceState state, ReadOnlySpan<int> tokens, Span<float> logits, bool allPositions)
    {
        int vocab = _config.VocabSize;
        var own = OwnState(state);
        CheckFeed(own, tokens);
        if (logits.Length < (allPositions ? tokens.Length * vocab : vocab))
            throw new ArgumentException("logits buffer too small", nameof(logits));
        lock (_forwardLock)
        {
            for (int start = 0; start < tokens.Length; start += MaxBatch)
            {
                int count = Math.Min(MaxBatch, tokens.Length - start);
                bool last = start + count == tokens.Length;
                ForwardChunk(own, tokens.Slice(start, count));
                if (allPositions)
                    Head(0, count, logits.Slice(start * vocab, count * vocab));
                else if (last)
                    Head(count - 1, 1, logits[..vocab]);
            }
        }
    }

    public override bool SupportsHiddenStates => true;

    /// <summary>Feeds tokens like <see cref="Forward"/> and writes each token's hidden state after the final norm.</summary>
    public override void ForwardHidden(SequenceState state, ReadOnlySpan<int> tokens, Span<float> hidden)
    {
        int d = _config.HiddenSize;
        var own = OwnState(state);
        CheckFeed(own, tokens);
        if (hidden.Length < tokens.Length * d)
            throw new ArgumentException("hidden-state buffer too small", nameof(hidden));
        lock (_forwardLock)
        {
            for (int start = 0; start < tokens.Length; start += MaxBatch)
            {
                int count = Math.Min(MaxBatch, tokens.Length - start);
                ForwardChunk(own, tokens.Slice(start, count));
                for (int t = 0; t < count; t++)
                    Normalization.RmsNorm(_x.AsSpan(t * d, d), _finalNorm, _config.NormEpsilon, hidden.Slice((start + t) * d, d));
            }
        }
    }

    private static MambaState OwnState(SequenceState state) =>
        state as MambaState ?? throw new ArgumentException($"a {state.GetType().Name} is not a Mamba state; make states with this model's CreateCache", nameof(state));

    /// <summary>Runs <paramref name="tokens"/> through every layer, leaving their residual streams in _x, and advances the state.</summary>
    private void ForwardChunk(MambaState state, ReadOnlySpan<int> tokens)
    {
        var c = _config;
        int n = tokens.Length, d = c.HiddenSize, di = c.InnerSize, ds = c.StateSize, rank = c.TimeStepRank;
        EnsureScratch(n);
        if (state.Length == 0)
            state.Clear();
        for (int t = 0; t < n; t++)
            Embeddings.Lookup(_embedding, tokens[t], _x.AsSpan(t * d, d));

        for (int l = 0; l < c.LayerCount; l++)
        {
            var layer = _layers[l];
            for (int t = 0; t < n; t++)
                Normalization.RmsNorm(_x.AsSpan(t * d, d), layer.Norm, c.NormEpsilon, _normed.AsSpan(t * d, d));
            MatMul.Multiply(_pool, _normed, n, layer.InProj, _xz);
            Convolve(layer, state.Conv(l), n);
            MatMul.Multiply(_pool, _u, n, layer.XProj, _projected);
            int projected = rank + 2 * ds;
            for (int t = 0; t < n; t++)
                _projected.AsSpan(t * projected, rank).CopyTo(_steps.AsSpan(t * rank, rank));
            MatMul.Multiply(_pool, _steps, n, layer.DtProj, _delta);
            for (int t = 0; t < n; t++)
            {
                var delta = _delta.AsSpan(t * di, di);
                TensorPrimitives.Add(delta, layer.DtBias, delta);
                Softplus(delta);
            }
            Scan(layer, state.Scan(l), n);
            MatMul.Multiply(_pool, _y, n, layer.OutProj, _out);
            TensorPrimitives.Add(_x.AsSpan(0, n * d), _out.AsSpan(0, n * d), _x.AsSpan(0, n * d));
        }
        state.Length += n;
    }

    /// <summary>
    /// u = SiLU(bias + Σₖ w[·, k] · input[t − (width − 1) + k]) per channel, over the u half of in_proj's output; the
    /// inputs before this chunk come from the state, which keeps the last width − 1 afterwards.
    /// </summary>
    private void Convolve(Layer layer, float[] history, int n)
    {
        int di = _config.InnerSize, width = _config.ConvKernel, kept = width - 1;
        // Input j of the window at token t: history row (t + j) while t + j < kept, else token t + j − kept.
        for (int t = 0; t < n; t++)
        {
            var u = _u.AsSpan(t * di, di);
            layer.ConvBias.CopyTo(u);
            for (int j = 0; j < width; j++)
            {
                int at = t + j;
                ReadOnlySpan<float> input = at < kept ? history.AsSpan(at * di, di) : _xz.AsSpan((at - kept) * 2 * di, di);
                for (int i = 0; i < di; i++)
                    u[i] += layer.ConvWeight[i * width + j] * input[i];
            }
            Activations.Apply(ActivationKind.Silu, u);
        }
        // The last width − 1 inputs: from this chunk where it is long enough, else the older history shifted along.
        for (int r = 0; r < kept; r++)
        {
            int at = n + r; // window row r after the chunk, in the same numbering as above
            if (at < kept)
                history.AsSpan(at * di, di).CopyTo(history.AsSpan(r * di, di));
            else
                _xz.AsSpan((at - kept) * 2 * di, di).CopyTo(history.AsSpan(r * di, di));
        }
    }

    /// <summary>softplus(x) = ln(1 + eˣ), taken as x above 20 (transformers' and llama.cpp's threshold).</summary>
    private static void Softplus(Span<float> values)
    {
        foreach (ref float v in values)
            v = v > 20f ? v : MathF.Log(1f + MathF.Exp(v));
    }

    /// <summary>The selective scan over the chunk's tokens in order, then y ⊙ SiLU(z).</summary>
    private void Scan(Layer layer, float[] s, int n)
    {
        var c = _config;
        int di = c.InnerSize, ds = c.StateSize, projected = c.TimeStepRank + 2 * ds;
        var decay = _decay.AsSpan(0, di * ds);
        for (int t = 0; t < n; t++)
        {
            var delta = _delta.AsSpan(t * di, di);
            var u = _u.AsSpan(t * di, di);
            var b = _projected.AsSpan(t * projected + c.TimeStepRank, ds);
            var cs = _projected.AsSpan(t * projected + c.TimeStepRank + ds, ds);
            var y = _y.AsSpan(t * di, di);
            if (Vector256.IsHardwareAccelerated && ds % Vector256<float>.Count == 0)
            {
                ScanStep256(layer, s, delta, u, b, cs, y);
            }
            else
            {
                for (int i = 0; i < di; i++)
                    TensorPrimitives.Multiply(layer.A.AsSpan(i * ds, ds), delta[i], decay.Slice(i * ds, ds));
                TensorPrimitives.Exp(decay, decay);
                for (int i = 0; i < di; i++)
                {
                    var si = s.AsSpan(i * ds, ds);
                    float input = delta[i] * u[i];
                    // sᵢ ← exp(Δᵢ·Aᵢ) ⊙ sᵢ + (Δᵢ·uᵢ)·B
                    TensorPrimitives.Multiply(si, decay.Slice(i * ds, ds), si);
                    TensorPrimitives.MultiplyAdd(b, input, si, si);
                    y[i] = TensorPrimitives.Dot(si, cs) + layer.D[i] * u[i];
                }
            }
            var z = _xz.AsSpan(t * 2 * di + di, di);
            for (int i = 0; i < di; i++)
                y[i] *= z[i] / (1f + MathF.Exp(-z[i]));
        }
    }

    /// <summary>
    /// One token's scan with each channel's state (a multiple of eight entries; Mamba's 16) in 256-bit vectors:
    /// sᵢ ← exp(Δᵢ·Aᵢ) ⊙ sᵢ + (Δᵢ·uᵢ)·B and yᵢ = C·sᵢ + Dᵢ·uᵢ in one pass over the state, where the general path makes
    /// three library calls per channel.
    /// </summary>
    private void ScanStep256(Layer layer, float[] s, ReadOnlySpan<float> delta, ReadOnlySpan<float> u, ReadOnlySpan<float> b, ReadOnlySpan<float> c, Span<float> y)
    {
        int di = _config.InnerSize, ds = _config.StateSize, width = Vector256<float>.Count;
        ref float a0 = ref MemoryMarshal.GetArrayDataReference(layer.A);
        ref float s0 = ref MemoryMarshal.GetArrayDataReference(s);
        ref float b0 = ref MemoryMarshal.GetReference(b);
        ref float c0 = ref MemoryMarshal.GetReference(c);
        for (int i = 0; i < di; i++)
        {
            var step = Vector256.Create(delta[i]);
            var input = Vector256.Create(delta[i] * u[i]);
            var sum = Vector256<float>.Zero;
            nuint row = (nuint)(i * ds);
            for (nuint k = 0; k < (nuint)ds; k += (nuint)width)
            {
                var state = Vector256.LoadUnsafe(ref s0, row + k);
                state = Vector256.Exp(Vector256.LoadUnsafe(ref a0, row + k) * step) * state + Vector256.LoadUnsafe(ref b0, k) * input;
                state.StoreUnsafe(ref s0, row + k);
                sum += state * Vector256.LoadUnsafe(ref c0, k);
            }
            y[i] = Vector256.Sum(sum) + layer.D[i] * u[i];
        }
    }

    /// <summary>Logits of <paramref name="count"/> tokens from <paramref name="first"/> on: final norm, then the head.</summary>
    private void Head(int first, int count, Span<float> logits)
    {
        int d = _config.HiddenSize;
        for (int t = 0; t < count; t++)
            Normalization.RmsNorm(_x.AsSpan((first + t) * d, d), _finalNorm, _config.NormEpsilon, _normed.AsSpan(t * d, d));
        MatMul.Multiply(_pool, _normed, count, _output, logits);
    }

    private void EnsureScratch(int tokens)
    {
        if (tokens <= _scratchTokens)
            return;
        var c = _config;
        int n = Math.Max(tokens, Math.Min(MaxBatch, 2 * _scratchTokens)), d = c.HiddenSize, di = c.InnerSize, ds = c.StateSize;
        _x = new float[n * d];
        _normed = new float[n * d];
        _xz = new float[n * 2 * di];
        _u = new float[n * di];
        _projected = new float[n * (c.TimeStepRank + 2 * ds)];
        _steps = new float[n * c.TimeStepRank];
        _delta = new float[n * di];
        _y = new float[n * di];
        _out = new float[n * d];
        _decay = new float[di * ds];
        _scratchTokens = n;
    }

    public override void Dispose()
    {
        _binder.Dispose();
        _source.Dispose();
        base.Dispose();
    }
}
