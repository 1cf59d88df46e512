using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SlmKit.Kernels.Quantization;

/// <summary>
/// IEEE half → float through a 65,536-entry table. Block scales are halves; .NET has no F16C intrinsic and its
/// software conversion branches, so a table load (the same trick ggml uses without F16C) is the fastest option.
/// Only the few hundred distinct scale values of a model are ever hot in cache. The table lives in native memory for the
/// process's lifetime: the JIT embeds the address of a static readonly pointer as a constant, where a managed array's
/// reference was loaded again in every iteration of a kernel's loop.
/// </summary>
internal static unsafe class HalfTable
{
    private static readonly float* s_values = Build();

    private static float* Build()
    {
        var values = (float*)NativeMemory.AlignedAlloc(65536 * sizeof(float), 64);
        for (int i = 0; i < 65536; i++)
            values[i] = (float)BitConverter.UInt16BitsToHalf((ushort)i);
        return values;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => s_values[bits];

    /// <summary>The half stored little-endian at <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(byte* p) => ToSingle(Unsafe.ReadUnaligned<ushort>(p));

    /// <summary>Rounds to the nearest half (ties to even) and returns its bits.</summary>
    public static ushort FromSingle(float value) => BitConverter.HalfToUInt16Bits((Half)value);
}
