using System.Diagnostics;
using SlmKit.Tensors;

namespace SlmKit.Kernels.Quantization;

/// <summary>
/// y = x · Wᵀ for block-quantized W, computed on the quantized bytes in place: the activations are quantized to int8
/// once per call (per 32 elements, or per 256 for the K types, as llama.cpp does), then every (row, token) pair is an
/// integer dot product scaled per block; in prefill, tiles of eight or sixteen rows × up to 64 tokens (32-element block
/// types, <see cref="QuantizedDot.BestRowTile"/>) or one row × four tokens (<see cref="QuantizedDot.BestTile"/>) share
/// each unpacked weight block. Rows are divided among the pool's threads by <see cref="RowSplit"/>, or, with two threads
/// decoding, at a learnt boundary (<see cref="DecodeBalance"/>); each weight row is read once per call and reused for
/// every token while it is in L1. Up to three matrices that read the same input (Q, K and V; gate and up) run in one
/// parallel region on one quantization of the input.
/// </summary>
internal static unsafe class QuantizedMatMul
{
    public const int MaxMatrices = 3;

    [ThreadStatic] private static QuantizedActivations? t_activations;
    [ThreadStatic] private static Work? t_work;

    private static readonly nint[] s_kernels = Table(type => (nint)QuantizedDot.Pointer(type, QuantizedDot.Best(type)));
    private static readonly nint[] s_tiles = Table(type => (nint)QuantizedDot.BestTile(type));
    private static readonly RowTile[] s_rowTiles = Table(QuantizedDot.BestRowTile);
    private static readonly nint[] s_rowRuns = Table(type => (nint)QuantizedDot.RowRunPointer(type));

    /// <summary>A kernel per quantized type, indexed by the type's number (default where there is none).</summary>
    private static T[] Table<T>(Func<GgmlType, T> choose)
    {
        var table = new T[64];
        foreach (GgmlType type in Enum.GetValues<GgmlType>())
        {
            if (BlockFormats.IsQuantized(type))
                table[(int)type] = choose(type);
        }
        return table;
    }

    public static void Multiply(WorkerPool pool, ReadOnlySpan<float> input, int tokens, WeightTensor weight, Span<float> output) =>
        Multiply(pool, input, tokens, weight, output, null, default, null, default);

    /// <summary>
    /// Multiplies the same input by up to three quantized matrices of the same row length whose types share an
    /// activation layout (all 32-element block types, or all K types): one activation quantization, one region.
    /// </summary>
    public static void Multiply(WorkerPool pool, ReadOnlySpan<float> input, int tokens,
        WeightTensor weight0, Span<float> output0, WeightTensor? weight1, Span<float> output1, WeightTensor? weight2, Span<float> output2)
    {
        int cols = checked((int)weight0.RowLength);
        BlocksPerRow(weight0, out _);
        foreach (var other in (ReadOnlySpan<WeightTensor?>)[weight1, weight2])
        {
            if (other is not null && (other.RowLength != cols || !ShareActivations(weight0.Type, other.Type)))
                throw new ArgumentException($"'{other.Name}' ({other.Type}, rows of {other.RowLength}) cannot share the input of '{weight0.Name}' ({weight0.Type}, rows of {cols})");
        }
        bool superBlocks = BlockFormats.IsKQuant(weight0.Type);
        var activations = t_activations ??= new QuantizedActivations();
        activations.Quantize(pool, input, tokens, cols, superBlocks);
        var work = t_work ??= new Work();
        // Two threads decoding: one split of all the region's rows, where the threads' measured speeds put it.
        var balance = pool.ThreadCount == 2 && tokens < RowSplit.PrefillTokens ? pool.Balance.For(weight0) : null;
        fixed (float* y0 = output0)
        fixed (float* y1 = output1)
        fixed (float* y2 = output2)
        {
            work.Begin(activations, tokens, balance is not null);
            work.Add(pool, weight0, y0);
            if (weight1 is not null)
                work.Add(pool, weight1, y1);
            if (weight2 is not null)
                work.Add(pool, weight2, y2);
            if (balance is not null)
                work.SplitAt(balance.FrontShare);
            pool.For(work.Count, work);
            if (balance is not null && work.TryGetHalves(out long frontTicks, out int frontRows, out long backTicks, out int backRows))
                balance.FrontShare = DecodeBalance.Next(balance.FrontShare, frontTicks, frontRows, backTicks, backRows);
            work.Clear();
        }
    }

