using System.Diagnostics;
using System.Text;
using SlmKit.Kernels.Quantization;
using SlmKit.Tensors;

namespace SlmKit.Bench;

/// <summary>
/// Single-thread throughput of every quantized dot-product path on a SmolLM-sized matrix that stays in L2
/// (1536 rows × 576 or 768 columns): the measurement behind the path order in <see cref="QuantizedDot.Best"/>.
/// </summary>
internal static unsafe class KernelBench
{
    public static string Run()
    {
        var s = new StringBuilder();
        s.AppendLine("| type | " + string.Join(" | ", Enum.GetNames<QuantizedKernelPath>()) + " |");
        s.AppendLine("|---|" + string.Concat(Enumerable.Repeat("---:|", Enum.GetValues<QuantizedKernelPath>().Length)));
        GgmlType[] types = [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];
        var random = new Random(1);
        foreach (var type in types)
        {
            GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out int blockBytes);
            int cols = blockSize == 256 ? 768 : 576, rows = 1536, blocks = cols / blockSize;
            var x = new float[cols];
            for (int i = 0; i < cols; i++)
                x[i] = (float)(random.NextDouble() * 2 - 1);
            var w = new float[cols];
            var bytes = new byte[rows * blocks * blockBytes];
            for (int r = 0; r < rows; r++)
            {
                for (int i = 0; i < cols; i++)
                    w[i] = (float)(random.NextDouble() * 2 - 1);
                BlockQuantizer.QuantizeRow(type, w, bytes.AsSpan(r * blocks * blockBytes, blocks * blockBytes));
            }
            using var activations = new QuantizedActivations();
            activations.Quantize(x, 1, cols, BlockFormats.IsKQuant(type));
            var row = activations.Row(0);
            var line = new StringBuilder($"| {type} |");
            fixed (byte* p = bytes)
            {
                foreach (var path in Enum.GetValues<QuantizedKernelPath>())
                {
                    if (!QuantizedDot.IsAvailable(type, path))
                    {
                        line.Append(" – |");
                        continue;
                    }
                    float sink = 0;
                    double best = double.MaxValue;
                    for (int trial = 0; trial < 15; trial++)
                    {
                        var clock = Stopwatch.StartNew();
                        for (int rep = 0; rep < 20; rep++)
                        {
                            for (int r = 0; r < rows; r++)
                                sink += QuantizedDot.Dot(type, path, p + (long)r * blocks * blockBytes, row, blocks);
                        }
                        best = Math.Min(best, clock.Elapsed.TotalSeconds / 20);
                    }
                    line.Append($" {bytes.Length / best / 1e9:F1} GB/s |");
                    GC.KeepAlive(sink);
                }
            }
            s.AppendLine(line.ToString());
        }
        return s.ToString();
    }
}
