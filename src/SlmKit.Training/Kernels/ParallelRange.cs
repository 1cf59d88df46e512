namespace SlmKit.Training;

/// <summary>
/// Parallel loops over coarse work items (blocks of rows, tiles, heads), never one task per element.
/// Every item writes its own outputs with a fixed inner order, so results do not depend on which thread ran
/// which item or on the thread count: that is what makes training bit-reproducible.
/// </summary>
internal static class ParallelRange
{
    /// <summary>Runs <paramref name="body"/> for 0..count-1 on up to <paramref name="threads"/> threads.</summary>
    public static void For(int count, int threads, Action<int> body)
    {
        if (threads <= 1 || count <= 1)
        {
            for (int i = 0; i < count; i++)
                body(i);
            return;
        }
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
    }

    /// <summary>Splits 0..length into chunks of at least <paramref name="minChunk"/> and runs <paramref name="body"/>(start, end) on each.</summary>
    public static void ForChunks(int length, int minChunk, int threads, Action<int, int> body)
    {
        if (length <= 0)
            return;
        int chunks = Math.Max(1, Math.Min(length / Math.Max(1, minChunk), threads * 4));
        if (threads <= 1 || chunks == 1)
        {
            body(0, length);
            return;
        }
        int size = (length + chunks - 1) / chunks;
        For(chunks, threads, c =>
        {
            int start = c * size;
            int end = Math.Min(length, start + size);
            if (start < end)
                body(start, end);
        });
    }
}
