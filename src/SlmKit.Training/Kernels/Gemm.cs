using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
/// both backward products). Goto/BLIS structure: C is split into work units (a block of rows × a group of
/// columns); a unit walks K in blocks, packing its slice of B into column panels of NR values per k and its rows
/// of A into panels of <see cref="MR"/> values per k, then accumulates MR×NR register tiles with FMA. Packing
/// takes care of every transpose, so one kernel serves all three products, and one parallel region runs them.
/// <para>
/// Determinism: each element of C is produced by exactly one work unit, summing k in the same order whatever
/// the thread count, so results are bit-identical across runs and thread counts.
/// </para>
/// </summary>
internal static class Gemm<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Rows of the register tile: 6 rows × 2 vectors = 12 accumulators, leaving registers for B and the broadcast.</summary>
    public const int MR = 6;

    // 256 k-steps of a 32-wide float B panel is 32 KiB: it sits in L1 while a row block of A streams past it.
    private const int MaxKc = 256;
    // A row block of up to 64 panels (384 rows × 256 k × 4 bytes ≈ 384 KiB) stays in the 1 MiB L2 of a core.
    private const int MaxRowBlockPanels = 64;
    private const int MaxGroupPanels = 16;

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

        // Work units are (row block × column group) tiles of C. The split only decides which unit computes a
        // tile, never how, so it may depend on the thread count without changing a bit of the result.
        int rowBlocks = (mPanels + MaxRowBlockPanels - 1) / MaxRowBlockPanels;
        int columnGroups = (nPanels + MaxGroupPanels - 1) / MaxGroupPanels;
        int wanted = threads <= 1 ? 1 : 4 * threads;
        if (rowBlocks * columnGroups < wanted)
            columnGroups = Math.Min(nPanels, (wanted + rowBlocks - 1) / rowBlocks);
        int groupPanels = (nPanels + columnGroups - 1) / columnGroups;
        columnGroups = (nPanels + groupPanels - 1) / groupPanels;
        if (rowBlocks * columnGroups < wanted)
            rowBlocks = Math.Min(mPanels, (wanted + columnGroups - 1) / columnGroups);
        int rowBlockPanels = (mPanels + rowBlocks - 1) / rowBlocks;
        rowBlocks = (mPanels + rowBlockPanels - 1) / rowBlockPanels;
        var shape = new UnitShape(m, n, k, kcMax, nr, mPanels, nPanels, rowBlockPanels, columnGroups, groupPanels);
        int units = rowBlocks * columnGroups;
        if (threads <= 1 || units == 1)
        {
            for (int u = 0; u < units; u++)
                ComputeUnit(u, shape, a, aOffset, rsA, csA, b, bOffset, rsB, csB, c, cOffset, ldc, accumulate, path);
        }
        else
        {
            Parallel.For(0, units, new ParallelOptions { MaxDegreeOfParallelism = threads },
                u => ComputeUnit(u, shape, a, aOffset, rsA, csA, b, bOffset, rsB, csB, c, cOffset, ldc, accumulate, path));
        }
    }

    private readonly record struct UnitShape(int M, int N, int K, int KcMax, int Nr, int MPanels, int NPanels, int RowBlockPanels, int ColumnGroups, int GroupPanels);

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

    /// <summary>Packs B(k0..k0+kc, panel jp) as kc rows of nr values at <paramref name="dest"/>, zero-padded past column n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // fully optimised from the first step, no tier-0 pass
    private static void PackB(T[] b, int bOffset, int rsB, int csB, int k0, int kc, int n, int jp, int nr, Span<T> dest)
    {
        int j0 = jp * nr;
        int cols = Math.Min(nr, n - j0);
        if (cols < nr)
            dest.Clear();
        // Bounds were checked once for the whole product (CheckExtent); the loops below index without checks
        // because packing is a large share of the time when k is small (attention heads, k = 48).
        ref T src = ref b[bOffset + k0 * rsB + j0 * csB];
        ref T dst = ref MemoryMarshal.GetReference(dest);
        if (csB == 1)
        {
            // Rows of B are contiguous: copy each k's run of columns.
            for (int p = 0; p < kc; p++)
            {
                ref T row = ref Unsafe.Add(ref src, p * rsB);
                ref T to = ref Unsafe.Add(ref dst, p * nr);
                for (int col = 0; col < cols; col++)
                    Unsafe.Add(ref to, col) = Unsafe.Add(ref row, col);
            }
        }
        else if (rsB == 1)
        {
            // Columns of B are contiguous (B is a weight read transposed): four columns at a time along k.
            int col = 0;
            for (; col + 4 <= cols; col += 4)
            {
                ref T c0 = ref Unsafe.Add(ref src, col * csB);
                ref T c1 = ref Unsafe.Add(ref c0, csB);
                ref T c2 = ref Unsafe.Add(ref c1, csB);
                ref T c3 = ref Unsafe.Add(ref c2, csB);
                ref T to = ref Unsafe.Add(ref dst, col);
                for (int p = 0; p < kc; p++)
                {
                    Unsafe.Add(ref to, 0) = Unsafe.Add(ref c0, p);
                    Unsafe.Add(ref to, 1) = Unsafe.Add(ref c1, p);
                    Unsafe.Add(ref to, 2) = Unsafe.Add(ref c2, p);
                    Unsafe.Add(ref to, 3) = Unsafe.Add(ref c3, p);
                    to = ref Unsafe.Add(ref to, nr);
                }
            }
            for (; col < cols; col++)
            {
                ref T from = ref Unsafe.Add(ref src, col * csB);
                for (int p = 0; p < kc; p++)
                    Unsafe.Add(ref dst, p * nr + col) = Unsafe.Add(ref from, p);
            }
        }
        else
        {
            for (int p = 0; p < kc; p++)
                for (int col = 0; col < cols; col++)
                    Unsafe.Add(ref dst, p * nr + col) = Unsafe.Add(ref src, p * rsB + col * csB);
        }
    }

    /// <summary>Packs A(panel ip, k0..k0+kc) as kc groups of MR values at <paramref name="dest"/>, zero-padded past row m.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // fully optimised from the first step, no tier-0 pass
    private static void PackA(T[] a, int aOffset, int rsA, int csA, int k0, int kc, int m, int ip, Span<T> dest)
    {
        int i0 = ip * MR;
        int rows = Math.Min(MR, m - i0);
        ref T src = ref a[aOffset + i0 * rsA + k0 * csA];
        ref T dst = ref MemoryMarshal.GetReference(dest);
        if (rows < MR)
        {
            dest.Clear();
            for (int p = 0; p < kc; p++)
                for (int r = 0; r < rows; r++)
                    Unsafe.Add(ref dst, p * MR + r) = Unsafe.Add(ref src, r * rsA + p * csA);
            return;
        }
        // A full panel: six rows side by side, one k at a time (bounds checked once in CheckExtent).
        ref T r0 = ref src;
        ref T r1 = ref Unsafe.Add(ref r0, rsA);
        ref T r2 = ref Unsafe.Add(ref r1, rsA);
        ref T r3 = ref Unsafe.Add(ref r2, rsA);
        ref T r4 = ref Unsafe.Add(ref r3, rsA);
        ref T r5 = ref Unsafe.Add(ref r4, rsA);
        for (int p = 0; p < kc; p++)
        {
            int at = p * csA;
            Unsafe.Add(ref dst, 0) = Unsafe.Add(ref r0, at);
            Unsafe.Add(ref dst, 1) = Unsafe.Add(ref r1, at);
            Unsafe.Add(ref dst, 2) = Unsafe.Add(ref r2, at);
            Unsafe.Add(ref dst, 3) = Unsafe.Add(ref r3, at);
            Unsafe.Add(ref dst, 4) = Unsafe.Add(ref r4, at);
            Unsafe.Add(ref dst, 5) = Unsafe.Add(ref r5, at);
            dst = ref Unsafe.Add(ref dst, MR);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // fully optimised from the first step, no tier-0 pass
    private static void ComputeUnit(
        int unit, UnitShape shape, T[] a, int aOffset, int rsA, int csA, T[] b, int bOffset, int rsB, int csB,
        T[] c, int cOffset, int ldc, bool accumulate, GemmPath path)
    {
        int rowBlock = unit / shape.ColumnGroups;
        int group = unit % shape.ColumnGroups;
        int ipStart = rowBlock * shape.RowBlockPanels;
        int ipEnd = Math.Min(ipStart + shape.RowBlockPanels, shape.MPanels);
        int jpStart = group * shape.GroupPanels;
        int jpEnd = Math.Min(jpStart + shape.GroupPanels, shape.NPanels);
        int nr = shape.Nr;

        // A unit runs every block of k itself, packing its own slices of A and B: its tile of C stays in this
        // core's cache from the first block to the last, and the whole product is one parallel region.
        T[] packedA = ArrayPool<T>.Shared.Rent((ipEnd - ipStart) * MR * shape.KcMax);
        T[] packedB = ArrayPool<T>.Shared.Rent((jpEnd - jpStart) * nr * shape.KcMax);
        for (int k0 = 0; k0 < shape.K; k0 += shape.KcMax)
        {
            int kc = Math.Min(shape.KcMax, shape.K - k0);
            for (int ip = ipStart; ip < ipEnd; ip++)
                PackA(a, aOffset, rsA, csA, k0, kc, shape.M, ip, packedA.AsSpan((ip - ipStart) * MR * kc, MR * kc));
            for (int jp = jpStart; jp < jpEnd; jp++)
                PackB(b, bOffset, rsB, csB, k0, kc, shape.N, jp, nr, packedB.AsSpan((jp - jpStart) * nr * kc, nr * kc));
            ComputeBlock(ipStart, ipEnd, jpStart, jpEnd, shape, kc, packedA, packedB, c, cOffset, ldc, accumulate || k0 > 0, path);
        }
        ArrayPool<T>.Shared.Return(packedA);
        ArrayPool<T>.Shared.Return(packedB);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // fully optimised from the first step, no tier-0 pass
    private static void ComputeBlock(
        int ipStart, int ipEnd, int jpStart, int jpEnd, UnitShape shape, int kc,
        T[] packedA, T[] packedB, T[] c, int cOffset, int ldc, bool add, GemmPath path)
    {
        int nr = shape.Nr;
        Span<T> tile = stackalloc T[MR * 32];
        for (int jp = jpStart; jp < jpEnd; jp++)
        {
            ref T bPanel = ref packedB[(jp - jpStart) * nr * kc];
            int cols = Math.Min(nr, shape.N - jp * nr);
            for (int ip = ipStart; ip < ipEnd; ip++)
            {
                ref T aPanel = ref packedA[(ip - ipStart) * MR * kc];
                int rows = Math.Min(MR, shape.M - ip * MR);
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
