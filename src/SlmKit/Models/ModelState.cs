namespace SlmKit.Models;

/// <summary>
/// What a model remembers of one sequence: the key/value cache of every layer and how many positions it holds.
/// One state per concurrent sequence; a state is not thread-safe.
/// </summary>
public sealed class KvCache
{
    private readonly float[][] _keys;
    private readonly float[][] _values;

    public KvCache(int layerCount, int capacity, int kvDim)
    {
        if (capacity <= 0)
            throw new SlmKitException($"context size must be positive (got {capacity})");
        Capacity = capacity;
        KvDim = kvDim;
        _keys = new float[layerCount][];
        _values = new float[layerCount][];
        for (int i = 0; i < layerCount; i++)
        {
            _keys[i] = new float[(long)capacity * kvDim];
            _values[i] = new float[(long)capacity * kvDim];
        }
    }

    /// <summary>Maximum number of positions.</summary>
    public int Capacity { get; }

    /// <summary>Floats per position per layer (KV heads × head size).</summary>
    public int KvDim { get; }

    /// <summary>Positions filled so far; the next token goes at this position.</summary>
    public int Length { get; set; }

    /// <summary>Keys of <paramref name="layer"/>, [Capacity, KvDim] row-major.</summary>
    public float[] Keys(int layer) => _keys[layer];

    /// <summary>Values of <paramref name="layer"/>, [Capacity, KvDim] row-major.</summary>
    public float[] Values(int layer) => _values[layer];
}
