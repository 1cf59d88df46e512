using System.Buffers.Binary;
using SlmKit.Tensors;

namespace SlmKit.Formats;

/// <summary>float32 to and from the 16-bit storage types, for writers and tests.</summary>
internal static class FloatConversion
{
    /// <summary>float32 to bfloat16 bits, rounded to nearest with ties to even; NaN stays a (quiet) NaN.</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
            return (ushort)((bits >> 16) | 0x0040);
        // Adding 0x7FFF plus the lowest kept bit rounds half-way cases towards the even neighbour.
        uint rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)(rounded >> 16);
    }

    public static float FromBFloat16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Writes <paramref name="source"/> into <paramref name="destination"/> as little-endian F32, F16 or BF16.</summary>
    public static void Convert(ReadOnlySpan<float> source, GgmlType type, Span<byte> destination)
    {
        switch (type)
        {
            case GgmlType.F32:
                for (int i = 0; i < source.Length; i++)
                    BinaryPrimitives.WriteSingleLittleEndian(destination[(4 * i)..], source[i]);
                break;
            case GgmlType.F16:
                // The Half conversion is IEEE round-to-nearest-even.
                for (int i = 0; i < source.Length; i++)
                    BinaryPrimitives.WriteHalfLittleEndian(destination[(2 * i)..], (Half)source[i]);
                break;
            case GgmlType.BF16:
                for (int i = 0; i < source.Length; i++)
                    BinaryPrimitives.WriteUInt16LittleEndian(destination[(2 * i)..], ToBFloat16(source[i]));
                break;
            default:
                throw new ArgumentException($"cannot convert floats to {type}", nameof(type));
        }
    }
}
