using System.Runtime.CompilerServices;
using SlmKit.Kernels;
using SlmKit.Tensors;

namespace SlmKit.Tests.Kernels;

public class DecodeBalanceTests
{
    [Fact]
    public void Equally_fast_threads_keep_an_even_split()
    {
        Assert.Equal(0.5, DecodeBalance.Next(0.5, 1000, 300, 1000, 300), 12);
    }

    [Fact]
    public void A_front_thread_twice_as_slow_per_row_moves_the_split_towards_a_third()
    {
        // Balanced share: back per-row time / (front + back) = 1 / (2 + 1); one smoothed step from 0.5.
        double next = DecodeBalance.Next(0.5, 2000, 100, 1000, 100);
        Assert.Equal(0.5 + DecodeBalance.Smoothing * (1.0 / 3 - 0.5), next, 12);
    }

    [Fact]
    public void Repeated_measurements_settle_where_both_threads_finish_together()
    {
        // Front thread 3 ticks per row, back thread 2: equal times when the front takes 2/5 of the rows.
        const int rows = 1000;
        double share = 0.5;
        for (int step = 0; step < 60; step++)
        {
            int front = (int)(share * rows);
            share = DecodeBalance.Next(share, 3L * front, front, 2L * (rows - front), rows - front);
        }
        Assert.InRange(share, 0.39, 0.41);
    }

    [Fact]
    public void The_share_stays_within_its_bounds_however_lopsided_a_measurement_is()
    {
        double share = 0.5;
        for (int step = 0; step < 50; step++)
            share = DecodeBalance.Next(share, 1_000_000, 10, 1, 10);
        Assert.Equal(DecodeBalance.MinShare, share);
        for (int step = 0; step < 50; step++)
            share = DecodeBalance.Next(share, 1, 10, 1_000_000, 10);
        Assert.Equal(DecodeBalance.MaxShare, share);
    }

    [Fact]
    public void A_half_without_a_measurement_leaves_the_share_unchanged()
    {
        Assert.Equal(0.42, DecodeBalance.Next(0.42, 0, 10, 500, 10));
        Assert.Equal(0.42, DecodeBalance.Next(0.42, 500, 0, 500, 10));
    }

    [Fact]
    public void A_learnt_split_is_dropped_with_its_weights()
    {
        var balance = new DecodeBalance();
        var kept = Tensor("kept");
        balance.For(kept).FrontShare = 0.6;
        LearnForATensorThatIsThenDropped(balance);
        Assert.Equal(2, balance.Count);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.Equal(1, balance.Count);
        Assert.Equal(0.6, balance.For(kept).FrontShare);
        GC.KeepAlive(kept);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void LearnForATensorThatIsThenDropped(DecodeBalance balance) => balance.For(Tensor("dropped")).FrontShare = 0.3;

    private static unsafe WeightTensor Tensor(string name) => new(name, GgmlType.Q8_0, [4, 32], null, 0);
}
