using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using SlmKit.Tensors;

namespace SlmKit.Kernels.Quantization;

/// <summary>An instruction-set path of the quantized dot products.</summary>
public enum QuantizedKernelPath
{
    /// <summary>Plain C#: the reference.</summary>
    Scalar,

    /// <summary>Portable 128-bit vectors (SSE, NEON).</summary>
    Vector128,

    /// <summary>AVX2: vpmaddubsw + vpmaddwd.</summary>
    Vector256,

    /// <summary>AVX2 with AVX-VNNI's vpdpbusd for the 32-element block types.</summary>
    Vector256Vnni,

    /// <summary>AVX-512 BW: two 32-element blocks, or two 32-element groups of a K super-block, per vector.</summary>
    Vector512,
}

/// <summary>
/// Chooses the dot-product kernel of a weight type. The order of preference comes from measurement on a Zen 4
/// (AVX-512, AVX-VNNI) with SmolLM-shaped matrices (docs/performance.md): 256-bit AVX-VNNI beats 512-bit
/// AVX-512BW for the 32-element block types (Zen 4 splits 512-bit operations in two, and vpdpbusd replaces two
/// instructions), so Vector512 is used for them only where VNNI is absent. For the K types the 512-bit kernels measured
/// 2–45 % slower than the 256-bit ones (their unpacking stays 256-bit; only the multiplies widen), so they are never
/// preferred: they remain a tested path that <see cref="Dot"/> and the kernel benchmark can run. The one exception is the
/// single-row Q8_0 kernel (<see cref="Best"/>).
/// </summary>
public static unsafe class QuantizedDot
{
    /// <summary>
    /// Initialises the classes whose static fields the kernels read (the half table, vector constants) before any kernel
    /// is compiled: every kernel is reached through this class. With tiered compilation off, as the <c>slm</c> tool
    /// runs, a method is compiled once, at its first call; a static field of a class not yet initialised at that moment
    /// is read through an initialisation check and two loads at every use, which cost the sixteen-row prefill tile ≈ 25 %
    /// of its speed (its sixteen scale conversions per block each paid them). Once the class is initialised the JIT
    /// embeds the field's address as a constant.
    /// </summary>
    static QuantizedDot()
    {
        RuntimeHelpers.RunClassConstructor(typeof(HalfTable).TypeHandle);
        RuntimeHelpers.RunClassConstructor(typeof(Avx2Dot).TypeHandle);
        RuntimeHelpers.RunClassConstructor(typeof(Avx512Dot).TypeHandle);
        RuntimeHelpers.RunClassConstructor(typeof(Vector128Dot).TypeHandle);
    }

    /// <summary>True when <paramref name="path"/> can run on this CPU for <paramref name="type"/>.</summary>
    public static bool IsAvailable(GgmlType type, QuantizedKernelPath path) => Pointer(type, path) != null;

    /// <summary>
    /// The path of the single-row dot product (decoding) for <paramref name="type"/> on this CPU: Q8_0 on AVX-512, whose
    /// 512-bit kernel (two blocks per vector, the activation scales of each pair pre-spread) read an L2-resident
    /// 1536 × 576 matrix at 35–37 GB/s on one thread against 32–33 GB/s for AVX-VNNI (`SlmKit.Bench --kernels`, tiering off);
    /// else <see cref="TilePath"/>'s choice.
    /// </summary>
    public static QuantizedKernelPath Best(GgmlType type) =>
        type == GgmlType.Q8_0 && IsAvailable(type, QuantizedKernelPath.Vector512) ? QuantizedKernelPath.Vector512 : TilePath(type);

    /// <summary>
    /// The one-token kernel over a run of consecutive rows for <paramref name="type"/> where there is one on the
    /// <see cref="Best"/> path (Q8_0 on AVX-512: <see cref="Avx512Dot.Q8_0Rows"/>), else null and decoding calls the
    /// single-row kernel per row.
    /// </summary>
    internal static delegate*<byte*, long, ActivationRow, int, float*, int, void> RowRunPointer(GgmlType type) =>
        type == GgmlType.Q8_0 && Best(type) == QuantizedKernelPath.Vector512 ? &Avx512Dot.Q8_0Rows : null;

