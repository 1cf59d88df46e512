using SlmKit.Inference;

namespace SlmKit.Tests.Inference;

public sealed class SamplerTests
{
    [Fact]
    public void Greedy_picks_the_largest_logit_and_the_lowest_index_on_ties()
    {
        var sampler = new Sampler(GenerationOptions.Greedy);
        Assert.Equal(2, sampler.Sample(new float[] { 1, 3, 5, 5, 2 }, []));
    }

    [Fact]
    public void Top_k_of_one_is_greedy_whatever_the_temperature()
    {
        var sampler = new Sampler(new GenerationOptions { Temperature = 5, TopK = 1, Seed = 1 });
        for (int i = 0; i < 50; i++)
            Assert.Equal(3, sampler.Sample(new float[] { 1, 2, 0, 4, 3.9f }, []));
    }

    [Fact]
    public void The_same_seed_gives_the_same_draws_and_another_seed_differs()
    {
        float[] logits = Enumerable.Range(0, 100).Select(i => (float)Math.Sin(i)).ToArray();
        int[] Draw(ulong seed)
        {
            var sampler = new Sampler(new GenerationOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = seed });
            return Enumerable.Range(0, 40).Select(_ => sampler.Sample((float[])logits.Clone(), [])).ToArray();
        }
        Assert.Equal(Draw(42), Draw(42));
        Assert.NotEqual(Draw(42), Draw(43));
    }

    [Fact]
    public void Sampling_frequencies_follow_the_softmax_at_the_temperature()
    {
        float[] logits = [0f, 1f, 2f];
        var sampler = new Sampler(new GenerationOptions { Temperature = 2, TopK = 0, TopP = 1, MinP = 0, Seed = 7 });
        int[] counts = new int[3];
        const int draws = 30000;
        for (int i = 0; i < draws; i++)
            counts[sampler.Sample((float[])logits.Clone(), [])]++;
        double z = 1 + Math.Exp(0.5) + Math.Exp(1);
        for (int i = 0; i < 3; i++)
            Assert.Equal(Math.Exp(i / 2.0) / z, counts[i] / (double)draws, 0.015);
    }

    [Fact]
    public void Top_p_keeps_only_the_nucleus()
    {
        // Probabilities ≈ 0.665, 0.245, 0.09: top-p 0.6 keeps only the first.
        var sampler = new Sampler(new GenerationOptions { Temperature = 1, TopK = 0, TopP = 0.6f, MinP = 0, Seed = 3 });
        for (int i = 0; i < 200; i++)
            Assert.Equal(0, sampler.Sample(new float[] { 2, 1, 0 }, []));
    }

    [Fact]
    public void Min_p_drops_tokens_far_below_the_best()
    {
        var sampler = new Sampler(new GenerationOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0.5f, Seed = 3 });
        for (int i = 0; i < 200; i++)
            Assert.NotEqual(2, sampler.Sample(new float[] { 2, 1.9f, -5 }, []));
    }

    [Fact]
    public void Repetition_penalty_demotes_recent_tokens()
    {
        var sampler = new Sampler(GenerationOptions.Greedy with { RepetitionPenalty = 2f });
        Assert.Equal(1, sampler.Sample(new float[] { 4f, 3f }, [0]));
    }

    [Fact]
    public void Frequency_and_presence_penalties_subtract_per_occurrence_and_once()
    {
        var sampler = new Sampler(GenerationOptions.Greedy with { FrequencyPenalty = 1f, PresencePenalty = 0.5f });
        float[] logits = [5f, 3f];
        sampler.Sample(logits, [0, 0]);
        Assert.Equal(5f - 2f - 0.5f, logits[0]);
        Assert.Equal(3f, logits[1]);
    }

    [Theory]
    [InlineData(-1f, 40, 0.9f, 0.05f)]
    [InlineData(0.8f, -1, 0.9f, 0.05f)]
    [InlineData(0.8f, 40, 0f, 0.05f)]
    [InlineData(0.8f, 40, 1.5f, 0.05f)]
    [InlineData(0.8f, 40, 0.9f, 2f)]
    public void Out_of_range_settings_are_refused_with_a_clear_message(float temperature, int topK, float topP, float minP)
    {
        var options = new GenerationOptions { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP };
        var error = Assert.Throws<SlmKitException>(() => new Sampler(options));
        Assert.Matches("temperature|top-k|top-p|min-p", error.Message);
    }
}

public sealed class StopStringFilterTests
{
    [Fact]
    public void Text_before_a_stop_string_is_released_and_the_stop_string_is_cut()
    {
        var filter = new StopStringFilter(["\n\n", "END"]);
        string output = filter.Push("Hello E") + filter.Push("N") + filter.Push("Dless");
        Assert.Equal("Hello ", output);
        Assert.True(filter.Stopped);
    }

    [Fact]
    public void A_false_start_of_a_stop_string_is_released_once_it_cannot_match()
    {
        var filter = new StopStringFilter(["STOP"]);
        Assert.Equal("a", filter.Push("aST"));
        Assert.Equal("STx", filter.Push("x"));
        Assert.False(filter.Stopped);
        Assert.Equal("ST", filter.Push("ST") + filter.Drain());
    }

    [Fact]
    public void Without_stop_strings_text_passes_straight_through()
    {
        var filter = new StopStringFilter([]);
        Assert.Equal("abc", filter.Push("abc"));
    }
}
