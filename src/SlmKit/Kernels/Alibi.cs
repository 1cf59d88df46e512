namespace SlmKit.Kernels;

/// <summary>
/// ALiBi (Press et al., "Train Short, Test Long"): instead of position embeddings each head adds slope·(j − i) to the
/// score of query i for key j. Slopes form a geometric sequence per head, interleaved when the head count is not a
/// power of two (BLOOM's build_alibi_tensor, llama.cpp with max_alibi_bias = 8).
/// </summary>
public static class Alibi
{
    /// <summary>The slope of every head for <paramref name="headCount"/> heads and maximum bias <paramref name="maxBias"/>.</summary>
    public static float[] Slopes(int headCount, float maxBias = 8f)
    {
        int closestPowerOfTwo = 1;
        while (closestPowerOfTwo * 2 <= headCount)
            closestPowerOfTwo *= 2;
        double m0 = Math.Pow(2, -maxBias / closestPowerOfTwo);
        double m1 = Math.Pow(2, -maxBias / 2 / closestPowerOfTwo);
        var slopes = new float[headCount];
        for (int h = 0; h < headCount; h++)
            slopes[h] = (float)(h < closestPowerOfTwo ? Math.Pow(m0, h + 1) : Math.Pow(m1, 2 * (h - closestPowerOfTwo) + 1));
        return slopes;
    }
}
