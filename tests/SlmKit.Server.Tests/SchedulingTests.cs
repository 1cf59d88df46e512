using System.Net;
using System.Text;
using System.Text.Json;
using SlmKit.Inference;
using SlmKit.Models;

namespace SlmKit.Server.Tests;

/// <summary>Continuous batching gives each request exactly what it gets alone; cancelled requests free their slot.</summary>
public sealed class SchedulingTests
{
    [Fact]
    public void Batched_decode_step_matches_one_sequence_at_a_time()
    {
        using var model = SlmModel.Load(TestModel.Path, new SlmModelOptions { Threads = 1 });
        var lm = model.Model;
        int vocab = lm.VocabSize;
        int[][] prompts = [[1, 5, 9], [1, 7], [1, 20, 30, 40, 50], [1]];
        var caches = prompts.Select(p => lm.CreateCache(64)).ToArray();
        var solo = prompts.Select(p => lm.CreateCache(64)).ToArray();
        var logits = new float[vocab];
        for (int i = 0; i < prompts.Length; i++)
        {
            lm.Forward(caches[i], prompts[i], logits, allPositions: false);
            lm.Forward(solo[i], prompts[i], logits, allPositions: false);
        }

        var batched = new float[prompts.Length * vocab];
        var expected = new float[vocab];
        for (int step = 0; step < 5; step++)
        {
            int[] next = prompts.Select((p, i) => (i * 13 + step * 7) % vocab).ToArray();
            lm.ForwardBatch(caches, next, batched);
            for (int i = 0; i < prompts.Length; i++)
            {
                lm.Forward(solo[i], [next[i]], expected, allPositions: false);
                Assert.Equal(expected, batched.AsSpan(i * vocab, vocab).ToArray());
                Assert.Equal(solo[i].Length, caches[i].Length);
            }
        }
    }

    [Fact]
    public async Task Concurrent_greedy_requests_return_what_each_returns_alone()
    {
        await using var server = await TestServer.StartAsync(new SlmServerOptions { Parallel = 4 });
        string[] prompts = ["Once upon a time", "The cat", "Lily and Tom went", "One day", "The sun was", "A little bird", "Bob had a ball", "It was"];
        string Body(string prompt) => JsonSerializer.Serialize(new { prompt, max_tokens = 40, temperature = 0 });
        async Task<string> Complete(string prompt)
        {
            var response = await server.PostJsonAsync("/v1/completions", Body(prompt));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return document.RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
        }

        var alone = new List<string>();
        foreach (string prompt in prompts)
            alone.Add(await Complete(prompt));
        var together = await Task.WhenAll(prompts.Select(Complete));

        Assert.Equal(alone, together);
        string metrics = await server.Http.GetStringAsync("/metrics");
        Assert.Contains("slm_decode_steps_total", metrics);
    }

    [Fact]
    public async Task A_client_that_disconnects_frees_its_slot_at_once()
    {
        // stories260K's 512-token context would let the "endless" request end by length before the disconnect is seen on a
        // busy machine; the long-context model keeps it running until the cancellation is what stops it.
        await using var server = await TestServer.StartAsync(
            new SlmServerOptions { Parallel = 1, MaxQueue = 4, ContextSize = TestModel.LongContext }, TestModel.LongContextPath);
        string endless = JsonSerializer.Serialize(new { prompt = "Once", max_tokens = 100000, ignore_eos = true, stream = true });
        using (var cts = new CancellationTokenSource())
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(endless, Encoding.UTF8, "application/json") };
            using var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            using var stream = await response.Content.ReadAsStreamAsync(cts.Token);
            await stream.ReadExactlyAsync(new byte[32], cts.Token);
            cts.Cancel();
        }

        // The only slot is free again: a short request gets it and completes (the endless one would hold it otherwise).
        var next = await server.PostJsonAsync("/v1/completions", JsonSerializer.Serialize(new { prompt = "Hi", max_tokens = 3 }));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        await WaitUntil(async () => (await server.Http.GetStringAsync("/metrics")).Contains("slm_generations_cancelled_total 1"));
    }

    [Fact]
    public async Task Scheduler_refuses_beyond_the_queue()
    {
        // The long-context model: the unbounded requests must still be running when the cancellation comes.
        using var model = SlmModel.Load(TestModel.LongContextPath, new SlmModelOptions { Threads = 1, ContextSize = TestModel.LongContext });
        using var scheduler = new BatchScheduler(model.Model, model.Tokenizer,
            new SchedulerOptions { Parallel = 1, MaxQueue = 1, ContextSize = TestModel.LongContext });
        using var cts = new CancellationTokenSource();
        var request = new GenerationRequest { PromptTokens = [1], Options = new GenerationOptions { MaxTokens = 100000, StopAtEndOfGeneration = false } };
        var submitted = new List<GenerationStream>();
        Assert.Throws<QueueFullException>(() =>
        {
            for (int i = 0; i < 10; i++)
                submitted.Add(scheduler.Submit(request, cts.Token));
        });
        Assert.InRange(submitted.Count, 2, 3);
        cts.Cancel();
        foreach (var stream in submitted)
            Assert.Equal(FinishReason.Cancelled, (await stream.Completion.WaitAsync(TimeSpan.FromSeconds(20))).Reason);
    }

    internal static async Task WaitUntil(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in 20 s");
            await Task.Delay(50);
        }
    }
}