    /// <summary>The path whose tiles prefill prefers for <paramref name="type"/>, in the order the class summary gives.</summary>
    private static QuantizedKernelPath TilePath(GgmlType type)
    {
        if (IsAvailable(type, QuantizedKernelPath.Vector256Vnni))
            return QuantizedKernelPath.Vector256Vnni;
        if (!BlockFormats.IsKQuant(type) && IsAvailable(type, QuantizedKernelPath.Vector512))
            return QuantizedKernelPath.Vector512;
        if (IsAvailable(type, QuantizedKernelPath.Vector256))
            return QuantizedKernelPath.Vector256;
        if (IsAvailable(type, QuantizedKernelPath.Vector128))
            return QuantizedKernelPath.Vector128;
        return QuantizedKernelPath.Scalar;
    }

    /// <summary>Runs one dot product on an explicit path (tests compare the paths).</summary>
    public static float Dot(GgmlType type, QuantizedKernelPath path, byte* weights, ActivationRow activations, int blocks)
    {
        var kernel = Pointer(type, path);
        if (kernel == null)
            throw new NotSupportedException($"{path} is not available for {type} on this CPU");
        return kernel(weights, activations, blocks);
    }

    /// <summary>
    /// Runs one four-token tile on an explicit path: <paramref name="results"/>[k] is the dot of the weight row with
    /// activation row k, the rows following <paramref name="activations"/> in <see cref="QuantizedActivations"/>' layout.
    /// </summary>
    public static void Dot4(GgmlType type, QuantizedKernelPath path, byte* weights, ActivationRow activations, int blocks, Span<float> results)
    {
        var tile = TilePointer(type, path);
        if (tile == null)
            throw new NotSupportedException($"{path} has no four-token tile for {type}");
        if (results.Length < 4)
            throw new ArgumentException("four results are needed", nameof(results));
        fixed (float* r = results)
            tile(weights, activations, blocks, r);
    }

    /// <summary>
    /// The four-token prefill tile for <paramref name="type"/>: on the <see cref="TilePath"/> where it has one, else on
    /// AVX2; null where none exists (Q2_K, Q3_K, Q5_K, and CPUs without AVX2), and the caller runs single dots instead.
    /// </summary>
    internal static delegate*<byte*, ActivationRow, int, float*, void> BestTile(GgmlType type)
    {
        var tile = TilePointer(type, TilePath(type));
        return tile != null ? tile : TilePointer(type, QuantizedKernelPath.Vector256);
    }

    internal static delegate*<byte*, ActivationRow, int, float*, void> TilePointer(GgmlType type, QuantizedKernelPath path) => path switch
    {
        QuantizedKernelPath.Vector256 when Avx2Dot.IsSupported => Tile<PlainAvx2>(type),
        QuantizedKernelPath.Vector256Vnni when Avx2Dot.IsSupported && AvxVnni.IsSupported => Tile<WithAvxVnni>(type),
        _ => null,
    };

    private static delegate*<byte*, ActivationRow, int, float*, void> Tile<T>(GgmlType type) where T : struct, IDotFlavour => type switch
    {
        GgmlType.Q8_0 => &Avx2Dot.Q8_0x4<T>,
        GgmlType.Q4_0 => &Avx2Dot.Q4_0x4<T>,
        GgmlType.Q4_1 => &Avx2Dot.Q4_1x4<T>,
        GgmlType.Q5_0 => &Avx2Dot.Q5_0x4<T>,
        GgmlType.Q5_1 => &Avx2Dot.Q5_1x4<T>,
        GgmlType.Q4_K => &Avx2Dot.Q4_Kx4,
        GgmlType.Q6_K => &Avx2Dot.Q6_Kx4,
        _ => null,
    };

    /// <summary>
    /// Rows of the row tile of <paramref name="type"/> on <paramref name="path"/> (eight on the 256-bit paths, sixteen on
    /// Vector512), or 0 where that path has none.
    /// </summary>
    public static int RowTileRows(GgmlType type, QuantizedKernelPath path) => RowTilePointer(type, path).Rows;

