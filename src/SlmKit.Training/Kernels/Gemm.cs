using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SlmKit.Training;

/// <summary>Which inner kernel a <see cref="Gemm{T}"/> call uses; tests force each one and compare with <see cref="Scalar"/>.</summary>
internal enum GemmPath
{
    Auto,
    Vector512,
    Vector256,
    Scalar,
}

/// <summary>
/// General matrix multiply C (+)= A·B over strided operands, the hot path of training (the forward x·Wᵀ and
/// both backward products). Goto/BLIS structure: per block of K, B is packed into column panels of NR values
/// per k and A into row panels of <see cref="MR"/> values per k, then an MR×NR register tile is accumulated
/// with FMA. Packing takes care of every transpose, so one kernel serves all three products.
/// <para>
/// Determinism: each element of C is produced by exactly one work unit, summing k in the same order whatever
/// the thread count, so results are bit-identical across runs and thread counts.
/// </para>
/// </summary>
internal static class Gemm<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Rows of the register tile: 6 rows × 2 vectors = 12 accumulators, leaving registers for B and the broadcast.</summary>
    public const int MR = 6;

    // 256 k-steps of a 32-wide float B panel is 32 KiB: it streams from L1/L2 while the A block stays in L2.
    private const int MaxKc = 256;
    private const int RowBlockPanels = 8;
    private const int ColumnGroupPanels = 16;

    /// <summary>
    /// C[i·ldc + j] (+)= Σₖ A(i,k)·B(k,j) for i &lt; m, j &lt; n, where A(i,k) = a[aOffset + i·rsA + k·csA] and
    /// B(k,j) = b[bOffset + k·rsB + j·csB]. With <paramref name="accumulate"/> false, C is overwritten.
    /// </summary>
    public static void Multiply(
        int m, int n, int k,
        T[] a, int aOffset, int rsA, int csA,
        T[] b, int bOffset, int rsB, int csB,
        T[] c, int cOffset, int ldc,
        bool accumulate, int threads, GemmPath path = GemmPath.Auto)
    {
        if (m <= 0 || n <= 0)
            return;
        CheckExtent(a, aOffset, m, rsA, k, csA, nameof(a));
        CheckExtent(b, bOffset, k, rsB, n, csB, nameof(b));
        CheckExtent(c, cOffset, m, ldc, n, 1, nameof(c));
        if (k <= 0)
        {
            if (!accumulate)
                for (int i = 0; i < m; i++)
                    c.AsSpan(cOffset + i * ldc, n).Clear();
            return;
        }

        path = Resolve(path);
        int nr = PanelWidth(path);
        int mPanels = (m + MR - 1) / MR;
        int nPanels = (n + nr - 1) / nr;
        int kBlocks = (k + MaxKc - 1) / MaxKc;
        int kcMax = (k + kBlocks - 1) / kBlocks;
        int rowBlocks = (mPanels + RowBlockPanels - 1) / RowBlockPanels;
        int columnGroups = (nPanels + ColumnGroupPanels - 1) / ColumnGroupPanels;
        int groupPanels = (nPanels + columnGroups - 1) / columnGroups;

        T[] packedA = ArrayPool<T>.Shared.Rent(mPanels * MR * kcMax);
        T[] packedB = ArrayPool<T>.Shared.Rent(nPanels * nr * kcMax);
        try
        {
            for (int kb = 0; kb < kBlocks; kb++)
            {
                int k0 = kb * kcMax;
                int kc = Math.Min(kcMax, k - k0);
                bool add = accumulate || kb > 0;
                if (threads <= 1)
                {
                    for (int jp = 0; jp < nPanels; jp++)
                        PackB(b, bOffset, rsB, csB, k0, kc, n, jp, nr, packedB);
                    for (int ip = 0; ip < mPanels; ip++)
                        PackA(a, aOffset, rsA, csA, k0, kc, m, ip, packedA);
                    for (int u = 0; u < rowBlocks * columnGroups; u++)
                        ComputeUnit(u, columnGroups, groupPanels, mPanels, nPanels, m, n, kc, nr, packedA, packedB, c, cOffset, ldc, add, path);
                }
                else
                {
                    var options = new ParallelOptions { MaxDegreeOfParallelism = threads };
                    Parallel.For(0, nPanels, options, jp => PackB(b, bOffset, rsB, csB, k0, kc, n, jp, nr, packedB));
                    Parallel.For(0, mPanels, options, ip => PackA(a, aOffset, rsA, csA, k0, kc, m, ip, packedA));
                    Parallel.For(0, rowBlocks * columnGroups, options,
                        u => ComputeUnit(u, columnGroups, groupPanels, mPanels, nPanels, m, n, kc, nr, packedA, packedB, c, cOffset, ldc, add, path));
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(packedA);
            ArrayPool<T>.Shared.Return(packedB);
        }
    }

    /// <summary>The kernel <see cref="GemmPath.Auto"/> picks on this machine for this element type.</summary>
    public static GemmPath Resolve(GemmPath path)
    {
        if (path != GemmPath.Auto)
            return path;
        if (Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported)
            return GemmPath.Vector512;
        if (Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported)
            return GemmPath.Vector256;
        return GemmPath.Scalar;
    }

    private static int PanelWidth(GemmPath path) => path switch
    {
        GemmPath.Vector512 => 2 * Vector512<T>.Count,
        GemmPath.Vector256 => 2 * Vector256<T>.Count,
        _ => 8,
    };

    private static void CheckExtent(T[] array, int offset, int rows, int rowStride, int columns, int columnStride, string name)
    {
        if (rows <= 0 || columns <= 0)
            return;
        long last = offset + (long)(rows - 1) * rowStride + (long)(columns - 1) * columnStride;
        if (offset < 0 || rowStride < 0 || columnStride < 0 || last >= array.Length)
            throw new ArgumentException($"matrix {name} ({rows}×{columns}, strides {rowStride}/{columnStride}, offset {offset}) exceeds its array of {array.Length}");
    }

    /// <summary>Packs B(k0..k0+kc, panel jp) as kc rows of nr values, zero-padded past column n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // fully optimised from the first step, no tier-0 pass
    private static void PackB(T[] b, int bOffset, int rsB, int csB, int k0, int kc, int n, int jp, int nr, T[] packed)
    {
        int j0 = jp * nr;
        int cols = Math.Min(nr, n - j0);
        Span<T> dest = packed.AsSpan(jp * nr * kc, nr * kc);
        if (cols < nr)
            dest.Clear();
        if (csB == 1)
        {
            // Rows of B are contiguous: copy each k's run of columns.
            for (int p = 0; p < kc; p++)
                b.AsSpan(bOffset + (k0 + p) * rsB + j0, cols).CopyTo(dest.Slice(p * nr, cols));
        }
        else
        {
            // Columns of B are contiguous (B is a transposed weight): read along k, write with stride nr.
            for (int col = 0; col < cols; col++)
            {
                int src = bOffset + (j0 + col) * csB + k0 * rsB;
                for (int p = 0; p < kc; p++)
                    dest[p * nr + col] = b[src + p * rsB];
            }
        }
    }

    /// <summary>Packs A(panel ip, k0..k0+kc) as kc groups of MR values, zero-padded past row m.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // fully optimised from the first step, no tier-0 pass
    private static void PackA(T[] a, int aOffset, int rsA, int csA, int k0, int kc, int m, int ip, T[] packed)
    {
        int i0 = ip * MR;
        int rows = Math.Min(MR, m - i0);
        Span<T> dest = packed.AsSpan(ip * MR * kc, MR * kc);
        if (rows < MR)
            dest.Clear();
        if (rsA == 1)
        {
            for (int p = 0; p < kc; p++)
                a.AsSpan(aOffset + (k0 + p) * csA + i0, rows).CopyTo(dest.Slice(p * MR, rows));
        }
        else
        {
            for (int r = 0; r < rows; r++)
            {
                int src = aOffset + (i0 + r) * rsA + k0 * csA;
                for (int p = 0; p < kc; p++)
                    dest[p * MR + r] = a[src + p * csA];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // fully optimised from the first step, no tier-0 pass
    private static void ComputeUnit(
        int unit, int columnGroups, int groupPanels, int mPanels, int nPanels, int m, int n, int kc, int nr,
        T[] packedA, T[] packedB, T[] c, int cOffset, int ldc, bool add, GemmPath path)
    {
        int rowBlock = unit / columnGroups;
        int group = unit % columnGroups;
        int ipStart = rowBlock * RowBlockPanels;
        int ipEnd = Math.Min(ipStart + RowBlockPanels, mPanels);
        int jpStart = group * groupPanels;
        int jpEnd = Math.Min(jpStart + groupPanels, nPanels);
        Span<T> tile = stackalloc T[MR * 32];
        for (int jp = jpStart; jp < jpEnd; jp++)
        {
            ref T bPanel = ref packedB[jp * nr * kc];
            int cols = Math.Min(nr, n - jp * nr);
            for (int ip = ipStart; ip < ipEnd; ip++)
            {
                ref T aPanel = ref packedA[ip * MR * kc];
                int rows = Math.Min(MR, m - ip * MR);
                int cIndex = cOffset + ip * MR * ldc + jp * nr;
                if (rows == MR && cols == nr)
                {
                    RunKernel(path, ref aPanel, ref bPanel, kc, ref c[cIndex], ldc, add);
                    continue;
                }

                // Edge tile: compute the whole register tile into scratch, then copy the valid part.
                RunKernel(path, ref aPanel, ref bPanel, kc, ref tile[0], nr, add: false);
                for (int r = 0; r < rows; r++)
                {
                    Span<T> dst = c.AsSpan(cIndex + r * ldc, cols);
                    ReadOnlySpan<T> src = tile.Slice(r * nr, cols);
                    if (add)
                    {
                        for (int j = 0; j < cols; j++)
                            dst[j] += src[j];
                    }
                    else
                    {
                        src.CopyTo(dst);
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RunKernel(GemmPath path, ref T a, ref T b, int kc, ref T c, int ldc, bool add)
    {
        if (path == GemmPath.Vector512)
            Kernel512(ref a, ref b, kc, ref c, ldc, add);
        else if (path == GemmPath.Vector256)
            Kernel256(ref a, ref b, kc, ref c, ldc, add);
        else
            KernelScalar(ref a, ref b, kc, ref c, ldc, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Fma(Vector512<T> x, Vector512<T> y, Vector512<T> addend)
    {
        if (typeof(T) == typeof(float))
            return Vector512.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), addend.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double))
            return Vector512.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), addend.AsDouble()).As<double, T>();
        return x * y + addend;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Fma(Vector256<T> x, Vector256<T> y, Vector256<T> addend)
    {
        if (typeof(T) == typeof(float))
            return Vector256.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), addend.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double))
            return Vector256.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), addend.AsDouble()).As<double, T>();
        return x * y + addend;
    }

    /// <summary>6 × (2·Vector512) register tile. The accumulators are named locals so the JIT keeps them in zmm registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // fully optimised from the first step, no tier-0 pass
    private static void Kernel512(ref T a, ref T b, int kc, ref T c, int ldc, bool add)
    {
        int w = Vector512<T>.Count;
        Vector512<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<T> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<T> b0 = Vector512.LoadUnsafe(ref b);
            Vector512<T> b1 = Vector512.LoadUnsafe(ref b, (nuint)w);
            Vector512<T> x = Vector512.Create(a);
            c00 = Fma(x, b0, c00);
            c01 = Fma(x, b1, c01);
            x = Vector512.Create(Unsafe.Add(ref a, 1));
            c10 = Fma(x, b0, c10);
            c11 = Fma(x, b1, c11);
            x = Vector512.Create(Unsafe.Add(ref a, 2));
            c20 = Fma(x, b0, c20);
            c21 = Fma(x, b1, c21);
            x = Vector512.Create(Unsafe.Add(ref a, 3));
            c30 = Fma(x, b0, c30);
            c31 = Fma(x, b1, c31);
            x = Vector512.Create(Unsafe.Add(ref a, 4));
            c40 = Fma(x, b0, c40);
            c41 = Fma(x, b1, c41);
            x = Vector512.Create(Unsafe.Add(ref a, 5));
            c50 = Fma(x, b0, c50);
            c51 = Fma(x, b1, c51);
            a = ref Unsafe.Add(ref a, MR);
            b = ref Unsafe.Add(ref b, 2 * w);
        }

        Store512(ref c, c00, c01, w, add);
        Store512(ref Unsafe.Add(ref c, ldc), c10, c11, w, add);
        Store512(ref Unsafe.Add(ref c, 2 * ldc), c20, c21, w, add);
        Store512(ref Unsafe.Add(ref c, 3 * ldc), c30, c31, w, add);
        Store512(ref Unsafe.Add(ref c, 4 * ldc), c40, c41, w, add);
        Store512(ref Unsafe.Add(ref c, 5 * ldc), c50, c51, w, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(ref T row, Vector512<T> v0, Vector512<T> v1, int w, bool add)
    {
        if (add)
        {
            v0 += Vector512.LoadUnsafe(ref row);
            v1 += Vector512.LoadUnsafe(ref row, (nuint)w);
        }
        v0.StoreUnsafe(ref row);
        v1.StoreUnsafe(ref row, (nuint)w);
    }

    /// <summary>6 × (2·Vector256) register tile: 12 accumulators fit the 16 ymm registers of AVX2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // fully optimised from the first step, no tier-0 pass
    private static void Kernel256(ref T a, ref T b, int kc, ref T c, int ldc, bool add)
    {
        int w = Vector256<T>.Count;
        Vector256<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<T> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<T> b0 = Vector256.LoadUnsafe(ref b);
            Vector256<T> b1 = Vector256.LoadUnsafe(ref b, (nuint)w);
            Vector256<T> x = Vector256.Create(a);
            c00 = Fma(x, b0, c00);
            c01 = Fma(x, b1, c01);
            x = Vector256.Create(Unsafe.Add(ref a, 1));
            c10 = Fma(x, b0, c10);
            c11 = Fma(x, b1, c11);
            x = Vector256.Create(Unsafe.Add(ref a, 2));
            c20 = Fma(x, b0, c20);
            c21 = Fma(x, b1, c21);
            x = Vector256.Create(Unsafe.Add(ref a, 3));
            c30 = Fma(x, b0, c30);
            c31 = Fma(x, b1, c31);
            x = Vector256.Create(Unsafe.Add(ref a, 4));
            c40 = Fma(x, b0, c40);
            c41 = Fma(x, b1, c41);
            x = Vector256.Create(Unsafe.Add(ref a, 5));
            c50 = Fma(x, b0, c50);
            c51 = Fma(x, b1, c51);
            a = ref Unsafe.Add(ref a, MR);
            b = ref Unsafe.Add(ref b, 2 * w);
        }

        Store256(ref c, c00, c01, w, add);
        Store256(ref Unsafe.Add(ref c, ldc), c10, c11, w, add);
        Store256(ref Unsafe.Add(ref c, 2 * ldc), c20, c21, w, add);
        Store256(ref Unsafe.Add(ref c, 3 * ldc), c30, c31, w, add);
        Store256(ref Unsafe.Add(ref c, 4 * ldc), c40, c41, w, add);
        Store256(ref Unsafe.Add(ref c, 5 * ldc), c50, c51, w, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(ref T row, Vector256<T> v0, Vector256<T> v1, int w, bool add)
    {
        if (add)
        {
            v0 += Vector256.LoadUnsafe(ref row);
            v1 += Vector256.LoadUnsafe(ref row, (nuint)w);
        }
        v0.StoreUnsafe(ref row);
        v1.StoreUnsafe(ref row, (nuint)w);
    }

    /// <summary>The definition the vector kernels are tested against: a plain MR × 8 tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // fully optimised from the first step, no tier-0 pass
    private static void KernelScalar(ref T a, ref T b, int kc, ref T c, int ldc, bool add)
    {
        const int Nr = 8;
        Span<T> acc = stackalloc T[MR * Nr];
        acc.Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int r = 0; r < MR; r++)
            {
                T x = Unsafe.Add(ref a, p * MR + r);
                for (int j = 0; j < Nr; j++)
                    acc[r * Nr + j] += x * Unsafe.Add(ref b, p * Nr + j);
            }
        }
        for (int r = 0; r < MR; r++)
        {
            for (int j = 0; j < Nr; j++)
            {
                ref T dst = ref Unsafe.Add(ref c, r * ldc + j);
                dst = add ? dst + acc[r * Nr + j] : acc[r * Nr + j];
            }
        }
    }
}