    /// <summary>True when <paramref name="a"/> and <paramref name="b"/> can share one quantization of their input.</summary>
    public static bool ShareActivations(GgmlType a, GgmlType b) =>
        BlockFormats.IsQuantized(a) && BlockFormats.IsQuantized(b) && BlockFormats.IsKQuant(a) == BlockFormats.IsKQuant(b);

    /// <summary>Checks that <paramref name="weight"/>'s rows are whole blocks; returns the block count per row.</summary>
    private static int BlocksPerRow(WeightTensor weight, out long rowBytes)
    {
        GgmlTypeInfo.TryGetBlockLayout(weight.Type, out int blockSize, out int blockBytes);
        long cols = weight.RowLength;
        if (cols % blockSize != 0)
            throw new SlmKitException($"tensor '{weight.Name}' row length {cols} is not a whole number of {blockSize}-element {weight.Type} blocks");
        int blocks = checked((int)(cols / blockSize));
        rowBytes = (long)blocks * blockBytes;
        return blocks;
    }

    /// <summary>
    /// The parallel items of one region: the row ranges of each matrix in turn, or, balanced (two threads decoding), two
    /// items over the matrices' rows laid end to end: [0, split) and [split, end).
    /// </summary>
    private sealed class Work : IParallelWork
    {
        private readonly Matrix[] _matrices = new Matrix[MaxMatrices];
        private int _matrixCount;
        private int _tokens;
        private QuantizedActivations? _activations;
        private bool _balanced;
        private int _totalRows, _split;
        private readonly long[] _ticks = new long[2];
        private readonly int[] _threads = new int[2];

        /// <summary>Parallel items in the region.</summary>
        public int Count { get; private set; }

        public void Begin(QuantizedActivations activations, int tokens, bool balanced)
        {
            _activations = activations;
            _tokens = tokens;
            _balanced = balanced;
            _matrixCount = 0;
            _totalRows = 0;
            Count = balanced ? 2 : 0;
        }

        public void Add(WorkerPool pool, WeightTensor weight, float* y)
        {
            int rows = checked((int)weight.RowCount);
            int blocks = BlocksPerRow(weight, out long rowBytes);
            int rowsPerRange = RowSplit.RowsPerRange(rows, pool.ThreadCount, _tokens);
            _matrices[_matrixCount++] = new Matrix(
                (delegate*<byte*, ActivationRow, int, float>)s_kernels[(int)weight.Type],
                (delegate*<byte*, ActivationRow, int, float*, void>)s_tiles[(int)weight.Type],
                s_rowTiles[(int)weight.Type],
                (delegate*<byte*, long, ActivationRow, int, float*, int, void>)s_rowRuns[(int)weight.Type],
                weight.Data, rowBytes, blocks, rows, y, rowsPerRange, Count, _totalRows);
            _totalRows += rows;
            if (!_balanced)
                Count += RowSplit.RangeCount(rows, rowsPerRange);
        }

        /// <summary>
        /// Puts the split of a balanced region near <paramref name="frontShare"/> of its rows, at a multiple of
        /// <see cref="RowSplit.Alignment"/> rows into the matrix it falls in.
        /// </summary>
        public void SplitAt(double frontShare)
        {
            int target = (int)Math.Round(frontShare * _totalRows);
            int m = _matrixCount - 1;
            while (_matrices[m].FirstRow > target)
                m--;
            int within = target - _matrices[m].FirstRow;
            _split = _matrices[m].FirstRow + within / RowSplit.Alignment * RowSplit.Alignment;
        }

        /// <summary>Each half's time and rows, when two different threads ran them (only then do they compare speeds).</summary>
        public bool TryGetHalves(out long frontTicks, out int frontRows, out long backTicks, out int backRows)
        {
            frontTicks = _ticks[0];
            backTicks = _ticks[1];
            frontRows = _split;
            backRows = _totalRows - _split;
            return _threads[0] != _threads[1];
        }

        public void Clear()
        {
            Array.Clear(_matrices);
            _activations = null;
        }

