using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace SlmKit.Kernels;

/// <summary>One piece of parallel work: <see cref="Execute"/> is called once for each index of a <see cref="WorkerPool.For"/>.</summary>
public interface IParallelWork
{
    void Execute(int index);
}

/// <summary>
/// A persistent pool of worker threads for kernels. A parallel region costs no allocation and no Task: the
/// calling thread works too, idle workers spin briefly (a decode step runs hundreds of regions per token, so
/// waking a sleeping thread each time would dominate) and then sleep on a semaphore.
/// </summary>
public sealed class WorkerPool : IDisposable
{
    /// <summary>
    /// Checks of the generation counter before an idle worker sleeps, one pause instruction apart: a worker must see a
    /// new region within a fraction of a microsecond (a decode step's smallest products take a few microseconds), and
    /// still spin for a millisecond or two (50,000 pauses of ≈ 25–55 ns on the benchmark machine) before giving its core
    /// back. The pause is issued directly: Thread.SpinWait(1) costs ≈ 46 ns and now and then re-measures its
    /// normalisation with clock_gettime, which showed up as 5 % of a busy worker's profile.
    /// </summary>
    private const int SpinIterationsBeforeSleep = 50000;

    private static WorkerPool? s_shared;
    private static readonly object s_sharedLock = new();

    private readonly Thread[] _threads;
    private readonly SemaphoreSlim[] _signals;
    private readonly int[] _sleeping;
    private readonly object _regionLock = new();
    private IParallelWork? _work;
    private int _count;
    private Counters _counters;
    private volatile bool _disposed;
    private Exception? _failure;

    /// <summary>Creates a pool that runs regions on <paramref name="threadCount"/> threads, the caller's included.</summary>
    public WorkerPool(int threadCount)
    {
        if (threadCount < 1)
            throw new SlmKitException($"thread count must be at least 1 (got {threadCount})");
        ThreadCount = threadCount;
        int workers = threadCount - 1;
        _threads = new Thread[workers];
        _signals = new SemaphoreSlim[workers];
        _sleeping = new int[workers];
        for (int i = 0; i < workers; i++)
        {
            _signals[i] = new SemaphoreSlim(0);
            int id = i;
            _threads[i] = new Thread(() => WorkerLoop(id)) { IsBackground = true, Name = $"slmkit-worker-{i}" };
            _threads[i].Start();
        }
    }

    /// <summary>Threads that run a region, the caller's included.</summary>
    public int ThreadCount { get; }

    /// <summary>Where this pool's two threads split each decode product, learnt from their speeds.</summary>
    internal DecodeBalance Balance { get; } = new();

    /// <summary>The process-wide pool, sized to the machine's cores until <see cref="ConfigureShared"/> says otherwise.</summary>
    public static WorkerPool Shared
    {
        get
        {
            if (s_shared is { } pool)
                return pool;
            lock (s_sharedLock)
                return s_shared ??= new WorkerPool(Environment.ProcessorCount);
        }
    }

    /// <summary>Replaces the shared pool with one of <paramref name="threadCount"/> threads.</summary>
    public static void ConfigureShared(int threadCount)
    {
        lock (s_sharedLock)
        {
            if (s_shared?.ThreadCount == threadCount)
                return;
            s_shared?.Dispose();
            s_shared = new WorkerPool(threadCount);
        }
    }

    /// <summary>
    /// Calls <c>work.Execute(i)</c> for every i in [0, count), spread over the pool's threads, and returns when all
    /// are done. When another thread holds the pool, the region runs on the calling thread alone.
    /// </summary>
    public void For(int count, IParallelWork work)
    {
        if (count <= 0)
            return;
        if (count == 1 || _threads.Length == 0 || !Monitor.TryEnter(_regionLock))
        {
            for (int i = 0; i < count; i++)
                work.Execute(i);
            return;
        }

        try
        {
            _work = work;
            _count = count;
            _counters.Next = 0;
            _counters.Claimed = 0;
            _failure = null;
            Volatile.Write(ref _counters.Remaining, _threads.Length);
            Interlocked.Increment(ref _counters.Generation);
            for (int i = 0; i < _signals.Length; i++)
            {
                if (Interlocked.Exchange(ref _sleeping[i], 0) == 1)
                    _signals[i].Release();
            }

            RunItems(fromBack: false);
            // The workers are normally a fraction of a microsecond behind: wait for them with pause, not with
            // SpinWait, whose sched_yield calls (≈ 1 µs each in a VM) made the caller notice late, once per region.
            for (int spins = 0; Volatile.Read(ref _counters.Remaining) != 0; spins++)
            {
                if (spins < SpinIterationsBeforeSleep)
                    Pause();
                else
                    Thread.Yield();
            }
            _work = null;
            if (_failure is { } failure)
                throw new AggregateException("a parallel kernel failed", failure);
        }
        finally
        {
            Monitor.Exit(_regionLock);
        }
    }

