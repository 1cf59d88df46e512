using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SlmKit.Kernels.Quantization;

internal static unsafe partial class Avx512Dot
{
    /// <summary>
    /// The 512-bit way to multiply a pair of 32-element groups for the K-quant kernels (<see cref="Avx2Dot"/>'s,
    /// written once over <see cref="IGroupPairDot"/>): one vpmaddubsw + vpmaddwd on both groups, the halves then added.
    /// The unpacking stays 256-bit. Chosen only where nothing faster is available (see <see cref="QuantizedDot.Best"/>);
    /// on Zen 4, which splits 512-bit operations in two, its throughput is in docs/performance.md.
    /// </summary>
    internal readonly struct OneVector : IGroupPairDot
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(Vector256<byte> first, sbyte* firstActivations, Vector256<short> firstScales,
            Vector256<byte> second, sbyte* secondActivations, Vector256<short> secondScales)
        {
            var products = Avx512BW.MultiplyAddAdjacent(Join(first, second),
                Join(Vector256.Load(firstActivations), Vector256.Load(secondActivations)));
            var sums = Avx512BW.MultiplyAddAdjacent(products, Join(firstScales, secondScales));
            return sums.GetLower() + sums.GetUpper();
        }
    }
}