        public void Execute(int index)
        {
            if (_balanced)
            {
                long start = Stopwatch.GetTimestamp();
                int first = index == 0 ? 0 : _split, last = index == 0 ? _split : _totalRows;
                for (int m = 0; m < _matrixCount; m++)
                {
                    ref readonly var matrix = ref _matrices[m];
                    int from = Math.Max(first, matrix.FirstRow), to = Math.Min(last, matrix.FirstRow + matrix.Rows);
                    if (from < to)
                        Rows(matrix, from - matrix.FirstRow, to - matrix.FirstRow);
                }
                _ticks[index] = Stopwatch.GetTimestamp() - start;
                _threads[index] = Environment.CurrentManagedThreadId;
                return;
            }
            int k = _matrixCount - 1;
            while (_matrices[k].FirstItem > index)
                k--;
            ref readonly var owner = ref _matrices[k];
            int begin = (index - owner.FirstItem) * owner.RowsPerRange;
            Rows(owner, begin, Math.Min(begin + owner.RowsPerRange, owner.Rows));
        }

        /// <summary>Rows [first, last) of <paramref name="matrix"/> for every token.</summary>
        private void Rows(in Matrix matrix, int first, int last)
        {
            var activations = _activations!;
            var kernel = matrix.Kernel;
            byte* w = matrix.Weights;
            float* y = matrix.Output;
            int blocks = matrix.Blocks, rows = matrix.Rows;
            if (_tokens == 1)
            {
                var only = activations.Row(0);
                if (matrix.RowRun != null)
                {
                    matrix.RowRun(w + first * matrix.RowBytes, matrix.RowBytes, only, blocks, y + first, last - first);
                    return;
                }
                for (int i = first; i < last; i++)
                    y[i] = kernel(w + i * matrix.RowBytes, only, blocks);
                return;
            }
            var tile = matrix.Tile;
            int tiled = tile == null ? 0 : _tokens / 4 * 4;
            float* four = stackalloc float[4];
            int r = first;
            var rowTile = matrix.RowTile;
            if (rowTile.Kernel != null)
            {
                // Groups of eight or sixteen rows while they last; the rows (a few KB) stay in L1 for every token.
                for (; r + rowTile.Rows <= last; r += rowTile.Rows)
                {
                    byte* weights = w + (long)r * matrix.RowBytes;
                    for (int t = 0; t < _tokens; t += RowTile.MaxTokens)
                    {
                        int count = Math.Min(RowTile.MaxTokens, _tokens - t);
                        rowTile.Kernel(weights, matrix.RowBytes, activations.Row(t), blocks, y + (long)t * rows + r, rows, count);
                    }
                }
            }
            for (; r < last; r++)
            {
                byte* weights = w + (long)r * matrix.RowBytes;
                for (int t = 0; t < tiled; t += 4)
                {
                    tile(weights, activations.Row(t), blocks, four);
                    for (int k = 0; k < 4; k++)
                        y[(long)(t + k) * rows + r] = four[k];
                }
                for (int t = tiled; t < _tokens; t++)
                    y[(long)t * rows + r] = kernel(weights, activations.Row(t), blocks);
            }
        }
    }

    private readonly struct Matrix(
        delegate*<byte*, ActivationRow, int, float> kernel, delegate*<byte*, ActivationRow, int, float*, void> tile,
        RowTile rowTile, delegate*<byte*, long, ActivationRow, int, float*, int, void> rowRun,
        byte* weights, long rowBytes, int blocks, int rows, float* output, int rowsPerRange, int firstItem, int firstRow)
    {
        public readonly delegate*<byte*, ActivationRow, int, float> Kernel = kernel;
        public readonly delegate*<byte*, ActivationRow, int, float*, void> Tile = tile;
        public readonly RowTile RowTile = rowTile;

        /// <summary>The decode kernel over a run of rows (<see cref="QuantizedDot.RowRunPointer"/>), or null.</summary>
        public readonly delegate*<byte*, long, ActivationRow, int, float*, int, void> RowRun = rowRun;
        public readonly byte* Weights = weights;
        public readonly long RowBytes = rowBytes;
        public readonly int Blocks = blocks;
        public readonly int Rows = rows;
        public readonly float* Output = output;
        public readonly int RowsPerRange = rowsPerRange;
        public readonly int FirstItem = firstItem;

        /// <summary>Where the matrix's rows start among the region's rows laid end to end.</summary>
        public readonly int FirstRow = firstRow;
    }
}
