namespace SlmKit.Kernels;

/// <summary>
/// How a matrix product's rows are divided among the pool's threads. Decoding (a token or two) is bound by memory
/// reads: one contiguous range per thread (with two threads, quantized products move the boundary to where the
/// threads' measured speeds put it: <see cref="DecodeBalance"/>). Prefill (many tokens per row) is bound by
/// arithmetic: 16-row chunks claimed dynamically (from both ends with two threads, see <see cref="WorkerPool"/>), so
/// that a thread delayed by the operating system has its share taken by the others. Ranges are cut at multiples of 16
/// rows so that no two threads write into the same 64-byte line of the output.
/// </summary>
/// <remarks>
/// Measured on the benchmark models (2 cores, SmolLM-135M Q8_0, every matrix once per token): handing out 16-row chunks
/// dynamically gave 11 GB/s with two threads, less than one thread alone (29 GB/s), because each thread's reads jump
/// between scattered chunks and the hardware prefetcher never settles on a stream; one contiguous range per thread
/// gave 41 GB/s. Two or four ranges per thread fell in between (30 and 22 GB/s). In a 128-token prefill on a machine
/// shared with a build, one range per thread left a third of the time waiting for the slower thread.
/// </remarks>
public static class RowSplit
{
    /// <summary>Ranges start at multiples of this many rows (16 floats of output: one 64-byte line).</summary>
    internal const int Alignment = 16;

    /// <summary>Tokens from which a product counts as prefill (arithmetic-bound) rather than decode (memory-bound).</summary>
    public const int PrefillTokens = 4;

    /// <summary>
    /// Tokens from which the per-token steps between a batch's products (activation quantization, the gated activation)
    /// are spread over the pool, four tokens per item, rather than run on the calling thread while the others wait.
    /// </summary>
    internal const int ParallelStepTokens = 16;

    /// <summary>
    /// Rows in each range (the last may be shorter) for <paramref name="rows"/> rows of a product over
    /// <paramref name="tokens"/> tokens on <paramref name="threads"/> threads.
    /// </summary>
    public static int RowsPerRange(int rows, int threads, int tokens)
    {
        if (tokens >= PrefillTokens)
            return Alignment;
        int perThread = (rows + threads - 1) / Math.Max(1, threads);
        return Math.Max(Alignment, (perThread + Alignment - 1) / Alignment * Alignment);
    }

    /// <summary>Number of ranges of <paramref name="rowsPerRange"/> rows that cover <paramref name="rows"/>.</summary>
    public static int RangeCount(int rows, int rowsPerRange) => (rows + rowsPerRange - 1) / rowsPerRange;
}
