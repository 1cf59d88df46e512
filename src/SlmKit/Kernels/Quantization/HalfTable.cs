using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SlmKit.Kernels.Quantization;

/// <summary>
/// IEEE half → float through a 65,536-entry table. Block scales are halves; .NET has no F16C intrinsic and its
/// software conversion branches, so a table load (the same trick ggml uses without F16C) is the fastest option.
/// Only the few hundred distinct scale values of a model are ever hot in cache.
/// </summary>
internal static class HalfTable
{
    private static readonly float[] s_values = Build();

    private static float[] Build()
    {
        var values = new float[65536];
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)BitConverter.UInt16BitsToHalf((ushort)i);
        return values;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(s_values), bits);

    /// <summary>The half stored little-endian at <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe float Load(byte* p) => ToSingle(Unsafe.ReadUnaligned<ushort>(p));

    /// <summary>Rounds to the nearest half (ties to even) and returns its bits.</summary>
    public static ushort FromSingle(float value) => BitConverter.HalfToUInt16Bits((Half)value);
}
