using System.Numerics;

namespace SlmKit.Training;

/// <summary>
/// Reverse-mode automatic differentiation: each operation computes its output at once and records a closure
/// that, run in reverse order by <see cref="Backward(Variable{T})"/>, adds its inputs' gradients. Operations save
/// only what their backward needs. Output and gradient arrays are borrowed from a pool the tape keeps by
/// length, so after the first step a training loop allocates no large arrays.
/// </summary>
/// <typeparam name="T">float for training; double lets tests check gradients against finite differences to 1e-6.</typeparam>
/// <remarks>A tape is used by one thread at a time; its operations use up to <see cref="ThreadCount"/> threads inside.</remarks>
public sealed partial class Tape<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly List<Action> _backward = [];
    private readonly List<T[]> _borrowed = [];
    private readonly Dictionary<int, Stack<T[]>> _free = [];
    private long _borrowedBytes;

    /// <summary>Creates a tape whose operations run on <paramref name="threadCount"/> threads (0: one per core).</summary>
    public Tape(int threadCount = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threadCount);
        ThreadCount = threadCount == 0 ? Environment.ProcessorCount : threadCount;
    }

    /// <summary>Threads each operation may use.</summary>
    public int ThreadCount { get; }

    /// <summary>
    /// True (the default) while operations record how to run backward. When false the same operations only compute
    /// their outputs: nothing is recorded, no output requires a gradient, and <see cref="Backward(Variable{T})"/> has
    /// nothing to do. Evaluation runs the training forward pass this way, so it is the same code with no tape.
    /// </summary>
    public bool Recording { get; set; } = true;

    /// <summary>The most bytes of activations and gradients the tape has held at once.</summary>
    public long PeakBytes { get; private set; }

    /// <summary>Bytes of activations and gradients currently borrowed from the pool.</summary>
    public long BorrowedBytes => _borrowedBytes;

    /// <summary>A leaf tensor holding <paramref name="values"/> (not copied).</summary>
    public static Variable<T> Leaf(T[] values, int[] shape, bool requiresGrad) => new(values, shape, requiresGrad);

    /// <summary>Forgets every recorded operation and takes back every borrowed array; variables made since the last reset become invalid.</summary>
    public void Reset()
    {
        _backward.Clear();
        foreach (T[] array in _borrowed)
        {
            if (!_free.TryGetValue(array.Length, out Stack<T[]>? stack))
                _free[array.Length] = stack = new Stack<T[]>();
            stack.Push(array);
        }
        _borrowed.Clear();
        _borrowedBytes = 0;
    }

    /// <summary>Back-propagates from a scalar <paramref name="output"/> (d output / d output = 1).</summary>
    public void Backward(Variable<T> output) => Backward(output, [T.One]);

    /// <summary>
    /// Back-propagates with <paramref name="seedGradient"/> as the gradient of <paramref name="output"/>; gradients
    /// add into every variable that requires them (so several backward passes accumulate).
    /// </summary>
    public void Backward(Variable<T> output, ReadOnlySpan<T> seedGradient)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (seedGradient.Length != output.Length)
            throw new ArgumentException($"seed gradient has {seedGradient.Length} values; the output has {output.Length}", nameof(seedGradient));
        if (!output.RequiresGrad)
            return;
        T[] grad = GradFor(output, out bool fresh);
        if (fresh)
            seedGradient.CopyTo(grad);
        else
            for (int i = 0; i < grad.Length; i++)
                grad[i] += seedGradient[i];
        for (int i = _backward.Count - 1; i >= 0; i--)
            _backward[i]();
    }

    /// <summary>Borrows an array of exactly <paramref name="length"/> values with undefined contents.</summary>
    internal T[] Borrow(int length)
    {
        T[] array = _free.TryGetValue(length, out Stack<T[]>? stack) && stack.Count > 0
            ? stack.Pop()
            : GC.AllocateUninitializedArray<T>(length);
        _borrowed.Add(array);
        _borrowedBytes += (long)length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        PeakBytes = Math.Max(PeakBytes, _borrowedBytes);
        return array;
    }

    /// <summary>Borrows a zeroed array.</summary>
    internal T[] BorrowZeroed(int length)
    {
        T[] array = Borrow(length);
        Array.Clear(array);
        return array;
    }

    /// <summary>
    /// The gradient array of <paramref name="v"/>. When it did not exist yet it is borrowed and
    /// <paramref name="fresh"/> is true: its contents are undefined and the caller must overwrite all of it.
    /// </summary>
    internal T[] GradFor(Variable<T> v, out bool fresh)
    {
        if (v.Grad is { } existing)
        {
            fresh = false;
            return existing;
        }
        fresh = true;
        T[] grad = v.IsTapeOutput ? Borrow(v.Length) : new T[v.Length];
        v.Grad = grad;
        return grad;
    }

    /// <summary>The gradient array of <paramref name="v"/>, zeroed if it is new (for operations that add into part of it).</summary>
    internal T[] GradForAdding(Variable<T> v)
    {
        T[] grad = GradFor(v, out bool fresh);
        if (fresh)
            Array.Clear(grad);
        return grad;
    }

    /// <summary>Makes an operation's output and, when any input needs a gradient, records its backward closure.</summary>
    internal Variable<T> Output(T[] value, int[] shape, bool requiresGrad, Action<Variable<T>>? backward)
    {
        requiresGrad &= Recording;
        var output = new Variable<T>(value, shape, requiresGrad) { IsTapeOutput = true };
        if (requiresGrad && backward is not null)
        {
            _backward.Add(() =>
            {
                // No gradient reached this output (it did not feed the loss): nothing to propagate.
                if (output.Grad is not null)
                    backward(output);
            });
        }
        return output;
    }

    internal static void Require(bool condition, string message)
    {
        if (!condition)
            throw new ArgumentException(message);
    }
}
