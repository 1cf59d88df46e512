using System.Buffers.Binary;
using System.Text;
using SlmKit.Tensors;

namespace SlmKit.Formats;

/// <summary>
/// llama2.c's <c>tokenizer.bin</c>: an int32 max token length, then per token a float32 score, an int32 byte length
/// and the bytes. <see cref="PieceBytes"/> keeps the bytes exactly; <see cref="Pieces"/> decodes them as UTF-8 (a
/// malformed sequence becomes U+FFFD there, so byte-exact work should use <see cref="PieceBytes"/>).
/// </summary>
public sealed class Llama2CTokenizerFile
{
    private Llama2CTokenizerFile(int maxTokenLength, byte[][] pieceBytes, string[] pieces, float[] scores)
    {
        MaxTokenLength = maxTokenLength;
        PieceBytes = pieceBytes;
        Pieces = pieces;
        Scores = scores;
    }

    /// <summary>The longest piece in bytes, as the file states it.</summary>
    public int MaxTokenLength { get; }

    /// <summary>Each token's text, decoded as UTF-8.</summary>
    public IReadOnlyList<string> Pieces { get; }

    /// <summary>Each token's bytes, exactly as stored.</summary>
    public IReadOnlyList<byte[]> PieceBytes { get; }

    /// <summary>Each token's merge score.</summary>
    public IReadOnlyList<float> Scores { get; }

    /// <summary>Reads <paramref name="vocabSize"/> tokens (the checkpoint's <see cref="Llama2CConfig.VocabSize"/>).</summary>
    /// <exception cref="ModelFileException">The file is missing, too short for the vocabulary, or has an impossible length.</exception>
    public static unsafe Llama2CTokenizerFile Read(string path, int vocabSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        using MappedFile file = MappedFile.Open(path);
        long length = file.Length;
        if (length < 4)
            throw new ModelFileException(path, $"too short for a llama2.c tokenizer ({length} bytes)");
        // Each token takes at least 8 bytes (score and length): check before sizing arrays by vocabSize.
        if ((length - 4) / 8 < vocabSize)
            throw new ModelFileException(path, $"holds at most {(length - 4) / 8} tokens, but the model's vocabulary has {vocabSize}");
        var bytes = new ReadOnlySpan<byte>(file.Pointer, checked((int)Math.Min(length, int.MaxValue)));
        int maxTokenLength = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        if (maxTokenLength <= 0)
            throw new ModelFileException(path, $"max token length {maxTokenLength} is not positive");

        var pieceBytes = new byte[vocabSize][];
        var pieces = new string[vocabSize];
        var scores = new float[vocabSize];
        int position = 4;
        for (int i = 0; i < vocabSize; i++)
        {
            if (bytes.Length - position < 8)
                throw new ModelFileException(path, $"ends inside token {i} of {vocabSize} (offset {position})");
            scores[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[position..]);
            int n = BinaryPrimitives.ReadInt32LittleEndian(bytes[(position + 4)..]);
            position += 8;
            if (n < 0 || n > bytes.Length - position)
                throw new ModelFileException(path, $"token {i} claims {n} bytes at offset {position}, but {bytes.Length - position} remain");
            pieceBytes[i] = bytes.Slice(position, n).ToArray();
            pieces[i] = Encoding.UTF8.GetString(pieceBytes[i]);
            position += n;
        }
        return new Llama2CTokenizerFile(maxTokenLength, pieceBytes, pieces, scores);
    }
}
