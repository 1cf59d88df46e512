using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using SlmKit.Formats;

namespace SlmKit.Cli.Commands;

/// <summary>
/// <c>slm logits</c>: a conformance tool. Writes the logits of every position as little-endian float32,
/// row-major [n_tokens, n_vocab], or prints the top K per position.
/// </summary>
internal static class LogitsCommand
{
    public static Command Create(CliConsole console)
    {
        var model = CommonOptions.Model();
        var tokenizer = CommonOptions.Tokenizer();
        var threads = CommonOptions.Threads();
        var tokens = new Option<string>("--tokens") { Description = "Comma-separated token ids, e.g. 1,403,407", Required = true };
        var output = new Option<string?>("--out", "-o") { Description = "File for the raw float32 logits [n_tokens, n_vocab]" };
        var top = new Option<int?>("--top") { Description = "Print the K most likely tokens per position instead of (or as well as) writing --out" };
        var json = CommonOptions.Json();
        var command = new Command("logits", "Compute the logits of every position of a token sequence") { model, tokenizer, tokens, output, top, json, threads };
        command.SetAction(result =>
        {
            int[] ids = ParseTokens(result.GetValue(tokens)!);
            string? outPath = result.GetValue(output);
            int? topK = result.GetValue(top);
            if (outPath is null && topK is null)
                throw new SlmKitException("say where the logits go: --out FILE, or --top K to print them");
            if (topK is <= 0)
                throw new SlmKitException($"--top must be positive (got {topK})");

            using var slm = SlmModel.Load(CommonOptions.ModelPath(result.GetValue(model)), CommonOptions.ModelOptions(result.GetValue(tokenizer), result.GetValue(threads), Math.Max(ids.Length, 1)));
            float[] logits = slm.ComputeLogits(ids);
            int vocab = slm.Model.VocabSize;
            if (outPath is not null)
            {
                AtomicFile.Write(outPath, stream => stream.Write(MemoryMarshal.AsBytes(logits.AsSpan())));
                console.Error.WriteLine($"wrote {ids.Length}×{vocab} float32 logits to {outPath}");
            }
            if (topK is int k)
                PrintTop(console, slm, ids, logits, vocab, Math.Min(k, vocab), result.GetValue(json));
            return 0;
        });
        return command;
    }

    private static int[] ParseTokens(string text)
    {
        string[] parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
            throw new SlmKitException("--tokens: no token ids given");
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]) || ids[i] < 0)
                throw new SlmKitException($"--tokens: '{parts[i]}' is not a token id");
        }
        return ids;
    }

    private static void PrintTop(CliConsole console, SlmModel slm, int[] ids, float[] logits, int vocab, int k, bool json)
    {
        var order = new int[vocab];
        var keys = new float[vocab];
        var rows = new List<(int Position, int Token, (int Id, float Logit)[] Top)>();
        for (int p = 0; p < ids.Length; p++)
        {
            var row = logits.AsSpan(p * vocab, vocab);
            for (int i = 0; i < vocab; i++)
            {
                order[i] = i;
                keys[i] = -row[i];
            }
            keys.AsSpan().Sort(order.AsSpan());
            var best = new (int, float)[k];
            for (int i = 0; i < k; i++)
                best[i] = (order[i], row[order[i]]);
            rows.Add((p, ids[p], best));
        }

        if (json)
        {
            console.Out.WriteLine(JsonOutput.Write(w =>
            {
                w.WriteStartArray();
                foreach (var (position, token, best) in rows)
                {
                    w.WriteStartObject();
                    w.WriteNumber("position", position);
                    w.WriteNumber("token", token);
                    w.WriteStartArray("top");
                    foreach (var (id, logit) in best)
                    {
                        w.WriteStartObject();
                        w.WriteNumber("id", id);
                        w.WriteString("piece", slm.Tokenizer.TokenPiece(id));
                        w.WriteNumber("logit", logit);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }));
            return;
        }
        foreach (var (position, token, best) in rows)
        {
            console.Out.WriteLine($"position {position} (token {token}):");
            foreach (var (id, logit) in best)
                console.Out.WriteLine($"  {id,8} {logit,12:F5} '{slm.Tokenizer.TokenPiece(id)}'");
        }
    }
}