    /// <summary>
    /// Runs one row tile over <paramref name="tokens"/> tokens on an explicit path: <paramref name="results"/>[k·rows + i]
    /// is the dot of weight row i (rows <paramref name="rowBytes"/> apart from <paramref name="weights"/>) with activation
    /// row k, for the <see cref="RowTileRows"/> rows of the tile.
    /// </summary>
    public static void DotRows(GgmlType type, QuantizedKernelPath path, byte* weights, long rowBytes, ActivationRow activations, int blocks, int tokens, Span<float> results)
    {
        if (tokens is < 1 or > RowTile.MaxTokens)
            throw new ArgumentOutOfRangeException(nameof(tokens), $"a row tile takes 1 to {RowTile.MaxTokens} tokens");
        var tile = RowTilePointer(type, path);
        if (tile.Kernel == null)
            throw new NotSupportedException($"{path} has no row tile for {type}");
        if (results.Length < tile.Rows * tokens)
            throw new ArgumentException($"{tile.Rows * tokens} results are needed", nameof(results));
        fixed (float* r = results)
            tile.Kernel(weights, rowBytes, activations, blocks, r, tile.Rows, tokens);
    }

    /// <summary>
    /// The row tile prefill uses for <paramref name="type"/>: sixteen rows on Vector512 for the 4- and 5-bit offset
    /// types, else eight rows on the <see cref="TilePath"/> or AVX2; none (a null kernel) for the K types and for Q8_0
    /// without AVX-VNNI. On one thread, a 1536 × 576 matrix against 64 tokens, the sixteen-row tile ran the four types
    /// 1.5–2.2× faster than the eight-row VNNI tile (`SlmKit.Bench --kernels`, table in docs/performance.md).
    /// </summary>
    internal static RowTile BestRowTile(GgmlType type)
    {
        var wide = RowTilePointer(type, QuantizedKernelPath.Vector512);
        if (wide.Kernel != null)
            return wide;
        var tile = RowTilePointer(type, TilePath(type));
        return tile.Kernel != null ? tile : RowTilePointer(type, QuantizedKernelPath.Vector256);
    }

    internal static RowTile RowTilePointer(GgmlType type, QuantizedKernelPath path) => path switch
    {
        QuantizedKernelPath.Vector256 when Avx2Dot.IsSupported => new(EightRowTile<PlainAvx2>(type), 8),
        QuantizedKernelPath.Vector256Vnni when Avx2Dot.IsSupported && AvxVnni.IsSupported => new(EightRowTile<WithAvxVnni>(type), 8),
        QuantizedKernelPath.Vector512 when Avx512Dot.IsSupported && Avx2Dot.IsSupported => new(SixteenRowTile(type), 16),
        _ => default,
    };

    private static delegate*<byte*, long, ActivationRow, int, float*, long, int, void> EightRowTile<T>(GgmlType type) where T : struct, IDotFlavour => type switch
    {
        // Q8_0 enters as unsigned quants + 128, which only vpdpbusd's 32-bit sums take without saturating.
        GgmlType.Q8_0 when T.Vnni => &Avx2Dot.Q8_0x8,
        GgmlType.Q4_0 => &Avx2Dot.Q4_0x8<T>,
        GgmlType.Q4_1 => &Avx2Dot.Q4_1x8<T>,
        GgmlType.Q5_0 => &Avx2Dot.Q5_0x8<T>,
        GgmlType.Q5_1 => &Avx2Dot.Q5_1x8<T>,
        _ => null,
    };

    // The 16-bit sums of vpmaddubsw hold 4- and 5-bit quants only (see Avx512Dot.OffsetDot16xN).
    private static delegate*<byte*, long, ActivationRow, int, float*, long, int, void> SixteenRowTile(GgmlType type) => type switch
    {
        GgmlType.Q4_0 => &Avx512Dot.Q4_0x16,
        GgmlType.Q4_1 => &Avx512Dot.Q4_1x16,
        GgmlType.Q5_0 => &Avx512Dot.Q5_0x16,
        GgmlType.Q5_1 => &Avx512Dot.Q5_1x16,
        _ => null,
    };

