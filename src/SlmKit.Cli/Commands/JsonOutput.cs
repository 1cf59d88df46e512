using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace SlmKit.Cli.Commands;

/// <summary>Writes JSON without reflection (AOT-safe), keeping non-ASCII text readable.</summary>
internal static class JsonOutput
{
    public static string Write(Action<Utf8JsonWriter> body, bool indented = true)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            body(writer);
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
