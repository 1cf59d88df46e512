using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Kernels.Quantization;
using SlmKit.Models;
using SlmKit.Tensors;

namespace SlmKit.Quantization;

/// <summary>Progress of a quantization: tensor <see cref="Index"/> of <see cref="Count"/> is done.</summary>
public sealed record QuantizationProgress(int Index, int Count, string Name, GgmlType Type, long InputBytesDone, long InputBytesTotal);

/// <summary>What a quantization produced.</summary>
public sealed record QuantizationSummary(int TensorCount, long InputBytes, long OutputBytes, IReadOnlyDictionary<GgmlType, int> TensorsByType);

/// <summary>
/// Converts an F32/F16/BF16 (or already quantized) GGUF, or a Hugging Face folder of a family <see cref="HuggingFaceGgufSource"/> converts, into a quantized GGUF:
/// metadata copied, general.file_type and general.quantization_version set, each tensor's type from
/// <see cref="QuantizationPlan"/>, rows quantized in parallel on the worker pool. The output is written under a temporary
/// name and renamed at the end, so a failure leaves no partial file.
/// </summary>
/// <remarks>
/// A folder is read directly through <see cref="HuggingFaceGgufSource"/> (the view <c>slm convert</c> writes from): no
/// intermediate GGUF is written. Matrices are quantized straight from the safetensors mapping; only what the conversion
/// changes (q/k row order, sub-F32 vectors, GPT-2's transposed and GPT-NeoX's and BLOOM's interleaved matrices) is
/// copied. Since the view gives the same metadata, names, order and tensor bytes as the converted GGUF, quantizing a
/// folder gives byte for byte the file that quantizing <c>slm convert</c>'s output gives.
/// </remarks>
public static class ModelQuantizer
{
    /// <summary>Quantizes <paramref name="inputPath"/>: a GGUF file, or a Hugging Face folder (config.json, safetensors, tokenizer).</summary>
    /// <exception cref="ModelFileException">The input is missing, damaged, or not a model this can quantize.</exception>
    /// <exception cref="SlmKitException">The output cannot be written where asked.</exception>
    public static QuantizationSummary Quantize(string inputPath, string outputPath, QuantizationTarget target,
        WorkerPool? pool = null, IProgress<QuantizationProgress>? progress = null)
    {
        string fullOutput = Path.GetFullPath(outputPath);
        if (Directory.Exists(fullOutput))
            throw new SlmKitException($"{outputPath}: the output is a folder; give the GGUF file to write");
        string? folder = Path.GetDirectoryName(fullOutput);
        if (folder is not null && !Directory.Exists(folder))
            throw new SlmKitException($"output folder '{folder}' does not exist");
        if (Directory.Exists(inputPath))
        {
            using var huggingFace = HuggingFaceGgufSource.Open(inputPath);
            return Quantize(huggingFace, huggingFace.Metadata, 3, GgufFile.DefaultAlignment, outputPath, target, pool, progress);
        }
        using var source = GgufFile.Open(inputPath);
        var metadata = source.MetadataKeys.Where(key => key != GgufFile.AlignmentKey)
            .Select(key => new KeyValuePair<string, object>(key, source.Metadata[key])).ToList();
        return Quantize(source, metadata, source.Version is 2 or 3 ? source.Version : 3, source.Alignment, outputPath, target, pool, progress);
    }

    private static QuantizationSummary Quantize(IWeightSource source, IReadOnlyList<KeyValuePair<string, object>> metadata, uint version,
        int alignment, string outputPath, QuantizationTarget target, WorkerPool? pool, IProgress<QuantizationProgress>? progress)
    {
        pool ??= WorkerPool.Shared;
        var values = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var (key, value) in metadata)
            values[key] = value;
        string? architecture = values.GetValueOrDefault("general.architecture") as string;
        long heads = architecture is null ? 0 : Integer(values.GetValueOrDefault(architecture + ".attention.head_count")) ?? 0;
        long kvHeads = architecture is null ? 0 : Integer(values.GetValueOrDefault(architecture + ".attention.head_count_kv")) ?? heads;
        int groupedQueryFactor = heads > 0 && kvHeads > 0 ? (int)(heads / kvHeads) : 1;
        IReadOnlyList<string> names = source.TensorNames;
        var plan = new QuantizationPlan(target, names, groupedQueryFactor);

        var writer = new GgufWriter(version, alignment);
        foreach (var (key, value) in metadata)
            writer.Set(key, value);
        writer.Set("general.file_type", QuantizationPlan.FileType(target));
        writer.Set("general.quantization_version", 2u);

        var tensors = new WeightTensor[names.Count];
        long inputTotal = 0, inputDone = 0, outputTotal = 0;
        for (int i = 0; i < names.Count; i++)
        {
            tensors[i] = source.Find(names[i])!;
            inputTotal += tensors[i].ByteLength;
        }
        var byType = new Dictionary<GgmlType, int>();
        var work = new RowWork();
        for (int i = 0; i < tensors.Length; i++)
        {
            var tensor = tensors[i];
            long[] dimensions = tensor.Dimensions;
            GgmlType? planned = plan.TypeFor(tensor.Name, dimensions);
            GgmlType type;
            if (planned is { } quantized && BlockFormats.IsQuantized(quantized))
            {
                type = quantized;
                byte[] bytes = work.Run(pool, tensor, type);
                writer.AddTensor(tensor.Name, type, dimensions, bytes);
                outputTotal += bytes.Length;
            }
            else if (GgmlTypeInfo.IsSupportedForCompute(tensor.Type))
            {
                // Unquantized: a float type the plan chose (a float target, or the F16 fallback) is written as such;
                // otherwise 1-D tensors become F32 (as llama.cpp's converters write them) and the rest keep their type.
                type = planned is GgmlType.F16 or GgmlType.BF16 or GgmlType.F32 ? planned.Value : dimensions.Length < 2 ? GgmlType.F32 : tensor.Type;
                if (type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16)
                    writer.AddTensor(tensor.Name, dimensions, Widen(tensor), type);
                else
                    writer.AddTensor(tensor.Name, type, dimensions, tensor.Bytes);
                outputTotal += GgmlTypeInfo.TryGetByteSize(type, tensor.ElementCount, dimensions.Length == 0 ? 1 : dimensions[^1]) ?? 0;
            }
            else
            {
                type = tensor.Type;
                writer.AddTensor(tensor.Name, type, dimensions, tensor.Bytes);
                outputTotal += tensor.ByteLength;
            }
            byType[type] = byType.GetValueOrDefault(type) + 1;
            inputDone += tensor.ByteLength;
            progress?.Report(new QuantizationProgress(i + 1, tensors.Length, tensor.Name, type, inputDone, inputTotal));
        }

        writer.Write(outputPath);
        return new QuantizationSummary(tensors.Length, inputTotal, outputTotal, byType);
    }

    /// <summary>An integer metadata value of any width, or null.</summary>
    private static long? Integer(object? value) => value is not null && GgufFile.TryAsInteger(value, out long result) ? result : null;

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
