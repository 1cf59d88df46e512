using System.Numerics;

namespace SlmKit.Training;

/// <summary>
/// A Llama-family decoder whose forward pass records on a <see cref="Tape{T}"/>: token embedding, per block
/// RMSNorm → q/k/v → RoPE (adjacent pairs) → causal grouped-query attention → output projection → residual,
/// RMSNorm → SwiGLU → down projection → residual; final RMSNorm and the output projection. Parameter names and
/// shapes are the runtime's GGUF ones, so exported weights load there unchanged.
/// </summary>
/// <typeparam name="T">float to train; double for gradient checks.</typeparam>
public sealed class TrainableLlama<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Targets with this value do not count in the loss.</summary>
    public const int IgnoreIndex = -1;

    private readonly Parameter<T> _tokenEmbedding;
    private readonly Parameter<T> _outputNorm;
    private readonly Parameter<T>? _output;
    private readonly Block[] _blocks;
    private readonly Parameter<T>[] _parameters;
    private readonly Dictionary<string, Parameter<T>> _byName = [];
    private readonly T _epsilon;

    /// <summary>
    /// Builds the model and initialises it like llama2.c/nanoGPT from <paramref name="seed"/>: every matrix and the
    /// embedding ~ N(0, 0.02²), the residual projections (attn_output, ffn_down) with standard deviation
    /// 0.02/√(2·layers), norms at 1. The same seed gives the same weights.
    /// </summary>
    public TrainableLlama(LlamaTrainingConfig config, ulong seed, int threadCount = 0)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        Tape = new Tape<T>(threadCount);
        _epsilon = T.CreateChecked(config.NormEpsilon);
        int dim = config.Dim, kvWidth = config.KvHeadCount * config.HeadDim;

        var list = new List<Parameter<T>>();
        Parameter<T> Add(string name, ParameterKind kind, params int[] shape)
        {
            var p = new Parameter<T>(name, shape, kind);
            list.Add(p);
            _byName.Add(name, p);
            return p;
        }

        _tokenEmbedding = Add("token_embd.weight", ParameterKind.Embedding, config.VocabSize, dim);
        _blocks = new Block[config.LayerCount];
        for (int i = 0; i < config.LayerCount; i++)
        {
            string prefix = $"blk.{i}.";
            _blocks[i] = new Block(
                Add(prefix + "attn_norm.weight", ParameterKind.Norm, dim),
                Add(prefix + "attn_q.weight", ParameterKind.Weight, config.HeadCount * config.HeadDim, dim),
                Add(prefix + "attn_k.weight", ParameterKind.Weight, kvWidth, dim),
                Add(prefix + "attn_v.weight", ParameterKind.Weight, kvWidth, dim),
                Add(prefix + "attn_output.weight", ParameterKind.Weight, dim, config.HeadCount * config.HeadDim),
                Add(prefix + "ffn_norm.weight", ParameterKind.Norm, dim),
                Add(prefix + "ffn_gate.weight", ParameterKind.Weight, config.FfnDim, dim),
                Add(prefix + "ffn_up.weight", ParameterKind.Weight, config.FfnDim, dim),
                Add(prefix + "ffn_down.weight", ParameterKind.Weight, dim, config.FfnDim));
        }
        _outputNorm = Add("output_norm.weight", ParameterKind.Norm, dim);
        if (!config.TiedEmbeddings)
            _output = Add("output.weight", ParameterKind.Weight, config.VocabSize, dim);
        _parameters = [.. list];
        Initialize(seed);
    }

    /// <summary>The model's shape.</summary>
    public LlamaTrainingConfig Config { get; }

    /// <summary>The tape the forward pass records on (its <see cref="Tape{T}.PeakBytes"/> is the activation memory).</summary>
    public Tape<T> Tape { get; }

    /// <summary>Every parameter in GGUF order: token_embd, blk.0 … blk.N-1, output_norm, output (when untied).</summary>
    public IReadOnlyList<Parameter<T>> Parameters => _parameters;

    /// <summary>The parameter called <paramref name="name"/>, or null.</summary>
    public Parameter<T>? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>Total number of trainable values.</summary>
    public long ParameterCount
    {
        get
        {
            long total = 0;
            foreach (Parameter<T> p in _parameters)
                total += p.Value.Length;
            return total;
        }
    }

    /// <summary>Sets every parameter's gradient to zero (before a step's first micro-batch).</summary>
    public void ZeroGradients()
    {
        foreach (Parameter<T> p in _parameters)
            Array.Clear(p.Grad);
    }

    /// <summary>
    /// Mean next-token cross-entropy of <paramref name="batch"/> sequences of <paramref name="seq"/> tokens
    /// (row-major [batch, seq]) against <paramref name="targets"/> (same layout; <see cref="IgnoreIndex"/> skips a
    /// position), followed by backward: every parameter's gradient grows by <paramref name="gradientScale"/> × the
    /// loss gradient (use 1/micro-batches when accumulating).
    /// </summary>
    public T Loss(int[] tokens, int[] targets, int batch, int seq, double gradientScale = 1.0)
    {
        Variable<T> loss = Forward(tokens, targets, batch, seq);
        Tape.Backward(loss, [T.CreateChecked(gradientScale)]);
        T value = loss.Value[0];
        Tape.Reset();
        return value;
    }

    /// <summary>The same loss as <see cref="Loss"/> without the backward pass; gradients are untouched.</summary>
    public T EvaluateLoss(int[] tokens, int[] targets, int batch, int seq)
    {
        T value = Forward(tokens, targets, batch, seq).Value[0];
        Tape.Reset();
        return value;
    }

    private Variable<T> Forward(int[] tokens, int[] targets, int batch, int seq)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(targets);
        if (batch <= 0 || seq <= 0 || tokens.Length != batch * seq || targets.Length != batch * seq)
            throw new SlmKitException($"expected {batch}×{seq} tokens and targets, got {tokens.Length} tokens and {targets.Length} targets");
        LlamaTrainingConfig c = Config;
        Tape<T> tape = Tape;
        tape.Reset();
        Variable<T> x = tape.Embedding(_tokenEmbedding.Variable, tokens);
        foreach (Block block in _blocks)
        {
            Variable<T> h = tape.RmsNorm(x, block.AttentionNorm.Variable, _epsilon);
            Variable<T> q = tape.Rope(tape.MatMul(h, block.Query.Variable), seq, c.HeadDim, c.RopeTheta);
            Variable<T> k = tape.Rope(tape.MatMul(h, block.Key.Variable), seq, c.HeadDim, c.RopeTheta);
            Variable<T> v = tape.MatMul(h, block.Value.Variable);
            Variable<T> attention = tape.CausalSelfAttention(q, k, v, batch, seq, c.HeadCount, c.KvHeadCount);
            x = tape.Add(x, tape.MatMul(attention, block.AttentionOutput.Variable));

            h = tape.RmsNorm(x, block.FfnNorm.Variable, _epsilon);
            Variable<T> gated = tape.SwiGlu(tape.MatMul(h, block.Gate.Variable), tape.MatMul(h, block.Up.Variable));
            x = tape.Add(x, tape.MatMul(gated, block.Down.Variable));
        }
        Variable<T> final = tape.RmsNorm(x, _outputNorm.Variable, _epsilon);
        Variable<T> logits = tape.MatMul(final, (_output ?? _tokenEmbedding).Variable);
        return tape.CrossEntropy(logits, targets, IgnoreIndex);
    }

    private void Initialize(ulong seed)
    {
        var random = new DeterministicRandom(seed);
        double residualStd = 0.02 / Math.Sqrt(2.0 * Config.LayerCount);
        foreach (Parameter<T> p in _parameters)
        {
            if (p.Kind == ParameterKind.Norm)
            {
                Array.Fill(p.Value, T.One);
                continue;
            }
            // GPT-2/nanoGPT scale down the projections that write into the residual stream so its variance
            // does not grow with depth. (llama2.c's model.py applies this to w3 (up) and wo; we follow the
            // residual-projection rule: attn_output and ffn_down.)
            bool residual = p.Name.EndsWith(".attn_output.weight", StringComparison.Ordinal) || p.Name.EndsWith(".ffn_down.weight", StringComparison.Ordinal);
            double std = residual ? residualStd : 0.02;
            T[] values = p.Value;
            for (int i = 0; i < values.Length; i++)
                values[i] = T.CreateChecked(random.NextNormal() * std);
        }
    }

    private sealed record Block(
        Parameter<T> AttentionNorm, Parameter<T> Query, Parameter<T> Key, Parameter<T> Value, Parameter<T> AttentionOutput,
        Parameter<T> FfnNorm, Parameter<T> Gate, Parameter<T> Up, Parameter<T> Down);
}