    internal static delegate*<byte*, ActivationRow, int, float> Pointer(GgmlType type, QuantizedKernelPath path)
    {
        switch (path)
        {
            case QuantizedKernelPath.Scalar:
                return type switch
                {
                    GgmlType.Q8_0 => &ScalarDot.Q8_0,
                    GgmlType.Q4_0 => &ScalarDot.Q4_0,
                    GgmlType.Q4_1 => &ScalarDot.Q4_1,
                    GgmlType.Q5_0 => &ScalarDot.Q5_0,
                    GgmlType.Q5_1 => &ScalarDot.Q5_1,
                    GgmlType.Q2_K => &ScalarDot.Q2_K,
                    GgmlType.Q3_K => &ScalarDot.Q3_K,
                    GgmlType.Q4_K => &ScalarDot.Q4_K,
                    GgmlType.Q5_K => &ScalarDot.Q5_K,
                    GgmlType.Q6_K => &ScalarDot.Q6_K,
                    _ => null,
                };
            case QuantizedKernelPath.Vector128 when Vector128Dot.IsSupported:
                return type switch
                {
                    GgmlType.Q8_0 => &Vector128Dot.Q8_0,
                    GgmlType.Q4_0 => &Vector128Dot.Q4_0,
                    GgmlType.Q4_1 => &Vector128Dot.Q4_1,
                    GgmlType.Q5_0 => &Vector128Dot.Q5_0,
                    GgmlType.Q5_1 => &Vector128Dot.Q5_1,
                    GgmlType.Q2_K => &Vector128Dot.Q2_K,
                    GgmlType.Q3_K => &Vector128Dot.Q3_K,
                    GgmlType.Q4_K => &Vector128Dot.Q4_K,
                    GgmlType.Q5_K => &Vector128Dot.Q5_K,
                    GgmlType.Q6_K => &Vector128Dot.Q6_K,
                    _ => null,
                };
            case QuantizedKernelPath.Vector256 when Avx2Dot.IsSupported:
                return Avx2Kernel<PlainAvx2>(type);
            case QuantizedKernelPath.Vector256Vnni when Avx2Dot.IsSupported && AvxVnni.IsSupported:
                return Avx2Kernel<WithAvxVnni>(type);
            case QuantizedKernelPath.Vector512 when Avx512Dot.IsSupported:
                return type switch
                {
                    GgmlType.Q8_0 => &Avx512Dot.Q8_0,
                    GgmlType.Q4_0 => &Avx512Dot.Q4_0,
                    GgmlType.Q4_1 => &Avx512Dot.Q4_1,
                    GgmlType.Q5_0 => &Avx512Dot.Q5_0,
                    GgmlType.Q5_1 => &Avx512Dot.Q5_1,
                    GgmlType.Q2_K => &Avx2Dot.Q2_K<Avx512Dot.OneVector>,
                    GgmlType.Q3_K => &Avx2Dot.Q3_K<Avx512Dot.OneVector>,
                    GgmlType.Q4_K => &Avx2Dot.Q4_K<Avx512Dot.OneVector>,
                    GgmlType.Q5_K => &Avx2Dot.Q5_K<Avx512Dot.OneVector>,
                    GgmlType.Q6_K => &Avx2Dot.Q6_K<Avx512Dot.OneVector>,
                    _ => null,
                };
            default:
                return null;
        }
    }

    /// <summary>The 256-bit kernels, with plain AVX2 or AVX-VNNI for the 32-element block types' u8·s8 dot.</summary>
    private static delegate*<byte*, ActivationRow, int, float> Avx2Kernel<T>(GgmlType type) where T : struct, IDotFlavour => type switch
    {
        GgmlType.Q8_0 => &Avx2Dot.Q8_0<T>,
        GgmlType.Q4_0 => &Avx2Dot.Q4_0<T>,
        GgmlType.Q4_1 => &Avx2Dot.Q4_1<T>,
        GgmlType.Q5_0 => &Avx2Dot.Q5_0<T>,
        GgmlType.Q5_1 => &Avx2Dot.Q5_1<T>,
        // The K types multiply by 16-bit sub-block scales in vpmaddwd, which VNNI does not replace: one kernel for both.
        GgmlType.Q2_K => &Avx2Dot.Q2_K<Avx2Dot.TwoGroups>,
        GgmlType.Q3_K => &Avx2Dot.Q3_K<Avx2Dot.TwoGroups>,
        GgmlType.Q4_K => &Avx2Dot.Q4_K<Avx2Dot.TwoGroups>,
        GgmlType.Q5_K => &Avx2Dot.Q5_K<Avx2Dot.TwoGroups>,
        GgmlType.Q6_K => &Avx2Dot.Q6_K<Avx2Dot.TwoGroups>,
        _ => null,
    };
}
