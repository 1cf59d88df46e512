using System.Diagnostics;
using System.Runtime.Intrinsics;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Bench;

/// <summary>
/// Read bandwidth of main memory: threads summing disjoint parts of a 1 GiB buffer with 256-bit loads. The buffer is
/// allocated and written once, so a measurement can sit between the timed runs (a fraction of a second each). It comes
/// from <see cref="HugePages"/>, as SlmKit's loaded weights do: with 4 KB pages the same sum read ≈ 13 % less, and the
/// limit it gives would understate what the memory can deliver.
/// </summary>
internal sealed unsafe class MemoryBandwidth : IDisposable
{
    private const long Bytes = 1L << 30;

    private readonly byte* _buffer;
    private readonly WorkerPool _pool;
    private readonly SumWork _work;

    public MemoryBandwidth(int threads)
    {
        _buffer = HugePages.Allocate(Bytes);
        new Span<byte>(_buffer, (int)Bytes).Fill(1);
        _pool = new WorkerPool(threads);
        _work = new SumWork(_buffer, Bytes, threads * 8);
    }

    /// <summary>GB/s: the best of <paramref name="passes"/> passes over the buffer.</summary>
    public double MeasureGBps(int passes = 3)
    {
        double best = 0;
        for (int p = 0; p < passes; p++)
        {
            var clock = Stopwatch.StartNew();
            _pool.For(_work.Parts, _work);
            best = Math.Max(best, Bytes / clock.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }

    public void Dispose()
    {
        _pool.Dispose();
        HugePages.Free(_buffer);
    }

    private sealed class SumWork(byte* buffer, long bytes, int parts) : IParallelWork
    {
        public long Sink;

        public int Parts => parts;

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
