using System.Runtime.CompilerServices;
using SlmKit.Tensors;

namespace SlmKit.Kernels;

/// <summary>
/// Where a two-thread decode product splits its rows: one thread reads rows [0, split) (the front item, which the
/// calling thread takes first), the other [split, rows), each as one sequential stream, and the split is learnt per
/// product from the two threads' measured time per row, so that both finish together.
/// </summary>
/// <remarks>
/// Halves are not equal work on a virtual machine. Timing each half of the decode products of SmolLM-135M Q8_0 (2
/// vCPUs, three processes) showed the faster thread's half taking 77-83 % as long as the slower one's in the attention
/// output product, 81-94 % in the FFN down product and 86-98 % in the output head; the faster thread then waited. Which
/// thread was the slower one changed from process to process (the worker in two, the caller in the third) and stayed
/// the same within one, so the split follows measurements rather than a fixed rule. Alternating `slm bench` runs, eight
/// rounds each: SmolLM-135M Q8_0 decode 224 → 248 and 217 → 251 tok/s. Stealing 16- to 64-row chunks from the slower
/// thread's end instead measured no faster (each steal starts a new stream, and each claim is a shared atomic).
/// </remarks>
internal sealed class DecodeBalance
{
    /// <summary>Weight of the newest measurement in the running estimate: a few dozen steps settle it, one outlier does not.</summary>
    internal const double Smoothing = 0.2;

    /// <summary>The front item's share stays within these bounds however one measurement turns out.</summary>
    internal const double MinShare = 0.2, MaxShare = 0.8;

    // Keyed by the product's first weight tensor and held weakly: a split lives as long as its model's weights, so a
    // pool that serves model after model does not keep one entry per product of every model it ever ran.
    private readonly ConditionalWeakTable<WeightTensor, Entry> _entries = new();

    /// <summary>The learnt split of the product whose first matrix is <paramref name="weight"/>.</summary>
    public Entry For(WeightTensor weight) => _entries.GetOrAdd(weight, static _ => new Entry());

    /// <summary>Products with a split held (for tests).</summary>
    internal int Count => _entries.Count();

    internal sealed class Entry
    {
        /// <summary>Fraction of the rows in the front item.</summary>
        public double FrontShare = 0.5;
    }

    /// <summary>
    /// The next estimate of the front share after a product whose front item took <paramref name="frontTicks"/> for
    /// <paramref name="frontRows"/> rows and whose back item <paramref name="backTicks"/> for <paramref name="backRows"/>
    /// (on another thread): the share that would have made both take equally long, smoothed.
    /// </summary>
    public static double Next(double share, long frontTicks, int frontRows, long backTicks, int backRows)
    {
        if (frontTicks <= 0 || backTicks <= 0 || frontRows <= 0 || backRows <= 0)
            return share;
        double frontPerRow = (double)frontTicks / frontRows, backPerRow = (double)backTicks / backRows;
        double balanced = backPerRow / (frontPerRow + backPerRow);
        return Math.Clamp(share + Smoothing * (balanced - share), MinShare, MaxShare);
    }
}
