using System.Buffers;
using System.Text;

namespace SlmKit.Tokenizers;

/// <summary>
/// Turns tokens into text one at a time, as they are generated. <see cref="Append"/> returns only complete characters:
/// the bytes of a multi-byte UTF-8 character split over several byte-fallback tokens are held back until the
/// character is complete. The concatenation of all returned strings plus <see cref="Flush"/> equals
/// <see cref="Tokenizer.Decode"/> of the same ids. Not thread-safe; create one per generation.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly Tokenizer _tokenizer;
    private readonly bool _skipSpecial;
    private readonly ArrayBufferWriter<byte> _pending = new(64);
    private bool _emittedAny;

    internal StreamingDecoder(Tokenizer tokenizer, bool skipSpecial)
    {
        _tokenizer = tokenizer;
        _skipSpecial = skipSpecial;
    }

    /// <summary>Adds one token and returns the text it completes (possibly empty).</summary>
    public string Append(int id)
    {
        _tokenizer.AppendPieceBytes(id, _skipSpecial, ref _emittedAny, _pending);
        ReadOnlySpan<byte> bytes = _pending.WrittenSpan;
        int complete = bytes.Length - IncompleteTailLength(bytes);
        if (complete == 0)
            return string.Empty;
        string text = Encoding.UTF8.GetString(bytes[..complete]);
        byte[] tail = bytes[complete..].ToArray();
        _pending.Clear();
        _pending.Write(tail);
        return text;
    }

    /// <summary>Returns whatever is held back (an incomplete character becomes U+FFFD) and resets the decoder.</summary>
    public string Flush()
    {
        string text = Encoding.UTF8.GetString(_pending.WrittenSpan);
        _pending.Clear();
        _emittedAny = false;
        return text;
    }

    /// <summary>
    /// Length of a trailing, still-valid but unfinished UTF-8 sequence. Cutting before its lead byte never changes how
    /// the earlier bytes decode, so the streamed text equals a one-shot decode.
    /// </summary>
    private static int IncompleteTailLength(ReadOnlySpan<byte> bytes)
    {
        for (int back = 1; back <= 3 && back <= bytes.Length; back++)
        {
            byte b = bytes[^back];
            if ((b & 0xC0) == 0x80)
                continue; // continuation byte: keep looking for the lead
            int needed = b switch
            {
                >= 0xC2 and <= 0xDF => 2,
                >= 0xE0 and <= 0xEF => 3,
                >= 0xF0 and <= 0xF4 => 4,
                _ => 0,
            };
            if (needed <= back)
                return 0;
            // Check the second byte's allowed range so an invalid prefix is not held back.
            if (back >= 2)
            {
                byte second = bytes[^(back - 1)];
                bool ok = b switch
                {
                    0xE0 => second >= 0xA0,
                    0xED => second <= 0x9F,
                    0xF0 => second >= 0x90,
                    0xF4 => second <= 0x8F,
                    _ => true,
                };
                if (!ok)
                    return 0;
            }
            return back;
        }
        return 0;
    }
}
