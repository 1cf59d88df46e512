using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Kernels.Quantization;
using SlmKit.Tensors;

namespace SlmKit.Quantization;

/// <summary>Progress of a quantization: tensor <see cref="Index"/> of <see cref="Count"/> is done.</summary>
public sealed record QuantizationProgress(int Index, int Count, string Name, GgmlType Type, long InputBytesDone, long InputBytesTotal);

/// <summary>What a quantization produced.</summary>
public sealed record QuantizationSummary(int TensorCount, long InputBytes, long OutputBytes, IReadOnlyDictionary<GgmlType, int> TensorsByType);

/// <summary>
/// Converts an F32/F16/BF16 (or already quantized) GGUF into a quantized GGUF: metadata copied, general.file_type and
/// general.quantization_version set, each tensor's type from <see cref="QuantizationPlan"/>, rows quantized in parallel
/// on the worker pool. The output is written under a temporary name and renamed at the end, so a failure leaves no
/// partial file.
/// </summary>
public static class ModelQuantizer
{
    public static QuantizationSummary Quantize(string inputPath, string outputPath, QuantizationTarget target,
        WorkerPool? pool = null, IProgress<QuantizationProgress>? progress = null)
    {
        pool ??= WorkerPool.Shared;
        using var source = GgufFile.Open(inputPath);
        string? architecture = source.Architecture;
        long heads = architecture is null ? 0 : source.GetInteger(architecture + ".attention.head_count") ?? 0;
        long kvHeads = architecture is null ? 0 : source.GetInteger(architecture + ".attention.head_count_kv") ?? heads;
        int groupedQueryFactor = heads > 0 && kvHeads > 0 ? (int)(heads / kvHeads) : 1;
        var plan = new QuantizationPlan(target, source.TensorNames, groupedQueryFactor);

        var writer = new GgufWriter(source.Version is 2 or 3 ? source.Version : 3, source.Alignment);
        foreach (string key in source.MetadataKeys)
        {
            if (key != GgufFile.AlignmentKey)
                writer.Set(key, source.Metadata[key]);
        }
        writer.Set("general.file_type", QuantizationPlan.FileType(target));
        writer.Set("general.quantization_version", 2u);

        long inputTotal = 0, inputDone = 0, outputTotal = 0;
        foreach (var info in source.Tensors)
            inputTotal += info.ByteLength;
        var byType = new Dictionary<GgmlType, int>();
        var work = new RowWork();
        for (int i = 0; i < source.Tensors.Count; i++)
        {
            var info = source.Tensors[i];
            var tensor = source.Find(info.Name)!;
            GgmlType? planned = plan.TypeFor(info.Name, info.Dimensions);
            GgmlType type;
            long[] dimensions = [.. info.Dimensions];
            if (planned is { } quantized && BlockFormats.IsQuantized(quantized))
            {
                type = quantized;
                byte[] bytes = work.Run(pool, tensor, type);
                writer.AddTensor(info.Name, type, dimensions, bytes);
                outputTotal += bytes.Length;
            }
            else if (GgmlTypeInfo.IsSupportedForCompute(info.Type))
            {
                // Unquantized: 1-D tensors become F32 (as llama.cpp's converters write them); an F16 fallback stays F16.
                type = planned == GgmlType.F16 ? GgmlType.F16 : info.Dimensions.Count < 2 ? GgmlType.F32 : info.Type;
                float[] values = Widen(tensor);
                if (type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16)
                    writer.AddTensor(info.Name, dimensions, values, type);
                else
                    writer.AddTensor(info.Name, type, dimensions, tensor.Bytes);
                outputTotal += GgmlTypeInfo.TryGetByteSize(type, info.ElementCount, info.Dimensions.Count == 0 ? 1 : info.Dimensions[^1]) ?? 0;
            }
            else
            {
                type = info.Type;
                writer.AddTensor(info.Name, type, dimensions, tensor.Bytes);
                outputTotal += info.ByteLength;
            }
            byType[type] = byType.GetValueOrDefault(type) + 1;
            inputDone += info.ByteLength;
            progress?.Report(new QuantizationProgress(i + 1, source.Tensors.Count, info.Name, type, inputDone, inputTotal));
        }

        string? folder = Path.GetDirectoryName(Path.GetFullPath(outputPath));
        if (folder is not null && !Directory.Exists(folder))
            throw new SlmKitException($"output folder '{folder}' does not exist");
        writer.Write(outputPath);
        return new QuantizationSummary(source.Tensors.Count, inputTotal, outputTotal, byType);
    }

    private static unsafe float[] Widen(WeightTensor tensor)
    {
        var values = new float[tensor.ElementCount];
        int cols = (int)tensor.RowLength;
        for (long r = 0; r < tensor.RowCount; r++)
            MatMul.WidenRow(tensor.Data, tensor.Type, cols, (int)r, values.AsSpan((int)(r * cols), cols));
        return values;
    }

    /// <summary>Quantizes the rows of one tensor in parallel: each item widens a few rows to F32 and quantizes them.</summary>
    private sealed unsafe class RowWork : IParallelWork
    {
        private const int RowsPerItem = 8;
        [ThreadStatic] private static float[]? t_row;

        private WeightTensor? _tensor;
        private GgmlType _type;
        private byte[] _output = [];
        private int _rowBytes;

        public byte[] Run(WorkerPool pool, WeightTensor tensor, GgmlType type)
        {
            GgmlTypeInfo.TryGetBlockLayout(type, out int blockSize, out int blockBytes);
            long rows = tensor.RowCount;
            int cols = checked((int)tensor.RowLength);
            _tensor = tensor;
            _type = type;
            _rowBytes = cols / blockSize * blockBytes;
            _output = new byte[checked(rows * _rowBytes)];
            pool.For((int)((rows + RowsPerItem - 1) / RowsPerItem), this);
            _tensor = null;
            return _output;
        }

        public void Execute(int index)
        {
            var tensor = _tensor!;
            int cols = (int)tensor.RowLength;
            var row = t_row is { } buffer && buffer.Length >= cols ? buffer : (t_row = new float[cols]);
            long first = (long)index * RowsPerItem, last = Math.Min(first + RowsPerItem, tensor.RowCount);
            for (long r = first; r < last; r++)
            {
                MatMul.WidenRow(tensor.Data, tensor.Type, cols, (int)r, row.AsSpan(0, cols));
                BlockQuantizer.QuantizeRow(_type, row.AsSpan(0, cols), _output.AsSpan((int)(r * _rowBytes), _rowBytes));
            }
        }
    }
}
