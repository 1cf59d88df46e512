using SlmKit.Tensors;

namespace SlmKit.Kernels.Quantization;

/// <summary>
/// y = x · Wᵀ for block-quantized W, computed on the quantized bytes in place: the activations are quantized to int8
/// once per call (per 32 elements, or per 256 for the K types, as llama.cpp does), then every (row, token) pair is an
/// integer dot product scaled per block; in prefill, four tokens at a time share each unpacked weight block
/// (<see cref="QuantizedDot.BestTile"/>). Rows are divided among the pool's threads by <see cref="RowSplit"/>; each
/// weight row is read once per call and reused for every token while it is in L1.
/// </summary>
internal static unsafe class QuantizedMatMul
{
    [ThreadStatic] private static QuantizedActivations? t_activations;
    [ThreadStatic] private static Work? t_work;

    private static readonly nint[] s_kernels = BuildKernelTable(tiles: false);
    private static readonly nint[] s_tiles = BuildKernelTable(tiles: true);

    private static nint[] BuildKernelTable(bool tiles)
    {
        var table = new nint[64];
        foreach (GgmlType type in Enum.GetValues<GgmlType>())
        {
            if (BlockFormats.IsQuantized(type))
                table[(int)type] = tiles ? (nint)QuantizedDot.BestTile(type) : (nint)QuantizedDot.Pointer(type, QuantizedDot.Best(type));
        }
        return table;
    }

    public static void Multiply(WorkerPool pool, ReadOnlySpan<float> input, int tokens, WeightTensor weight, int rows, int cols, Span<float> output)
    {
        GgmlTypeInfo.TryGetBlockLayout(weight.Type, out int blockSize, out int blockBytes);
        if (cols % blockSize != 0)
            throw new SlmKitException($"tensor '{weight.Name}' row length {cols} is not a whole number of {blockSize}-element {weight.Type} blocks");
        var activations = t_activations ??= new QuantizedActivations();
        activations.Quantize(input, tokens, cols, BlockFormats.IsKQuant(weight.Type));
        var kernel = (delegate*<byte*, ActivationRow, int, float>)s_kernels[(int)weight.Type];
        var tile = (delegate*<byte*, ActivationRow, int, float*, void>)s_tiles[(int)weight.Type];
        int blocks = cols / blockSize;
        fixed (float* y = output)
        {
            var work = t_work ??= new Work();
            work.Set(kernel, tile, weight.Data, (long)blocks * blockBytes, blocks, rows, tokens, activations, y, RowSplit.RowsPerRange(rows, pool.ThreadCount, tokens));
            pool.For(RowSplit.RangeCount(rows, work.RowsPerRange), work);
            work.Clear();
        }
    }

    private sealed class Work : IParallelWork
    {
        private delegate*<byte*, ActivationRow, int, float> _kernel;
        private delegate*<byte*, ActivationRow, int, float*, void> _tile;
        private byte* _w;
        private long _rowBytes;
        private int _blocks;
        private int _rows;
        private int _tokens;
        private QuantizedActivations? _activations;
        private float* _y;

        public int RowsPerRange { get; private set; }

        public void Set(delegate*<byte*, ActivationRow, int, float> kernel, delegate*<byte*, ActivationRow, int, float*, void> tile, byte* w, long rowBytes, int blocks, int rows, int tokens, QuantizedActivations activations, float* y, int rowsPerRange)
        {
            RowsPerRange = rowsPerRange;
            _kernel = kernel;
            _tile = tile;
            _w = w;
            _rowBytes = rowBytes;
            _blocks = blocks;
            _rows = rows;
            _tokens = tokens;
            _activations = activations;
            _y = y;
        }

        public void Clear()
        {
            _w = null;
            _y = null;
            _activations = null;
        }

        public void Execute(int index)
        {
            int first = index * RowsPerRange;
            int last = Math.Min(first + RowsPerRange, _rows);
            var activations = _activations!;
            var kernel = _kernel;
            if (_tokens == 1)
            {
                var row = activations.Row(0);
                for (int r = first; r < last; r++)
                    _y[r] = kernel(_w + r * _rowBytes, row, _blocks);
                return;
            }
            var tile = _tile;
            int tiled = tile == null ? 0 : _tokens / 4 * 4;
            float* four = stackalloc float[4];
            for (int r = first; r < last; r++)
            {
                byte* weights = _w + r * _rowBytes;
                for (int t = 0; t < tiled; t += 4)
                {
                    tile(weights, activations.Row(t), _blocks, four);
                    for (int k = 0; k < 4; k++)
                        _y[(long)(t + k) * _rows + r] = four[k];
                }
                for (int t = tiled; t < _tokens; t++)
                    _y[(long)t * _rows + r] = kernel(weights, activations.Row(t), _blocks);
            }
        }
    }
}
