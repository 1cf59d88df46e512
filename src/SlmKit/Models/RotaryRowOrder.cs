namespace SlmKit.Models;

/// <summary>
/// transformers stores q/k projection rows so that RoPE rotates dimension i with i + d/2 ("rotate_half"); GGUF and
/// llama2.c rotate adjacent pairs (2i, 2i+1). Within each head, GGUF row 2i + j is transformers row j·d/2 + i.
/// Rows move whole, so this works on raw bytes of any dtype.
/// </summary>
public static class RotaryRowOrder
{
    public static byte[] ToHuggingFace(ReadOnlySpan<byte> ggufRows, int heads, int headDim) => Permute(ggufRows, heads, headDim, toHuggingFace: true);

    public static byte[] ToGguf(ReadOnlySpan<byte> huggingFaceRows, int heads, int headDim)
    {
        var result = new byte[huggingFaceRows.Length];
        Permute(huggingFaceRows, result, heads, headDim, toHuggingFace: false);
        return result;
    }

    /// <summary>As <see cref="ToGguf(ReadOnlySpan{byte}, int, int)"/>, into <paramref name="ggufRows"/> (the same length).</summary>
    public static void ToGguf(ReadOnlySpan<byte> huggingFaceRows, Span<byte> ggufRows, int heads, int headDim) =>
        Permute(huggingFaceRows, ggufRows, heads, headDim, toHuggingFace: false);

    private static byte[] Permute(ReadOnlySpan<byte> source, int heads, int headDim, bool toHuggingFace)
    {
        var result = new byte[source.Length];
        Permute(source, result, heads, headDim, toHuggingFace);
        return result;
    }

    private static void Permute(ReadOnlySpan<byte> source, Span<byte> result, int heads, int headDim, bool toHuggingFace)
    {
        int rows = heads * headDim;
        if (rows == 0 || source.Length % rows != 0)
            throw new SlmKitException($"a q/k matrix of {source.Length} bytes does not split into {heads} heads of {headDim} rows");
        if (result.Length != source.Length)
            throw new ArgumentException($"the destination has {result.Length} bytes, the source {source.Length}", nameof(result));
        int rowBytes = source.Length / rows, half = headDim / 2;
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < half; i++)
            {
                for (int j = 0; j < 2; j++)
                {
                    int ggufRow = h * headDim + 2 * i + j, hfRow = h * headDim + j * half + i;
                    (int from, int to) = toHuggingFace ? (ggufRow, hfRow) : (hfRow, ggufRow);
                    source.Slice(from * rowBytes, rowBytes).CopyTo(result.Slice(to * rowBytes));
                }
            }
        }
    }
}
