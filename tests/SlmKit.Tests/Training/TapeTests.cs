using SlmKit.Training;

namespace SlmKit.Tests.Training;

public sealed class TapeTests
{
    [Fact]
    public void A_leaf_gradient_survives_the_reset_that_recycles_activations()
    {
        var tape = new Tape<float>(1);
        var x = Tape<float>.Leaf([1, 2, 3], [3], requiresGrad: true);
        tape.Backward(tape.Add(x, x), [1, 1, 1]);
        float[] grad = x.Grad!;
        tape.Reset();
        // Same length as the leaf: the pool would hand a recycled gradient array straight back.
        var other = Tape<float>.Leaf([5, 6, 7], [3], requiresGrad: true);
        tape.Backward(tape.Add(other, other), [3, 3, 3]);
        Assert.Same(grad, x.Grad);
        Assert.Equal([2f, 2f, 2f], x.Grad!);
    }

    [Fact]
    public void Backward_accumulates_into_existing_gradients()
    {
        var tape = new Tape<double>(1);
        var x = Tape<double>.Leaf([1, 2], [2], requiresGrad: true);
        tape.Backward(tape.Add(x, x), [1, 1]);
        tape.Reset();
        tape.Backward(tape.Add(x, x), [0.5, 0.5]);
        Assert.Equal([3.0, 3.0], x.Grad!);
    }

    [Fact]
    public void Shape_mismatches_and_bad_ids_are_refused_with_a_message()
    {
        var tape = new Tape<float>(1);
        var x = Tape<float>.Leaf(new float[6], [2, 3], requiresGrad: false);
        var w = Tape<float>.Leaf(new float[8], [2, 4], requiresGrad: false);
        Assert.Contains("cannot multiply", Assert.Throws<ArgumentException>(() => tape.MatMul(x, w)).Message);
        var table = Tape<float>.Leaf(new float[6], [3, 2], requiresGrad: true);
        Assert.Contains("outside the vocabulary", Assert.Throws<SlmKitException>(() => tape.Embedding(table, [0, 3])).Message);
        Assert.Contains("outside the vocabulary", Assert.Throws<SlmKitException>(() => tape.CrossEntropy(x, [0, 7])).Message);
    }
}
