using System.Text;

namespace SlmKit.Tests.Tokenizers;

/// <summary>
/// Seeded generator of awkward tokenizer input: several scripts, emoji (ZWJ sequences, skin tones, flags),
/// letters outside the BMP, whitespace runs (tabs, newlines, CRLF, non-breaking and ideographic spaces), digit runs,
/// code, punctuation and English contractions, mixed at random. Unassigned and private-use code points are avoided
/// (Unicode-version differences between .NET and llama.cpp would make them noise).
/// </summary>
internal static class TokenizerFuzzText
{
    private static readonly string[] s_pieces =
    [
        "hello", "Hello", "HELLO", "world", "the", " the", "tokenizer", "Once upon a time", "café", "naïve", "Zürich",
        "Ångström", "façade", "señor", "Привет", "мир", "Ελληνικά", "λόγος", "مرحبا", "بالعالم", "שלום", "नमस्ते",
        "हिन्दी", "สวัสดี", "ภาษาไทย", "你好", "世界", "中文字符", "こんにちは", "カタカナ", "한국어", "안녕하세요",
        "ქართული", "Հայերեն", "ᚠᚢᚦ", "𝐀𝐁𝐂", "𝓗𝓮𝓵𝓵𝓸", "𐐀𐐨", "𠀀𠀁", "😀", "🎉", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈",
        "🇫🇷🇯🇵", "❤️", "🦙", "☕", "✨", "\u00A0", "\u3000", "\u2003", "\u200B", "\u00AD", "é", "e\u0301",
        " ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\r\n", " \n", "\n ", "  \n\n  ", "\t \n",
        "0", "1", "12", "123", "1234", "12345", "3.14159", "1,000,000", "٣٤٥", "²³", "Ⅻ",
        "don't", "I'm", "WE'LL", "they're", "it's", "'s", "'S", "you've", "he'd",
        "def f(x):\n    return x * 2\n", "int main() { return 0; }", "for (i = 0; i < n; i++) {", "a->b", "x += 1;",
        "<div class=\"a\">", "</s>", "<s>", "<|endoftext|>", "[INST]", "```", "===", "...", "!!!", "?!", "—", "–",
        "«", "»", "“quoted”", "‘single’", "(", ")", "{", "}", "[", "]", "@user", "#tag", "$100", "50%", "a&b",
        "~", "^", "|", "\\", "/", "_", "__init__", "snake_case", "camelCase", "https://example.com/path?q=1",
        "e-mail", "co-op", "Mr.", "U.S.A.", "¿Qué?", "¡Hola!", "†", "©", "™", "°C", "€", "£", "¥", "→", "∑", "√",
    ];

    public static string[] Generate(int count, int seed)
    {
        var random = new Random(seed);
        var result = new string[count];
        var sb = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            sb.Clear();
            int parts = random.Next(1, 13);
            for (int p = 0; p < parts; p++)
            {
                sb.Append(s_pieces[random.Next(s_pieces.Length)]);
                switch (random.Next(6))
                {
                    case 0: sb.Append(' '); break;
                    case 1: sb.Append(RandomLetters(random)); break;
                    case 2 when random.Next(3) == 0: sb.Append(' ', random.Next(2, 6)); break;
                }
            }
            result[i] = sb.ToString();
        }
        return result;
    }

    private static string RandomLetters(Random random)
    {
        // Runs of random characters from a few blocks, to reach vocabulary entries no fixed list would.
        (int Low, int High)[] blocks = [(0x61, 0x7A), (0x41, 0x5A), (0x30, 0x39), (0xE0, 0xFF), (0x430, 0x44F), (0x3B1, 0x3C9), (0x4E00, 0x4E80), (0x1F600, 0x1F64F), (0x21, 0x2F)];
        (int low, int high) = blocks[random.Next(blocks.Length)];
        var sb = new StringBuilder();
        int n = random.Next(1, 6);
        for (int i = 0; i < n; i++)
            sb.Append(char.ConvertFromUtf32(random.Next(low, high + 1)));
        return sb.ToString();
    }
}
