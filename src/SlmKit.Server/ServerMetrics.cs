using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using SlmKit.Inference;

namespace SlmKit.Server;

/// <summary>HTTP counters, rendered with the scheduler's in Prometheus' text format.</summary>
internal sealed class ServerMetrics
{
    private readonly ConcurrentDictionary<(string Endpoint, int Status), long> _requests = new();
    private long _inFlight;

    public void Started() => Interlocked.Increment(ref _inFlight);

    public void Finished(string endpoint, int status)
    {
        Interlocked.Decrement(ref _inFlight);
        _requests.AddOrUpdate((endpoint, status), 1, static (_, n) => n + 1);
    }

    public string Render(SchedulerMetrics s)
    {
        var text = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        void Metric(string name, string type, string help, double value)
        {
            text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            text.Append(name).Append(' ').Append(value.ToString("R", c)).Append('\n');
        }

        text.Append("# HELP slm_http_requests_total HTTP requests by endpoint and status code.\n# TYPE slm_http_requests_total counter\n");
        foreach (var ((endpoint, status), count) in _requests.OrderBy(p => p.Key.Endpoint, StringComparer.Ordinal).ThenBy(p => p.Key.Status))
            text.Append(c, $"slm_http_requests_total{{endpoint=\"{endpoint}\",code=\"{status}\"}} {count}\n");
        Metric("slm_http_requests_in_flight", "gauge", "HTTP requests being served.", Interlocked.Read(ref _inFlight));
        Metric("slm_slots", "gauge", "Continuous-batching slots (--parallel).", s.Slots);
        Metric("slm_active_sequences", "gauge", "Sequences being generated.", s.ActiveSequences);
        Metric("slm_queue_depth", "gauge", "Requests waiting for a slot.", s.QueueDepth);
        Metric("slm_generations_started_total", "counter", "Generations that got a slot.", s.RequestsStarted);
        Metric("slm_generations_completed_total", "counter", "Generations that finished.", s.RequestsCompleted);
        Metric("slm_generations_cancelled_total", "counter", "Generations cancelled (client gone).", s.RequestsCancelled);
        Metric("slm_generations_rejected_total", "counter", "Generations refused because the queue was full.", s.RequestsRejected);
        Metric("slm_prompt_tokens_total", "counter", "Prompt tokens prefilled.", s.PromptTokens);
        Metric("slm_generated_tokens_total", "counter", "Tokens generated.", s.GeneratedTokens);
        Metric("slm_decode_steps_total", "counter", "Batched decode steps.", s.DecodeSteps);
        Metric("slm_tokens_per_second", "gauge", "Tokens generated per second over the last 10 seconds.", s.RecentTokensPerSecond);
        return text.ToString();
    }
}
