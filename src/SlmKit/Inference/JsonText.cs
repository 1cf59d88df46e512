using System.Text.Encodings.Web;
using System.Text.Json;

namespace SlmKit.Inference;

/// <summary>Small JSON text helpers that need no serializer (trim- and AOT-safe).</summary>
public static class JsonText
{
    /// <summary><paramref name="value"/> as a JSON string literal, quotes included; non-ASCII text is kept as is.</summary>
    public static string Quote(string value) =>
        "\"" + JsonEncodedText.Encode(value, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).Value + "\"";
}
