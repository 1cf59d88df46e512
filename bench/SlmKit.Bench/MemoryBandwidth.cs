using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SlmKit.Kernels;

namespace SlmKit.Bench;

/// <summary>Read bandwidth of main memory: threads summing disjoint parts of a 1 GiB buffer with 256-bit loads.</summary>
internal static unsafe class MemoryBandwidth
{
    public static double MeasureGBps(int threads, int passes = 5)
    {
        const long bytes = 1L << 30;
        byte* buffer = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 4096);
        try
        {
            new Span<byte>(buffer, (int)bytes).Fill(1);
            using var pool = new WorkerPool(threads);
            var work = new SumWork(buffer, bytes, threads * 8);
            double best = 0;
            for (int p = 0; p < passes; p++)
            {
                var clock = Stopwatch.StartNew();
                pool.For(threads * 8, work);
                best = Math.Max(best, bytes / clock.Elapsed.TotalSeconds / 1e9);
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    private sealed class SumWork(byte* buffer, long bytes, int parts) : IParallelWork
    {
        public long Sink;

        public void Execute(int index)
        {
            long part = bytes / parts;
            var p = (Vector256<long>*)(buffer + index * part);
            long count = part / 32;
            Vector256<long> a = default, b = default, c = default, d = default;
            for (long i = 0; i + 4 <= count; i += 4)
            {
                a += p[i];
                b += p[i + 1];
                c += p[i + 2];
                d += p[i + 3];
            }
            Interlocked.Add(ref Sink, Vector256.Sum(a + b + c + d));
        }
    }
}
