namespace SlmKit.Models;

/// <summary>fairseq's fixed sinusoidal position embeddings (tensor2tensor's layout: all sines, then all cosines).</summary>
internal static class SinusoidalPositions
{
    /// <summary>Writes row <paramref name="position"/> of the table (row.Length = the embedding width, at least 4).</summary>
    public static void Row(int position, Span<float> row)
    {
        int half = row.Length / 2;
        double step = Math.Log(10000.0) / (half - 1);
        for (int i = 0; i < half; i++)
        {
            double angle = position * Math.Exp(-step * i);
            row[i] = (float)Math.Sin(angle);
            row[half + i] = (float)Math.Cos(angle);
        }
        if (row.Length % 2 == 1)
            row[^1] = 0f;
    }
}
