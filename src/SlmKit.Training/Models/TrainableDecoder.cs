using System.Globalization;
using System.Numerics;
using SlmKit.Kernels;
using SlmKit.Models;

namespace SlmKit.Training;

/// <summary>
/// The runtime's decoder (<see cref="DecoderModel"/>) run on a <see cref="Tape{T}"/>: built from the same
/// <see cref="DecoderConfig"/> a family file produces, it interprets that config's choices with tape operations, so the
/// architecture trained is the one the runtime runs. Per block, with the Llama choices: x += Wo·Attn(RoPE(Wq·n),
/// RoPE(Wk·n), Wv·n) with n = norm(x); x += Wdown·(silu(Wgate·m) ⊙ Wup·m) with m = norm(x); then logits =
/// Wout·norm(x). Other choices: LayerNorm (with or without bias), biases on q/k/v, the attention output, the MLP and
/// the head, an ungated MLP with any runtime activation, learned absolute positions, half-split and partial rotary
/// embeddings, parallel residuals, no final norm. Every other choice is refused by <see cref="EnsureTrainable"/>.
/// Parameters carry the runtime's GGUF tensor names and shapes (<see cref="DecoderWeights"/> binds them unchanged).
/// <para>
/// One forward pass serves training and evaluation: <see cref="Loss"/> records it and runs backward,
/// <see cref="EvaluateLoss"/> and <see cref="Logits"/> run it with <see cref="Tape{T}.Recording"/> off.
/// </para>
/// </summary>
/// <typeparam name="T">float to train; double for gradient checks.</typeparam>
public sealed class TrainableDecoder<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Targets with this value do not count in the loss.</summary>
    public const int IgnoreIndex = -1;

    private readonly Parameter<T> _tokenEmbedding;
    private readonly Parameter<T>? _positionEmbedding;
    private readonly Norm? _finalNorm;
    private readonly Linear _head;
    private readonly Block[] _blocks;
    private readonly Parameter<T>[] _parameters;
    private readonly Dictionary<string, Parameter<T>> _byName = [];
    private readonly T _epsilon;

    /// <summary>
    /// Builds the model for <paramref name="config"/> (refused with a <see cref="SlmKitException"/> naming the choice
    /// when it cannot be trained) and initialises it like llama2.c/nanoGPT from <paramref name="seed"/>: every matrix,
    /// the token and position embeddings ~ N(0, 0.02²), the residual projections (attn_output, ffn_down) with standard
    /// deviation 0.02/√(2·layers), norm weights at 1, biases at 0. The same seed gives the same weights.
    /// </summary>
    public TrainableDecoder(DecoderConfig config, ulong seed, int threadCount = 0)
    {
        EnsureTrainable(config);
        Config = config;
        Tape = new Tape<T>(threadCount);
        _epsilon = T.CreateChecked(config.NormEpsilon);
        int d = config.HiddenSize, headDim = config.ResolvedHeadDim;
        int qWidth = config.HeadCount * headDim, kvWidth = config.KvHeadCount * headDim, ffn = config.FeedForwardSize;

        var list = new List<Parameter<T>>();
        Parameter<T> Add(string name, ParameterKind kind, params int[] shape)
        {
            var p = new Parameter<T>(name, shape, kind);
            list.Add(p);
            _byName.Add(name, p);
            return p;
        }
        Norm NewNorm(string stem) =>
            new(Add(stem + ".weight", ParameterKind.Norm, d), config.NormHasBias ? Add(stem + ".bias", ParameterKind.Bias, d) : null);
        Linear NewLinear(string stem, int outputs, int inputs, bool bias) =>
            new(Add(stem + ".weight", ParameterKind.Weight, outputs, inputs), bias ? Add(stem + ".bias", ParameterKind.Bias, outputs) : null);

        _tokenEmbedding = Add("token_embd.weight", ParameterKind.Embedding, config.VocabSize, d);
        if (config.Positions == PositionKind.Learned)
            _positionEmbedding = Add("position_embd.weight", ParameterKind.Embedding, config.ContextLength + config.PositionOffset, d);
        _blocks = new Block[config.LayerCount];
        for (int i = 0; i < config.LayerCount; i++)
        {
            string b = string.Create(CultureInfo.InvariantCulture, $"blk.{i}.");
            _blocks[i] = new Block(
                NewNorm(b + "attn_norm"),
                NewLinear(b + "attn_q", qWidth, d, config.QkvBias),
                NewLinear(b + "attn_k", kvWidth, d, config.QkvBias),
                NewLinear(b + "attn_v", kvWidth, d, config.QkvBias),
                NewLinear(b + "attn_output", d, qWidth, config.AttentionOutputBias),
                config.Residual == ResidualKind.ParallelSharedNorm ? null : NewNorm(b + "ffn_norm"),
                config.GatedFeedForward ? NewLinear(b + "ffn_gate", ffn, d, config.FeedForwardBias) : null,
                NewLinear(b + "ffn_up", ffn, d, config.FeedForwardBias),
                NewLinear(b + "ffn_down", d, ffn, config.FeedForwardBias));
        }
        if (config.FinalNorm)
            _finalNorm = NewNorm("output_norm");
        // As DecoderWeights binds it: a tied head is the token embedding itself, and has no bias.
        _head = config.TiedEmbeddings
            ? new Linear(_tokenEmbedding, null)
            : NewLinear("output", config.VocabSize, d, config.HeadBias);
        _parameters = [.. list];
        Initialize(seed);
    }

    /// <summary>The architecture: the runtime's config of choices and sizes.</summary>
    public DecoderConfig Config { get; }

    /// <summary>The tape the forward pass records on (its <see cref="Tape{T}.PeakBytes"/> is the activation memory).</summary>
    public Tape<T> Tape { get; }

    /// <summary>
    /// Every parameter, named as GGUF names it: token_embd, position_embd (learned positions), blk.0 … blk.N-1 (norms,
    /// q, k, v, output, MLP, each weight followed by its bias), output_norm, output (when untied).
    /// </summary>
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

    /// <summary>
    /// Throws a <see cref="SlmKitException"/> naming the first <see cref="DecoderConfig"/> choice the tape cannot run
    /// (so no config silently trains as a different architecture), or the first impossible size.
    /// </summary>
    public static void EnsureTrainable(DecoderConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        try
        {
            config.Validate("model config");
        }
        catch (ModelFileException e)
        {
            throw new SlmKitException(e.Problem);
        }
        void Refuse(bool unsupported, string choice)
        {
            if (unsupported)
                throw new SlmKitException($"the decoder choice {choice} cannot be trained yet");
        }

        Refuse(!config.NormHasWeight, "NormHasWeight = false (parameter-free norms)");
        Refuse(config.Norm == NormKind.RmsNorm && config.NormHasBias, "NormHasBias = true with RmsNorm");
        Refuse(!config.PreNorms, "PreNorms = false (OLMo 2's reordered norms)");
        Refuse(config.PostNorms, "PostNorms = true (Gemma 2 post-branch norms)");
        Refuse(config.EmbeddingNorm, "EmbeddingNorm = true");
        Refuse(config.PostLayerNorm, "PostLayerNorm = true (post-norm blocks)");
        Refuse(config.ResidualScale != 1f, $"ResidualScale = {config.ResidualScale}");
        Refuse(config.QkNorm, "QkNorm = true");
        Refuse(config.AttentionScale is { } scale && scale != 1f / MathF.Sqrt(config.ResolvedHeadDim), $"AttentionScale = {config.AttentionScale} (only 1/√head size)");
        Refuse(config.AttentionSoftCap != 0, $"AttentionSoftCap = {config.AttentionSoftCap}");
        Refuse(config.ClipQkv != 0, $"ClipQkv = {config.ClipQkv}");
        Refuse(config.SlidingWindow != 0, $"SlidingWindow = {config.SlidingWindow}");
        Refuse(config.SlidingRopeTheta != 0, $"SlidingRopeTheta = {config.SlidingRopeTheta}");
        Refuse(config.NoRopeLayers?.Contains(true) == true, "NoRopeLayers (layers without rotary positions)");
        Refuse(config.Positions is not (PositionKind.Rope or PositionKind.Learned), $"Positions = {config.Positions} (only Rope and Learned)");
        Refuse(config.Positions == PositionKind.Rope && config.PositionOffset != 0, $"PositionOffset = {config.PositionOffset} with rotary positions");
        Refuse(config.Positions == PositionKind.Rope && config.RopeScaling is not null, $"RopeScaling = {config.RopeScaling?.Type}");
        Refuse(config.GatedFeedForward && config.Activation != ActivationKind.Silu, $"Activation = {config.Activation} in a gated MLP (only Silu: SwiGLU)");
        Refuse(config.ProjectsEmbeddings, $"EmbeddingSize = {config.EmbeddingSize} (embedding projections)");
        Refuse(config.EmbeddingScale != 1f, $"EmbeddingScale = {config.EmbeddingScale}");
        Refuse(config.LogitScale != 1f, $"LogitScale = {config.LogitScale}");
        Refuse(config.FinalLogitSoftCap != 0, $"FinalLogitSoftCap = {config.FinalLogitSoftCap}");
        Refuse(config.LayerHeadCounts is not null || config.LayerKvHeadCounts is not null || config.LayerFeedForwardSizes is not null,
            "LayerHeadCounts / LayerKvHeadCounts / LayerFeedForwardSizes (per-layer shapes)");

        if (!(config.NormEpsilon > 0))
            throw new SlmKitException($"norm epsilon must be positive (got {config.NormEpsilon})");
        if (config.Positions == PositionKind.Rope && !(config.RopeTheta > 0))
            throw new SlmKitException($"rope theta must be positive (got {config.RopeTheta})");
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
        CheckTargets(tokens, targets, batch, seq);
        Tape.Reset();
        Variable<T> loss = Tape.CrossEntropy(Forward(tokens, batch, seq), targets, IgnoreIndex);
        Tape.Backward(loss, [T.CreateChecked(gradientScale)]);
        T value = loss.Value[0];
        Tape.Reset();
        return value;
    }

    /// <summary>The same loss as <see cref="Loss"/> from the same forward pass, run without recording; gradients are untouched.</summary>
    public T EvaluateLoss(int[] tokens, int[] targets, int batch, int seq)
    {
        CheckTargets(tokens, targets, batch, seq);
        return WithoutRecording(() => Tape.CrossEntropy(Forward(tokens, batch, seq), targets, IgnoreIndex).Value[0]);
    }

    /// <summary>The logits of every position, [batch·seq, vocab] row-major, from the same forward pass run without recording.</summary>
    public T[] Logits(int[] tokens, int batch, int seq)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (batch <= 0 || seq <= 0 || tokens.Length != batch * seq)
            throw new SlmKitException($"expected {batch}×{seq} tokens, got {tokens.Length}");
        return WithoutRecording(() => (T[])Forward(tokens, batch, seq).Value.Clone());
    }

    private TResult WithoutRecording<TResult>(Func<TResult> run)
    {
        bool recording = Tape.Recording;
        Tape.Reset();
        Tape.Recording = false;
        try
        {
            return run();
        }
        finally
        {
            Tape.Recording = recording;
            Tape.Reset();
        }
    }

    private static void CheckTargets(int[] tokens, int[] targets, int batch, int seq)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(targets);
        if (batch <= 0 || seq <= 0 || tokens.Length != batch * seq || targets.Length != batch * seq)
            throw new SlmKitException($"expected {batch}×{seq} tokens and targets, got {tokens.Length} tokens and {targets.Length} targets");
    }

    /// <summary>The forward pass to the logits [batch·seq, vocab], on the tape (recorded or not, as the tape says).</summary>
    private Variable<T> Forward(int[] tokens, int batch, int seq)
    {
        DecoderConfig c = Config;
        Tape<T> tape = Tape;
        Variable<T> x = tape.Embedding(_tokenEmbedding.Variable, tokens);
        if (_positionEmbedding is not null)
        {
            if (seq > c.ContextLength)
                throw new SlmKitException($"sequences of {seq} tokens exceed the {c.ContextLength} learned positions of this model");
            var positions = new int[batch * seq];
            for (int r = 0; r < positions.Length; r++)
                positions[r] = r % seq + c.PositionOffset;
            x = tape.Add(x, tape.Embedding(_positionEmbedding.Variable, positions));
        }

        foreach (Block block in _blocks)
        {
            Variable<T> h = Normalize(x, block.AttentionNorm);
            Variable<T> attention = Attention(h, block, batch, seq);
            switch (c.Residual)
            {
                case ResidualKind.Sequential:
                    x = tape.Add(x, attention);
                    x = tape.Add(x, FeedForward(Normalize(x, block.FeedForwardNorm!), block));
                    break;
                case ResidualKind.ParallelSharedNorm:
                    x = tape.Add(tape.Add(x, attention), FeedForward(h, block));
                    break;
                case ResidualKind.ParallelTwoNorms:
                    x = tape.Add(tape.Add(x, attention), FeedForward(Normalize(x, block.FeedForwardNorm!), block));
                    break;
            }
        }
        Variable<T> final = _finalNorm is null ? x : Normalize(x, _finalNorm);
        return Project(final, _head);
    }

    private Variable<T> Attention(Variable<T> h, Block block, int batch, int seq)
    {
        DecoderConfig c = Config;
        Variable<T> q = Project(h, block.Query);
        if (c.Positions == PositionKind.Rope)
            q = Tape.Rope(q, seq, c.ResolvedHeadDim, c.ResolvedRotaryDim, c.RopeTheta, c.RopeLayout);
        Variable<T> k = Project(h, block.Key);
        if (c.Positions == PositionKind.Rope)
            k = Tape.Rope(k, seq, c.ResolvedHeadDim, c.ResolvedRotaryDim, c.RopeTheta, c.RopeLayout);
        Variable<T> v = Project(h, block.Value);
        Variable<T> attention = Tape.CausalSelfAttention(q, k, v, batch, seq, c.HeadCount, c.KvHeadCount);
        return Project(attention, block.AttentionOutput);
    }

    private Variable<T> FeedForward(Variable<T> h, Block block)
    {
        Variable<T> hidden = block.Gate is { } gate
            ? Tape.SwiGlu(Project(h, gate), Project(h, block.Up))
            : Tape.Activation(Project(h, block.Up), Config.Activation);
        return Project(hidden, block.Down);
    }

    private Variable<T> Project(Variable<T> x, Linear linear)
    {
        Variable<T> y = Tape.MatMul(x, linear.Weight.Variable);
        return linear.Bias is null ? y : Tape.AddBias(y, linear.Bias.Variable);
    }

    private Variable<T> Normalize(Variable<T> x, Norm norm) =>
        Config.Norm == NormKind.RmsNorm
            ? Tape.RmsNorm(x, norm.Weight.Variable, _epsilon)
            : Tape.LayerNorm(x, norm.Weight.Variable, norm.Bias?.Variable, _epsilon);

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
            if (p.Kind == ParameterKind.Bias)
                continue; // zero, as Parameter creates it
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

    private sealed record Norm(Parameter<T> Weight, Parameter<T>? Bias);

    private sealed record Linear(Parameter<T> Weight, Parameter<T>? Bias);

    private sealed record Block(
        Norm AttentionNorm, Linear Query, Linear Key, Linear Value, Linear AttentionOutput,
        Norm? FeedForwardNorm, Linear? Gate, Linear Up, Linear Down);
}
