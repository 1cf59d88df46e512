using System.Buffers.Binary;
using System.Text;

namespace SlmKit.Tokenizers;

public sealed partial class Tokenizer
{
    /// <summary>
    /// Loads a llama2.c <c>tokenizer.bin</c> (e.g. <c>tok512.bin</c>): int32 max token length, then per token a float32
    /// score, an int32 byte length and the UTF-8 bytes. Spaces are stored literally (not as "▁"); BOS/EOS, stored as
    /// "\n&lt;s&gt;\n" and "\n&lt;/s&gt;\n", are exposed as "&lt;s&gt;" and "&lt;/s&gt;". Encoding is llama2.c's: dummy
    /// space prefix, highest-score merges, byte fallback; BOS = 1 is added, EOS = 2 is not.
    /// </summary>
    /// <param name="tokenizerBinPath">Path of the tokenizer file.</param>
    /// <param name="vocabSize">The model's vocabulary size (the file does not store it).</param>
    public static Tokenizer FromLlama2C(string tokenizerBinPath, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(tokenizerBinPath);
        if (vocabSize < 3)
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, "a llama2.c vocabulary has at least <unk>, <s> and </s>");
        if (!File.Exists(tokenizerBinPath))
            throw new ModelFileException(tokenizerBinPath, "not found");
        byte[] data = File.ReadAllBytes(tokenizerBinPath);
        if (data.Length < 4)
            throw new ModelFileException(tokenizerBinPath, $"is {data.Length} bytes, too short for a llama2.c tokenizer");

        var pieces = new string[vocabSize];
        var scores = new float[vocabSize];
        var attributes = new TokenAttributes[vocabSize];
        int offset = 4;
        for (int i = 0; i < vocabSize; i++)
        {
            if (data.Length - offset < 8)
                throw new ModelFileException(tokenizerBinPath, $"ends inside token {i} of {vocabSize} (is vocabSize right?)");
            scores[i] = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(offset));
            int length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(offset + 4));
            offset += 8;
            if (length < 0 || length > data.Length - offset)
                throw new ModelFileException(tokenizerBinPath, $"token {i} claims {length} bytes but {data.Length - offset} remain");
            ReadOnlySpan<byte> bytes = data.AsSpan(offset, length);
            offset += length;
            if (length == 1 && bytes[0] >= 0x80)
            {
                // Old files store the byte tokens raw; such a byte is not UTF-8 text.
                pieces[i] = ((char)bytes[0]).ToString();
                attributes[i] = TokenAttributes.Byte;
                continue;
            }
            string piece = Encoding.UTF8.GetString(bytes);
            pieces[i] = piece.Trim('\n') is "<s>" or "</s>" && i is 1 or 2 ? piece.Trim('\n') : piece;
            attributes[i] = i switch
            {
                0 => TokenAttributes.Unknown,
                1 or 2 => TokenAttributes.Control,
                _ when piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>' => TokenAttributes.Byte,
                _ => TokenAttributes.Normal,
            };
        }

        return new Tokenizer(new TokenizerDefinition
        {
            Kind = TokenizerKind.SentencePieceBpe,
            Pieces = pieces,
            Scores = scores,
            Attributes = attributes,
            RawSplitIds = [0, 1, 2],
            AddSpacePrefix = true,
            EscapeSpaces = false,
            SpacesAreMetaspace = false,
            StripLeadingSpaceOnDecode = true,
            ByteFallback = true,
            UnkId = 0,
            BosId = 1,
            EosId = 2,
            PrefixIds = [1],
            // llama2.c models are trained with BOS between documents, and run.c stops when BOS is sampled.
            EndOfGenerationIds = [1, 2],
        });
    }
}
