using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SlmKit.Training;

/// <summary>
/// Fused single-pass loops over short rows (attention rows are at most a few hundred values), where a chain of
/// TensorPrimitives calls would pay its per-call cost five or six times per row. The float path has its own
/// vector exp (Cephes polynomial, about 2 ulp); other element types use <c>T.Exp</c> so that the double
/// instantiation used by the gradient checks stays exact.
/// </summary>
internal static class FusedRowMath<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>x[j] ← exp((x[j] − shift)·scale) for every j; returns Σ x[j].</summary>
    public static T ExpShiftedSum(Span<T> x, T shift, T scale) => ExpShiftedSum(x, x, shift, scale);

    /// <summary>y[j] = exp((x[j] − shift)·scale) for every j (x and y may be the same span); returns Σ y[j].</summary>
    public static T ExpShiftedSum(ReadOnlySpan<T> x, Span<T> y, T shift, T scale)
    {
        if (typeof(T) == typeof(float))
        {
            return Unsafe.BitCast<float, T>(FloatExpShiftedSum(MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(y),
                Unsafe.BitCast<T, float>(shift), Unsafe.BitCast<T, float>(scale)));
        }
        T total = T.Zero;
        for (int j = 0; j < x.Length; j++)
        {
            T e = T.Exp((x[j] - shift) * scale);
            y[j] = e;
            total += e;
        }
        return total;
    }

    /// <summary>d[j] ← p[j]·(d[j] − dot)·scale: the softmax backward, times the score scale.</summary>
    public static void SoftmaxBackward(ReadOnlySpan<T> p, Span<T> d, T dot, T scale)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported)
        {
            var vDot = Vector256.Create(dot);
            var vScale = Vector256.Create(scale);
            for (; j <= d.Length - Vector256<T>.Count; j += Vector256<T>.Count)
            {
                Vector256<T> vd = Vector256.Create((ReadOnlySpan<T>)d.Slice(j));
                Vector256<T> vp = Vector256.Create(p.Slice(j));
                (vp * (vd - vDot) * vScale).CopyTo(d.Slice(j));
            }
        }
        for (; j < d.Length; j++)
            d[j] = p[j] * (d[j] - dot) * scale;
    }

    /// <summary>y = silu(x) ⊙ u, silu(x) = x·σ(x).</summary>
    public static void SiluMultiply(ReadOnlySpan<T> x, ReadOnlySpan<T> u, Span<T> y)
    {
        int j = 0;
        if (typeof(T) == typeof(float) && Vector512.IsHardwareAccelerated)
        {
            ReadOnlySpan<float> xf = MemoryMarshal.Cast<T, float>(x), uf = MemoryMarshal.Cast<T, float>(u);
            Span<float> yf = MemoryMarshal.Cast<T, float>(y);
            for (; j <= x.Length - Vector512<float>.Count; j += Vector512<float>.Count)
            {
                var vx = Vector512.Create(xf.Slice(j));
                Vector512<float> sigmoid = Vector512<float>.One / (Vector512<float>.One + Exp512(-vx));
                (vx * sigmoid * Vector512.Create(uf.Slice(j))).CopyTo(yf.Slice(j));
            }
        }
        for (; j < x.Length; j++)
            y[j] = x[j] / (T.One + T.Exp(-x[j])) * u[j];
    }

    /// <summary>
    /// Gradients of y = silu(x) ⊙ u given dy: du = dy ⊙ silu(x) and dx = dy ⊙ u ⊙ σ(x)·(1 + x·(1 − σ(x))).
    /// Each is written (overwrite) or added into its span; an empty span is skipped.
    /// </summary>
    public static void SwiGluBackward(ReadOnlySpan<T> x, ReadOnlySpan<T> u, ReadOnlySpan<T> dy, Span<T> dx, bool overwriteDx, Span<T> du, bool overwriteDu)
    {
        bool wantDx = !dx.IsEmpty, wantDu = !du.IsEmpty;
        int j = 0;
        if (typeof(T) == typeof(float) && Vector512.IsHardwareAccelerated)
        {
            ReadOnlySpan<float> xf = MemoryMarshal.Cast<T, float>(x), uf = MemoryMarshal.Cast<T, float>(u), dyf = MemoryMarshal.Cast<T, float>(dy);
            Span<float> dxf = MemoryMarshal.Cast<T, float>(dx), duf = MemoryMarshal.Cast<T, float>(du);
            Vector512<float> one = Vector512<float>.One;
            for (; j <= x.Length - Vector512<float>.Count; j += Vector512<float>.Count)
            {
                var vx = Vector512.Create(xf.Slice(j));
                var vdy = Vector512.Create(dyf.Slice(j));
                Vector512<float> sigmoid = one / (one + Exp512(-vx));
                if (wantDu)
                {
                    Vector512<float> d = vdy * vx * sigmoid;
                    if (!overwriteDu)
                        d += Vector512.Create((ReadOnlySpan<float>)duf.Slice(j));
                    d.CopyTo(duf.Slice(j));
                }
                if (wantDx)
                {
                    Vector512<float> d = vdy * Vector512.Create(uf.Slice(j)) * sigmoid * (one + vx * (one - sigmoid));
                    if (!overwriteDx)
                        d += Vector512.Create((ReadOnlySpan<float>)dxf.Slice(j));
                    d.CopyTo(dxf.Slice(j));
                }
            }
        }
        for (; j < x.Length; j++)
        {
            T sigmoid = T.One / (T.One + T.Exp(-x[j]));
            if (wantDu)
            {
                T d = dy[j] * x[j] * sigmoid;
                du[j] = overwriteDu ? d : du[j] + d;
            }
            if (wantDx)
            {
                T d = dy[j] * u[j] * sigmoid * (T.One + x[j] * (T.One - sigmoid));
                dx[j] = overwriteDx ? d : dx[j] + d;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float FloatExpShiftedSum(ReadOnlySpan<float> x, Span<float> y, float shift, float scale)
    {
        int j = 0;
        float total = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> acc = Vector512<float>.Zero;
            var vShift = Vector512.Create(shift);
            var vScale = Vector512.Create(scale);
            ref float source = ref MemoryMarshal.GetReference(x);
            ref float destination = ref MemoryMarshal.GetReference(y);
            for (; j <= x.Length - Vector512<float>.Count; j += Vector512<float>.Count)
            {
                Vector512<float> e = Exp512((Vector512.LoadUnsafe(ref source, (nuint)j) - vShift) * vScale);
                e.StoreUnsafe(ref destination, (nuint)j);
                acc += e;
            }
            total = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> acc = Vector256<float>.Zero;
            var vShift = Vector256.Create(shift);
            var vScale = Vector256.Create(scale);
            ref float source = ref MemoryMarshal.GetReference(x);
            ref float destination = ref MemoryMarshal.GetReference(y);
            for (; j <= x.Length - Vector256<float>.Count; j += Vector256<float>.Count)
            {
                Vector256<float> e = Exp256((Vector256.LoadUnsafe(ref source, (nuint)j) - vShift) * vScale);
                e.StoreUnsafe(ref destination, (nuint)j);
                acc += e;
            }
            total = Vector256.Sum(acc);
        }
        for (; j < x.Length; j++)
        {
            float e = MathF.Exp(Math.Clamp((x[j] - shift) * scale, ExpMin, ExpMax)); // saturate like the vector path
            y[j] = e;
            total += e;
        }
        return total;
    }

    // Cephes expf: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6 polynomial, 2ⁿ built in the exponent bits.
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2High = 0.693359375f;
    private const float Ln2Low = -2.12194440e-4f;
    private const float ExpMax = 88.0f; // 2ⁿ stays finite: n ≤ 127
    private const float ExpMin = -87.3365447504019f;
    private const float P0 = 1.9875691500E-4f, P1 = 1.3981999507E-3f, P2 = 8.3334519073E-3f;
    private const float P3 = 4.1665795894E-2f, P4 = 1.6666665459E-1f, P5 = 5.0000001201E-1f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Exp512(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(ExpMin)), Vector512.Create(ExpMax));
        Vector512<float> n = Vector512.Round(x * Vector512.Create(Log2E));
        Vector512<float> r = x - n * Vector512.Create(Ln2High) - n * Vector512.Create(Ln2Low);
        Vector512<float> y = Vector512.Create(P0);
        y = y * r + Vector512.Create(P1);
        y = y * r + Vector512.Create(P2);
        y = y * r + Vector512.Create(P3);
        y = y * r + Vector512.Create(P4);
        y = y * r + Vector512.Create(P5);
        y = y * r * r + r + Vector512<float>.One;
        Vector512<int> bits = Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23);
        return y * bits.AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Exp256(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(ExpMin)), Vector256.Create(ExpMax));
        Vector256<float> n = Vector256.Round(x * Vector256.Create(Log2E));
        Vector256<float> r = x - n * Vector256.Create(Ln2High) - n * Vector256.Create(Ln2Low);
        Vector256<float> y = Vector256.Create(P0);
        y = y * r + Vector256.Create(P1);
        y = y * r + Vector256.Create(P2);
        y = y * r + Vector256.Create(P3);
        y = y * r + Vector256.Create(P4);
        y = y * r + Vector256.Create(P5);
        y = y * r * r + r + Vector256<float>.One;
        Vector256<int> bits = Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23);
        return y * bits.AsSingle();
    }
}