    /// <summary>
    /// Runs items until none is left. With two threads the caller takes them from the front and the worker from the
    /// back, so each thread's items are consecutive, and a product's rows are read in two sequential streams that the
    /// hardware prefetcher follows, however the items end up divided; with more threads they are taken in order.
    /// </summary>
    /// <remarks>
    /// Alternating 16-row chunks between the two threads (both taking the next item in order) made every chunk a new
    /// stream for each thread. Taking them from both ends, `slm bench` 128-token prefill, alternating runs: SmolLM-135M
    /// Q8_0 973 → 1055 tok/s, Q4_0 1320 → 1558 tok/s; decode (one range per thread either way) unchanged.
    /// </remarks>
    private void RunItems(bool fromBack)
    {
        var work = _work!;
        int count = _count;
        try
        {
            if (_threads.Length == 1)
            {
                // Each successful claim is one item; the front's k claims and the back's m claims are items 0…k−1 and
                // count−m…count−1, disjoint because k + m ≤ count, and together all of them.
                // A claim that took the last item ends the loop without another increment: on this VM each atomic on
                // the shared counter moves its cache line between the cores (≈ 250 ns), on the region's critical path.
                int taken = 0, claim;
                while ((claim = Interlocked.Increment(ref _counters.Claimed)) <= count)
                {
                    work.Execute(fromBack ? count - 1 - taken : taken);
                    taken++;
                    if (claim == count)
                        return;
                }
                return;
            }
            int i;
            while ((i = Interlocked.Increment(ref _counters.Next) - 1) < count)
            {
                work.Execute(i);
                if (i == count - 1)
                    return;
            }
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _failure, e, null);
            Volatile.Write(ref _counters.Next, count);
            Volatile.Write(ref _counters.Claimed, count);
        }
    }

    private void WorkerLoop(int id)
    {
        long seen = 0;
        while (true)
        {
            int spins = 0;
            long generation;
            while ((generation = Volatile.Read(ref _counters.Generation)) == seen)
            {
                if (_disposed)
                    return;
                if (++spins < SpinIterationsBeforeSleep)
                {
                    Pause();
                    continue;
                }

                // A full fence between publishing the flag and re-reading the generation: after a plain store the read
                // could be served first (x86 lets a load pass an earlier store), and a region started in between would
                // then neither be seen here nor find the flag set: the worker would sleep and the caller wait forever.
                Interlocked.Exchange(ref _sleeping[id], 1);
                if (Volatile.Read(ref _counters.Generation) != seen || _disposed)
                {
                    // Either we take our sleeping flag back, or the releaser already took it and released us.
                    if (Interlocked.Exchange(ref _sleeping[id], 0) == 0)
                        _signals[id].Wait();
                    continue;
                }
                _signals[id].Wait();
                spins = 0;
            }

            seen = generation;
            if (_disposed)
                return;
            RunItems(fromBack: true);
            Interlocked.Decrement(ref _counters.Remaining);
        }
    }

    /// <summary>
    /// The counters both threads touch in every region, each group on its own 64-byte line: the region's generation
    /// (workers poll it), the item claims (atomics from every thread) and the count of workers still running (the
    /// caller polls it). On one line with the pool's other fields, every claim invalidated the line the other thread
    /// was polling: an empty two-item region took 2.2-2.5 µs on the benchmark VM, on three lines 0.9-1.0 µs (a
    /// cross-core round trip there is ≈ 0.5 µs; alternating runs). Decoding runs ≈ 150 regions per token.
    /// </summary>
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 192)]
    private struct Counters
    {
        [System.Runtime.InteropServices.FieldOffset(0)] public long Generation;
        [System.Runtime.InteropServices.FieldOffset(64)] public int Claimed;
        [System.Runtime.InteropServices.FieldOffset(68)] public int Next;
        [System.Runtime.InteropServices.FieldOffset(128)] public int Remaining;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pause()
    {
        if (X86Base.IsSupported)
            X86Base.Pause();
        else if (ArmBase.IsSupported)
            ArmBase.Yield();
        else
            Thread.SpinWait(1);
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Interlocked.Increment(ref _counters.Generation);
        for (int i = 0; i < _signals.Length; i++)
        {
            if (Interlocked.Exchange(ref _sleeping[i], 0) == 1)
                _signals[i].Release();
        }
        foreach (var thread in _threads)
            thread.Join();
        foreach (var signal in _signals)
            signal.Dispose();
    }
}
