using System.Diagnostics;
using System.Text;
using SlmKit.Kernels.Quantization;
using SlmKit.Tensors;

namespace SlmKit.Bench;

/// <summary>
/// Single-thread throughput of every quantized dot-product path on a SmolLM-sized matrix that stays in L2
/// (1536 rows × 576 or 768 columns): the measurement behind the path order in <see cref="QuantizedDot.Best"/>; and of
/// every prefill row tile over a 64-token batch, behind <see cref="QuantizedDot.BestRowTile"/>.
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
            var bytes = RandomMatrix(type, rows, cols, random);
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
        s.AppendLine();
        s.Append(RowTiles());
        return s.ToString();
    }

    /// <summary>A rows × cols matrix of uniform random values in [−1, 1), quantized to <paramref name="type"/>.</summary>
    private static byte[] RandomMatrix(GgmlType type, int rows, int cols, Random random)
    {
        GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out int blockBytes);
        int rowBytes = cols / blockSize * blockBytes;
        var w = new float[cols];
        var bytes = new byte[rows * rowBytes];
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < cols; i++)
                w[i] = (float)(random.NextDouble() * 2 - 1);
            BlockQuantizer.QuantizeRow(type, w, bytes.AsSpan(r * rowBytes, rowBytes));
        }
        return bytes;
    }

    /// <summary>GFLOP/s of each row tile path: a 1536 × 576 matrix against 64 tokens, one thread.</summary>
    private static string RowTiles()
    {
        const int rows = 1536, cols = 576, blocks = cols / 32, tokens = 64;
        QuantizedKernelPath[] paths = [QuantizedKernelPath.Vector256, QuantizedKernelPath.Vector256Vnni, QuantizedKernelPath.Vector512];
        var s = new StringBuilder();
        s.AppendLine("| type | " + string.Join(" | ", paths.Select(p => $"{p} tile")) + " |");
        s.AppendLine("|---|" + string.Concat(Enumerable.Repeat("---:|", paths.Length)));
        var random = new Random(2);
        var x = new float[tokens * cols];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)(random.NextDouble() * 2 - 1);
        using var activations = new QuantizedActivations();
        activations.Quantize(x, tokens, cols, superBlocks: false);
        foreach (var type in (GgmlType[])[GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1])
        {
            GgmlTypeInfo.TryGetBlockLayout(type, out _, out int blockBytes);
            var bytes = RandomMatrix(type, rows, cols, random);
            var line = new StringBuilder($"| {type} |");
            long rowBytes = (long)blocks * blockBytes;
            fixed (byte* p = bytes)
            {
                foreach (var path in paths)
                {
                    int tileRows = QuantizedDot.RowTileRows(type, path);
                    if (tileRows == 0)
                    {
                        line.Append(" – |");
                        continue;
                    }
                    var results = new float[tileRows * tokens];
                    double best = double.MaxValue;
                    for (int trial = 0; trial < 15; trial++)
                    {
                        var clock = Stopwatch.StartNew();
                        for (int r = 0; r < rows; r += tileRows)
                            QuantizedDot.DotRows(type, path, p + r * rowBytes, rowBytes, activations.Row(0), blocks, tokens, results);
                        best = Math.Min(best, clock.Elapsed.TotalSeconds);
                    }
                    line.Append($" {2.0 * rows * cols * tokens / best / 1e9:F0} GFLOP/s |");
                }
            }
            s.AppendLine(line.ToString());
        }
        return s.ToString();
    }
}
