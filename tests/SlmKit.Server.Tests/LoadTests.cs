using System.Net;
using System.Text;
using System.Text.Json;

namespace SlmKit.Server.Tests;

/// <summary>A bounded load on loopback: the server stays up and every well-formed request completes.</summary>
public sealed class LoadTests
{
    [Fact]
    public async Task Two_hundred_requests_from_sixteen_clients_with_disconnects_and_garbage()
    {
        await using var server = await TestServer.StartAsync(new SlmServerOptions { Parallel = 4, MaxQueue = 64 });
        const int Requests = 200, Clients = 16;
        // Warm up, then take the memory baseline.
        Assert.Equal(HttpStatusCode.OK, (await server.PostJsonAsync("/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":4}")).StatusCode);
        long baseline = GC.GetTotalMemory(forceFullCollection: true);

        int next = -1, completed = 0, disconnected = 0, rejected = 0;
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var healthChecks = new List<HttpStatusCode>();
        using var stop = new CancellationTokenSource();
        var health = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var response = await server.Http.GetAsync("/health");
                lock (healthChecks)
                    healthChecks.Add(response.StatusCode);
                await Task.Delay(100);
            }
        });

        async Task Client()
        {
            using var http = new HttpClient { BaseAddress = server.Server.Address, Timeout = TimeSpan.FromSeconds(120) };
            int i;
            while ((i = Interlocked.Increment(ref next)) < Requests)
            {
                if (i % 10 == 7)
                {
                    string garbage = (i % 3) switch { 0 => "{\"messages\": [", 1 => "{\"messages\": 7}", _ => "\u0000\u0001not json" };
                    var bad = await http.PostAsync("/v1/chat/completions", new StringContent(garbage, Encoding.UTF8, "application/json"));
                    if (bad.StatusCode != HttpStatusCode.BadRequest)
                        failures.Enqueue($"request {i}: malformed body got {(int)bad.StatusCode}");
                    else
                        Interlocked.Increment(ref rejected);
                    continue;
                }
                bool disconnect = i % 3 == 0;
                string body = JsonSerializer.Serialize(new
                {
                    messages = new[] { new { role = "user", content = $"Tell story number {i}" } },
                    max_tokens = disconnect ? 400 : 16,
                    temperature = 0.8,
                    seed = i,
                    stream = true,
                    ignore_eos = disconnect,
                });
                using var cts = new CancellationTokenSource();
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                try
                {
                    using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
                    if (response.StatusCode != HttpStatusCode.OK)
                    {
                        failures.Enqueue($"request {i}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                        continue;
                    }
                    using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
                    int events = 0;
                    string? line;
                    bool done = false;
                    while ((line = await reader.ReadLineAsync(cts.Token)) is not null)
                    {
                        if (!line.StartsWith("data: ", StringComparison.Ordinal))
                            continue;
                        if (line == "data: [DONE]")
                        {
                            done = true;
                            break;
                        }
                        using var chunk = JsonDocument.Parse(line["data: ".Length..]);
                        if (disconnect && ++events == 3)
                        {
                            cts.Cancel();
                            Interlocked.Increment(ref disconnected);
                            break;
                        }
                    }
                    if (!disconnect && !done)
                        failures.Enqueue($"request {i}: stream ended without [DONE]");
                    else if (!disconnect)
                        Interlocked.Increment(ref completed);
                }
                catch (OperationCanceledException) when (disconnect && cts.IsCancellationRequested)
                {
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Clients).Select(_ => Task.Run(Client)));
        stop.Cancel();
        await health;

        Assert.Empty(failures);
        Assert.Equal(Requests, completed + disconnected + rejected);
        Assert.True(disconnected > 50, $"{disconnected} disconnects");
        Assert.All(healthChecks, status => Assert.Equal(HttpStatusCode.OK, status));
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/health")).StatusCode);

        // Every slot is released and nothing waits; memory is back near the baseline.
        await SchedulingTests.WaitUntil(async () =>
        {
            string metrics = await server.Http.GetStringAsync("/metrics");
            return metrics.Contains("slm_active_sequences 0\n") && metrics.Contains("slm_queue_depth 0\n");
        });
        long after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.True(after - baseline < 64L << 20, $"managed memory grew from {baseline >> 20} MiB to {after >> 20} MiB");
    }
}
