using System.CommandLine;

namespace SlmKit.Cli.Commands;

/// <summary><c>slm info</c>: what a model is, as text or JSON.</summary>
internal static class InfoCommand
{
    public static Command Create(CliConsole console)
    {
        var model = CommonOptions.Model();
        var tokenizer = CommonOptions.Tokenizer();
        var json = CommonOptions.Json();
        var command = new Command("info", "Show a model's architecture, size, dtypes, context, vocabulary and tokenizer") { model, tokenizer, json };
        command.SetAction(result =>
        {
            string modelPath = CommonOptions.ModelPath(result.GetValue(model));
            // Mapped: info reads the metadata and a few tensors' headers, not every weight.
            using var slm = SlmModel.Load(modelPath, CommonOptions.ModelOptions(result.GetValue(tokenizer), threads: 1, memoryMap: true));
            var info = slm.Info;
            var tok = slm.Tokenizer;
            if (result.GetValue(json))
            {
                console.Out.WriteLine(JsonOutput.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("path", Path.GetFullPath(modelPath));
                    w.WriteString("format", info.SourceFormat);
                    w.WriteString("architecture", info.Architecture);
                    w.WriteString("family", info.Family);
                    w.WriteNumber("parameters", info.ParameterCount);
                    w.WriteStartObject("parameters_by_dtype");
                    foreach (var (type, count) in info.ParametersByType)
                        w.WriteNumber(type, count);
                    w.WriteEndObject();
                    w.WriteNumber("context_length", info.ContextLength);
                    w.WriteNumber("vocab_size", info.VocabSize);
                    w.WriteNumber("layers", info.LayerCount);
                    w.WriteNumber("hidden_size", info.HiddenSize);
                    w.WriteNumber("heads", info.HeadCount);
                    w.WriteNumber("kv_heads", info.KvHeadCount);
                    w.WriteNumber("head_dim", info.HeadDim);
                    w.WriteNumber("feed_forward_size", info.FeedForwardSize);
                    w.WriteBoolean("tied_embeddings", info.TiedEmbeddings);
                    w.WriteString("tokenizer", tok.Kind.ToString());
                    w.WriteNumber("tokenizer_vocab_size", tok.VocabSize);
                    w.WriteBoolean("chat_template", tok.ChatTemplate is not null);
                    w.WriteEndObject();
                }));
                return 0;
            }

            var o = console.Out;
            o.WriteLine($"architecture:    {info.Architecture} (family {info.Family}, from {info.SourceFormat})");
            o.WriteLine($"parameters:      {info.ParameterCount:N0} ({FormatCount(info.ParameterCount)})");
            o.WriteLine($"dtypes:          {string.Join(", ", info.ParametersByType.Select(p => $"{p.Key} {FormatCount(p.Value)}"))}");
            o.WriteLine($"context length:  {info.ContextLength}");
            o.WriteLine($"vocab size:      {info.VocabSize}");
            o.WriteLine($"layers:          {info.LayerCount}, hidden {info.HiddenSize}, heads {info.HeadCount} (KV {info.KvHeadCount}), head size {info.HeadDim}, FFN {info.FeedForwardSize}");
            o.WriteLine($"output head:     {(info.TiedEmbeddings ? "tied to the token embedding" : "separate")}");
            o.WriteLine($"tokenizer:       {tok.Kind}, {tok.VocabSize} tokens");
            o.WriteLine($"chat template:   {(tok.ChatTemplate is null ? "none" : "present")}");
            return 0;
        });
        return command;
    }

    private static string FormatCount(long n) => n switch
    {
        >= 1_000_000_000 => $"{n / 1e9:F2}B",
        >= 1_000_000 => $"{n / 1e6:F2}M",
        >= 1_000 => $"{n / 1e3:F1}K",
        _ => n.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
