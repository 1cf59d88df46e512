using SlmKit.Inference;

namespace SlmKit.Server;

/// <summary>
/// The sampling fields chat and text completions share. Unset fields keep SlmKit's defaults (llama.cpp's: temperature
/// 0.8, top-k 40, top-p 0.95, min-p 0.05); <c>top_k</c>, <c>min_p</c>, <c>repeat_penalty</c> and <c>ignore_eos</c> are llama.cpp-style
/// extensions.
/// </summary>
internal static class SamplingParameters
{
    public static GenerationOptions Read(JsonFields body, int? maxTokens, int remainingContext, IReadOnlyList<string> extraStops)
    {
        var defaults = new GenerationOptions();
        if (body.Integer("n", 1, 128) is long n && n != 1)
            throw ApiException.BadField("n", "only one choice per request is supported");
        var stops = body.StringOrStrings("stop", 16);
        for (int i = 0; i < stops.Count; i++)
        {
            if (stops[i].Length == 0)
                throw ApiException.BadField($"stop[{i}]", "a stop string must not be empty");
        }
        long? seed = body.Integer("seed", long.MinValue, long.MaxValue);
        return new GenerationOptions
        {
            MaxTokens = maxTokens ?? Math.Max(remainingContext, 0),
            Temperature = (float)(body.Number("temperature", 0, 2) ?? defaults.Temperature),
            TopP = (float)(body.Number("top_p", double.Epsilon, 1) ?? defaults.TopP),
            TopK = (int)(body.Integer("top_k", 0, int.MaxValue) ?? defaults.TopK),
            MinP = (float)(body.Number("min_p", 0, 1) ?? defaults.MinP),
            FrequencyPenalty = (float)(body.Number("frequency_penalty", -2, 2) ?? 0),
            PresencePenalty = (float)(body.Number("presence_penalty", -2, 2) ?? 0),
            RepetitionPenalty = (float)(body.Number("repeat_penalty", double.Epsilon, 10) ?? 1),
            Seed = seed is long s ? unchecked((ulong)s) : null,
            StopStrings = [.. stops, .. extraStops],
            StopAtEndOfGeneration = !(body.Bool("ignore_eos") ?? false),
        };
    }

    public static string FinishReasonText(FinishReason reason) => reason == FinishReason.Length ? "length" : "stop";
}
