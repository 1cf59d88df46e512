using SlmKit.Kernels;
using SlmKit.Models;
using SlmKit.Training;
using static SlmKit.Tests.Training.ReferenceOps;

namespace SlmKit.Tests.Training;

/// <summary>
/// Every differentiable operation's analytic gradient against central finite differences of an independent
/// double-precision reference forward (<see cref="ReferenceOps"/>).
/// <para>
/// Why double: a relative error of 1e-6 is below what float can resolve (a float finite difference has
/// about 1e-3 relative noise, and float analytic gradients about 1e-6). The production ops are generic over
/// <c>IFloatingPointIeee754&lt;T&gt;</c> — one source, JIT-specialised for float in training — so the very same op
/// code, instantiated for double, is checked here. The reference forward also pins the forward values.
/// </para>
/// </summary>
public sealed class GradientCheckTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-6;

    [Theory]
    [InlineData(7, 13, 11)]
    [InlineData(20, 40, 35)]
    public void MatMul(int rows, int inF, int outF)
    {
        var rng = new Random(1);
        CheckOp("MatMul", [Random(rng, rows * inF), Random(rng, outF * inF)], [[rows, inF], [outF, inF]], [true, true],
            (t, v) => t.MatMul(v[0], v[1]),
            x => ReferenceOps.MatMul(x[0], rows, inF, x[1], outF));
    }

    [Fact]
    public void RmsNorm()
    {
        var rng = new Random(2);
        CheckOp("RmsNorm", [Random(rng, 5 * 12), Random(rng, 12, 2)], [[5, 12], [12]], [true, true],
            (t, v) => t.RmsNorm(v[0], v[1], 1e-5),
            x => ReferenceOps.RmsNorm(x[0], 5, 12, x[1], 1e-5));
    }

    [Theory]
    [InlineData(10000.0)]
    [InlineData(3.0)]
    public void Rope(double theta)
    {
        var rng = new Random(3);
        // 2 sequences of 5 positions, 3 heads of 4.
        CheckOp("Rope", [Random(rng, 10 * 12)], [[10, 12]], [true],
            (t, v) => t.Rope(v[0], 5, 4, theta),
            x => ReferenceOps.Rope(x[0], 10, 12, 5, 4, theta));
    }

    [Theory]
    [InlineData(2, 5, 2, 2, 4)] // multi-head
    [InlineData(2, 6, 4, 2, 4)] // grouped-query: two query heads per key/value head
    [InlineData(1, 67, 4, 1, 2)] // longer than one 64-row block; one key/value head for all
    public void CausalSelfAttention(int batch, int seq, int heads, int kvHeads, int headDim)
    {
        var rng = new Random(4);
        int n = batch * seq, qw = heads * headDim, kw = kvHeads * headDim;
        CheckOp("Attention", [Random(rng, n * qw, 2), Random(rng, n * kw, 2), Random(rng, n * kw)], [[n, qw], [n, kw], [n, kw]], [true, true, true],
            (t, v) => t.CausalSelfAttention(v[0], v[1], v[2], batch, seq, heads, kvHeads),
            x => Attention(x[0], x[1], x[2], batch, seq, heads, kvHeads, headDim));
    }

    [Fact]
    public void SwiGlu()
    {
        var rng = new Random(5);
        CheckOp("SwiGlu", [Random(rng, 40, 4), Random(rng, 40)], [[4, 10], [4, 10]], [true, true],
            (t, v) => t.SwiGlu(v[0], v[1]),
            x => ReferenceOps.SwiGlu(x[0], x[1]));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LayerNorm(bool bias)
    {
        var rng = new Random(12);
        double[] weight = Random(rng, 12, 2), shift = Random(rng, 12);
        CheckOp("LayerNorm", bias ? [Random(rng, 5 * 12, 3), weight, shift] : [Random(rng, 5 * 12, 3), weight], bias ? [[5, 12], [12], [12]] : [[5, 12], [12]],
            bias ? [true, true, true] : [true, true],
            (t, v) => t.LayerNorm(v[0], v[1], bias ? v[2] : null, 1e-5),
            x => ReferenceOps.LayerNorm(x[0], 5, 12, x[1], bias ? x[2] : null, 1e-5));
    }

    [Fact]
    public void AddBias()
    {
        var rng = new Random(13);
        CheckOp("AddBias", [Random(rng, 6 * 7), Random(rng, 7)], [[6, 7], [7]], [true, true],
            (t, v) => t.AddBias(v[0], v[1]),
            x => ReferenceOps.AddBias(x[0], x[1]));
    }

    [Theory]
    [InlineData(ActivationKind.Silu)]
    [InlineData(ActivationKind.GeluTanh)]
    [InlineData(ActivationKind.GeluErf)]
    [InlineData(ActivationKind.Relu)]
    [InlineData(ActivationKind.SquaredRelu)]
    public void Activation(ActivationKind kind)
    {
        var rng = new Random(14);
        double[] inputs = Random(rng, 48, 4);
        // ReLU's kink at 0: keep every input at least one finite-difference step away from it.
        for (int i = 0; i < inputs.Length; i++)
            inputs[i] = Math.Abs(inputs[i]) < 1e-3 ? 0.5 : inputs[i];
        CheckOp("Activation " + kind, [inputs], [[6, 8]], [true],
            (t, v) => t.Activation(v[0], kind),
            x => ReferenceOps.Activation(x[0], kind));
    }

    [Theory]
    [InlineData(RopeLayout.Normal, 6)]
    [InlineData(RopeLayout.NeoX, 6)]
    [InlineData(RopeLayout.Normal, 4)] // partial: 4 of 6 values per head turn
    [InlineData(RopeLayout.NeoX, 2)]
    public void Rope_layouts_and_partial_rotation(RopeLayout layout, int rotaryDim)
    {
        var rng = new Random(15);
        // 2 sequences of 4 positions, 2 heads of 6.
        CheckOp("Rope " + layout, [Random(rng, 8 * 12)], [[8, 12]], [true],
            (t, v) => t.Rope(v[0], 4, 6, rotaryDim, 500.0, layout),
            x => ReferenceOps.Rope(x[0], 8, 12, 4, 6, rotaryDim, 500.0, layout == RopeLayout.NeoX));
    }

    [Fact]
    public void Add()
    {
        var rng = new Random(6);
        CheckOp("Add", [Random(rng, 24), Random(rng, 24)], [[4, 6], [4, 6]], [true, true],
            (t, v) => t.Add(v[0], v[1]),
            x => ReferenceOps.Add(x[0], x[1]));
    }

    [Fact]
    public void Embedding_accumulates_repeated_ids()
    {
        var rng = new Random(7);
        int[] ids = [3, 0, 3, 5, 3, 1];
        CheckOp("Embedding", [Random(rng, 6 * 4)], [[6, 4]], [true],
            (t, v) => t.Embedding(v[0], ids),
            x => ReferenceOps.Embedding(x[0], 4, ids));
    }

    [Fact]
    public void CrossEntropy_skips_the_ignore_index()
    {
        var rng = new Random(8);
        int[] targets = [2, -1, 0, 8, -1, 5];
        CheckOp("CrossEntropy", [Random(rng, 6 * 9, 3)], [[6, 9]], [true],
            (t, v) => t.CrossEntropy(v[0], targets),
            x => [ReferenceOps.CrossEntropy(x[0], 6, 9, targets, -1)]);
    }

    [Fact]
    public void CrossEntropy_with_every_target_ignored_is_zero_with_zero_gradient()
    {
        var tape = new Tape<double>(1);
        var logits = Tape<double>.Leaf([1, 2, 3, 4], [2, 2], requiresGrad: true);
        Variable<double> loss = tape.CrossEntropy(logits, [-1, -1]);
        tape.Backward(loss);
        Assert.Equal(0, loss.Value[0]);
        Assert.All(logits.Grad!, g => Assert.Equal(0, g));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Whole_two_layer_model(bool tied)
    {
        const int vocab = 13, dim = 8, layers = 2, heads = 2, kvHeads = 1, ffn = 12, batch = 2, seq = 5;
        var config = ModelPresets.Llama(vocab, dim, layers, heads, kvHeads, ffn, tied);
        var model = new TrainableDecoder<double>(config, seed: 11, threadCount: 2);
        // Larger weights than the 0.02 initialisation, so every nonlinearity works away from its linear regime.
        var rng = new Random(9);
        var values = new Dictionary<string, double[]>();
        foreach (Parameter<double> p in model.Parameters)
        {
            double[] v = p.Kind == ParameterKind.Norm ? Random(rng, p.Value.Length, 0.3) : Random(rng, p.Value.Length, 0.6);
            if (p.Kind == ParameterKind.Norm)
                for (int i = 0; i < v.Length; i++)
                    v[i] += 1;
            v.CopyTo(p.Value, 0);
            values[p.Name] = v;
        }
        int[] tokens = [1, 5, 12, 0, 7, 3, 3, 9, 11, 2];
        int[] targets = [5, 12, 0, 7, -1, 3, 9, 11, 2, 4];

        model.ZeroGradients();
        double loss = model.Loss(tokens, targets, batch, seq);
        double reference = LlamaLoss(values, vocab, dim, layers, heads, kvHeads, ffn, tied, tokens, targets, batch, seq, eps: config.NormEpsilon);
        Assert.True(Math.Abs(loss - reference) <= 1e-12 * Math.Abs(reference), $"loss {loss} vs reference {reference}");

        double worst = 0;
        foreach (Parameter<double> p in model.Parameters)
        {
            double[] numeric = NumericGradient(values[p.Name],
                () => LlamaLoss(values, vocab, dim, layers, heads, kvHeads, ffn, tied, tokens, targets, batch, seq, eps: config.NormEpsilon));
            double error = RelativeError(p.Grad, numeric);
            worst = Math.Max(worst, error);
            Assert.True(error <= Tolerance, $"{p.Name}: relative error {error:E2}");
        }
        output.WriteLine($"2-layer model (tied {tied}): loss {loss:F6}, worst relative gradient error {worst:E2} over {model.ParameterCount} parameters");
    }

    /// <summary>Configs with the choices beyond Llama's, each as small as a whole-model gradient check allows.</summary>
    public static TheoryData<string> Choices => [.. TrainableConfigs.Names.Where(n => n != "llama")];

    [Theory]
    [MemberData(nameof(Choices))]
    public void Whole_two_layer_model_with_other_choices(string name)
    {
        DecoderConfig config = TrainableConfigs.Get(name);
        var model = new TrainableDecoder<double>(config, seed: 11, threadCount: 2);
        var values = TrainableConfigs.Randomize(model, new Random(10));
        (int[] tokens, int[] targets) = TrainableConfigs.Batch(config.VocabSize, 2, 5);

        model.ZeroGradients();
        double loss = model.Loss(tokens, targets, 2, 5);
        double reference = DecoderLoss(values, config, tokens, targets, 2, 5);
        Assert.True(Math.Abs(loss - reference) <= 1e-12 * Math.Abs(reference), $"loss {loss} vs reference {reference}");

        double worst = 0;
        foreach (Parameter<double> p in model.Parameters)
        {
            double[] numeric = NumericGradient(values[p.Name], () => DecoderLoss(values, config, tokens, targets, 2, 5));
            if (numeric.Max(Math.Abs) < 1e-9)
            {
                // The key bias with no rotation shifts every score of a row by the same q·b: softmax ignores it, so
                // its gradient is zero and a relative error has no scale; both must be zero to rounding.
                Assert.True(p.Grad.Max(Math.Abs) < 1e-9, $"{name} {p.Name}: gradient {p.Grad.Max(Math.Abs):E2} where the loss does not depend on it");
                continue;
            }
            double error = RelativeError(p.Grad, numeric);
            worst = Math.Max(worst, error);
            Assert.True(error <= Tolerance, $"{name} {p.Name}: relative error {error:E2}");
        }
        output.WriteLine($"{name}: loss {loss:F6}, worst relative gradient error {worst:E2} over {model.ParameterCount} parameters");
    }

    [Fact]
    public void Gradient_accumulation_over_micro_batches_equals_one_batch()
    {
        var config = ModelPresets.Llama(11, 8, 1, 2, 2, 16);
        var whole = new TrainableDecoder<double>(config, seed: 5, threadCount: 2);
        var split = new TrainableDecoder<double>(config, seed: 5, threadCount: 2);
        int[] tokens = [1, 2, 3, 4, 5, 6, 7, 8];
        int[] targets = [2, 3, 4, 5, 6, 7, 8, 9];
        whole.ZeroGradients();
        whole.Loss(tokens, targets, 2, 4);
        split.ZeroGradients();
        split.Loss(tokens[..4], targets[..4], 1, 4, gradientScale: 0.5);
        split.Loss(tokens[4..], targets[4..], 1, 4, gradientScale: 0.5);
        for (int i = 0; i < whole.Parameters.Count; i++)
            Assert.True(RelativeError(split.Parameters[i].Grad, whole.Parameters[i].Grad) <= 1e-12, whole.Parameters[i].Name);
    }

    private void CheckOp(
        string name, double[][] inputs, int[][] shapes, bool[] differentiable,
        Func<Tape<double>, Variable<double>[], Variable<double>> op, Func<double[][], double[]> reference)
    {
        var tape = new Tape<double>(2);
        var variables = new Variable<double>[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
            variables[i] = Tape<double>.Leaf((double[])inputs[i].Clone(), shapes[i], differentiable[i]);
        Variable<double> y = op(tape, variables);

        double[] expected = reference(inputs);
        Assert.Equal(expected.Length, y.Length);
        double forwardError = RelativeError(y.Value, expected);
        Assert.True(forwardError <= 1e-12, $"{name} forward: relative error {forwardError:E2}");

        double[] seed = Random(new Random(100), y.Length);
        tape.Backward(y, seed);
        for (int i = 0; i < inputs.Length; i++)
        {
            if (!differentiable[i])
                continue;
            double[] numeric = NumericGradient(inputs[i], () => Project(reference(inputs), seed));
            double error = RelativeError(variables[i].Grad!, numeric);
            output.WriteLine($"{name} d/d input {i}: relative error {error:E2}");
            Assert.True(error <= Tolerance, $"{name} d/d input {i}: relative error {error:E2}");
        }
    }
}
