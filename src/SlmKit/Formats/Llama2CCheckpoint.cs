using System.Buffers.Binary;
using SlmKit.Tensors;

namespace SlmKit.Formats;

/// <summary>Hyperparameters from a llama2.c checkpoint header.</summary>
/// <param name="Dim">Model width (embedding size).</param>
/// <param name="HiddenDim">Feed-forward hidden size.</param>
/// <param name="LayerCount">Number of transformer blocks.</param>
/// <param name="HeadCount">Query heads.</param>
/// <param name="KvHeadCount">Key/value heads (fewer than <paramref name="HeadCount"/> for grouped-query attention).</param>
/// <param name="VocabSize">Vocabulary size (always positive here, whatever sign the legacy header used).</param>
/// <param name="SeqLen">Maximum sequence length.</param>
/// <param name="SharedClassifier">True when the output projection is the token embedding.</param>
/// <param name="Version">0 for the legacy header-less format, else the versioned header's version (1).</param>
public sealed record Llama2CConfig(int Dim, int HiddenDim, int LayerCount, int HeadCount, int KvHeadCount, int VocabSize, int SeqLen,
    bool SharedClassifier, int Version)
{
    /// <summary>Width of one attention head.</summary>
    public int HeadSize => Dim / HeadCount;

    /// <summary>Width of the key and value projections.</summary>
    public int KvDim => Dim / HeadCount * KvHeadCount;
}

/// <summary>
/// A llama2.c checkpoint (<c>run.c</c>'s legacy format, or <c>export.py</c>'s version 1 float32 format), memory-mapped.
/// Tensors are named as in GGUF llama models (<c>token_embd.weight</c>, <c>blk.0.attn_q.weight</c> …) so model code
/// reads every source alike; all are F32 and point into the mapping.
/// </summary>
public sealed unsafe class Llama2CCheckpoint : IWeightSource
{
    /// <summary>"ak42" read as a little-endian uint32: the versioned format's magic.</summary>
    internal const uint Magic = 0x616b3432;

    /// <summary>Size of the versioned header.</summary>
    internal const int VersionedHeaderBytes = 256;

    /// <summary>Size of the legacy header: seven int32s.</summary>
    internal const int LegacyHeaderBytes = 28;

    private readonly MappedFile _file;
    private readonly Dictionary<string, Slice> _tensors;
    private readonly string[] _names;
    private bool _disposed;

    private Llama2CCheckpoint(MappedFile file, Llama2CConfig config, Dictionary<string, Slice> tensors, string[] names)
    {
        _file = file;
        Config = config;
        _tensors = tensors;
        _names = names;
    }

    /// <inheritdoc/>
    public string SourcePath => _file.Path;

    /// <summary>The header's hyperparameters.</summary>
    public Llama2CConfig Config { get; }

    /// <inheritdoc/>
    public IReadOnlyList<string> TensorNames => _names;

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    /// <exception cref="ModelFileException">
    /// A bad header, a size that does not match the header, or a version this reader does not handle (2 = Q8_0).
    /// </exception>
    public static Llama2CCheckpoint Open(string path)
    {
        MappedFile file = MappedFile.Open(path);
        try
        {
            return Parse(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public WeightTensor? Find(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _tensors.TryGetValue(name, out Slice s)
            ? new WeightTensor(name, GgmlType.F32, (long[])s.Dimensions.Clone(), _file.Pointer + s.Offset, s.ByteLength)
            : null;
    }

    /// <summary>Unmaps the file; tensors handed out by <see cref="Find"/> become invalid.</summary>
    public void Dispose()
    {
        _disposed = true;
        _file.Dispose();
    }

    private static Llama2CCheckpoint Parse(MappedFile file)
    {
        string path = file.Path;
        if (file.Length < LegacyHeaderBytes)
            throw new ModelFileException(path, $"too short for a llama2.c checkpoint ({file.Length} bytes; the header alone takes {LegacyHeaderBytes})");
        ReadOnlySpan<byte> head = file.Span(0, LegacyHeaderBytes);
        bool versioned = BinaryPrimitives.ReadUInt32LittleEndian(head) == Magic;
        int version = 0;
        long dataStart = LegacyHeaderBytes;
        Span<int> p = stackalloc int[7];
        bool shared;
        if (versioned)
        {
            if (file.Length < VersionedHeaderBytes)
                throw new ModelFileException(path, $"too short for a versioned llama2.c checkpoint ({file.Length} bytes; the header alone takes {VersionedHeaderBytes})");
            ReadOnlySpan<byte> header = file.Span(0, VersionedHeaderBytes);
            version = BinaryPrimitives.ReadInt32LittleEndian(header[4..]);
            if (version == 2)
                throw new ModelFileException(path, "llama2.c version 2 (Q8_0 export) is not supported; export version 1 (float32) or convert the model to GGUF");
            if (version != 1)
                throw new ModelFileException(path, $"llama2.c checkpoint version {version} is not supported (only 1, float32, is)");
            for (int i = 0; i < 7; i++)
                p[i] = BinaryPrimitives.ReadInt32LittleEndian(header[(8 + 4 * i)..]);
            byte flag = header[36];
            if (flag > 1)
                throw new ModelFileException(path, $"shared_classifier flag is {flag}, expected 0 or 1");
            shared = flag == 1;
            dataStart = VersionedHeaderBytes;
        }
        else
        {
            for (int i = 0; i < 7; i++)
                p[i] = BinaryPrimitives.ReadInt32LittleEndian(head[(4 * i)..]);
            // run.c's convention: a negative vocabulary size means the classifier is stored separately.
            shared = p[5] > 0;
            if (p[5] < 0 && p[5] != int.MinValue)
                p[5] = -p[5];
        }

        var config = new Llama2CConfig(p[0], p[1], p[2], p[3], p[4], p[5], p[6], shared, version);
        Validate(path, config);
        // Measure first, build the tensor table only once the file is known to hold it: a damaged header can claim
        // two billion layers, and naming each of their tensors would exhaust memory long before the size check.
        long expected;
        try
        {
            var measure = new Layout(config, dataStart, record: false);
            expected = versioned ? measure.Version1() : measure.Legacy();
        }
        catch (OverflowException)
        {
            throw new ModelFileException(path, $"header sizes (dim {config.Dim}, hidden {config.HiddenDim}, layers {config.LayerCount}, vocab {config.VocabSize}, seq_len {config.SeqLen}) overflow 64 bits");
        }
        if (versioned ? file.Length != expected : file.Length < expected)
            throw new ModelFileException(path, $"file is {file.Length} bytes, but its header (dim {config.Dim}, hidden {config.HiddenDim}, layers {config.LayerCount}, heads {config.HeadCount}/{config.KvHeadCount}, vocab {config.VocabSize}, seq_len {config.SeqLen}, {(shared ? "shared" : "separate")} classifier) needs {(versioned ? "exactly" : "at least")} {expected}");
        var layout = new Layout(config, dataStart, record: true);
        _ = versioned ? layout.Version1() : layout.Legacy();
        return new Llama2CCheckpoint(file, config, layout.Tensors, [.. layout.Names]);
    }

    private static void Validate(string path, Llama2CConfig c)
    {
        if (c.Dim <= 0 || c.HiddenDim <= 0 || c.LayerCount <= 0 || c.HeadCount <= 0 || c.KvHeadCount <= 0 || c.VocabSize <= 0 || c.SeqLen <= 0)
            throw new ModelFileException(path, $"not a llama2.c checkpoint: header values must be positive (dim {c.Dim}, hidden {c.HiddenDim}, layers {c.LayerCount}, heads {c.HeadCount}, kv heads {c.KvHeadCount}, vocab {c.VocabSize}, seq_len {c.SeqLen})");
        if (c.Dim % c.HeadCount != 0)
            throw new ModelFileException(path, $"dim {c.Dim} is not a multiple of the head count {c.HeadCount}");
        if (c.KvHeadCount > c.HeadCount || c.HeadCount % c.KvHeadCount != 0)
            throw new ModelFileException(path, $"head count {c.HeadCount} is not a multiple of the kv head count {c.KvHeadCount}");
    }

    private readonly record struct Slice(long[] Dimensions, long Offset, long ByteLength);

    /// <summary>Lays the tensors out in file order, with checked arithmetic throughout.</summary>
    private sealed class Layout(Llama2CConfig c, long start, bool record)
    {
        private long _offset = start;

        public Dictionary<string, Slice> Tensors { get; } = new(StringComparer.Ordinal);

        public List<string> Names { get; } = [];

        /// <summary>run.c's order: embedding, per-kind stacks over layers, final norm, RoPE tables, classifier.</summary>
        public long Legacy()
        {
            Single("token_embd.weight", c.VocabSize, c.Dim);
            Stack("attn_norm", c.Dim);
            Stack("attn_q", c.Dim, c.Dim);
            Stack("attn_k", c.KvDim, c.Dim);
            Stack("attn_v", c.KvDim, c.Dim);
            Stack("attn_output", c.Dim, c.Dim);
            Stack("ffn_norm", c.Dim);
            Stack("ffn_gate", c.HiddenDim, c.Dim);
            Stack("ffn_down", c.Dim, c.HiddenDim);
            Stack("ffn_up", c.HiddenDim, c.Dim);
            Single("output_norm.weight", c.Dim);
            // freq_cis_real and freq_cis_imag: RoPE tables the runtime recomputes, skipped like run.c skips them.
            Skip(checked(2L * c.SeqLen * (c.HeadSize / 2)));
            if (!c.SharedClassifier)
                Single("output.weight", c.VocabSize, c.Dim);
            return _offset;
        }

        /// <summary>export.py version 1's order: all norms first, then the embedding and per-kind stacks.</summary>
        public long Version1()
        {
            Stack("attn_norm", c.Dim);
            Stack("ffn_norm", c.Dim);
            Single("output_norm.weight", c.Dim);
            Single("token_embd.weight", c.VocabSize, c.Dim);
            Stack("attn_q", c.Dim, c.Dim);
            Stack("attn_k", c.KvDim, c.Dim);
            Stack("attn_v", c.KvDim, c.Dim);
            Stack("attn_output", c.Dim, c.Dim);
            Stack("ffn_gate", c.HiddenDim, c.Dim);
            Stack("ffn_down", c.Dim, c.HiddenDim);
            Stack("ffn_up", c.HiddenDim, c.Dim);
            if (!c.SharedClassifier)
                Single("output.weight", c.VocabSize, c.Dim);
            return _offset;
        }

        private void Single(string name, params long[] dims)
        {
            long bytes = Bytes(dims);
            if (record)
            {
                Tensors[name] = new Slice(dims, _offset, bytes);
                Names.Add(name);
            }
            _offset = checked(_offset + bytes);
        }

        private void Stack(string kind, params long[] dims)
        {
            if (!record)
            {
                _offset = checked(_offset + Bytes(dims) * c.LayerCount);
                return;
            }
            for (int layer = 0; layer < c.LayerCount; layer++)
                Single($"blk.{layer}.{kind}.weight", dims);
        }

        private static long Bytes(long[] dims)
        {
            long bytes = 4;
            foreach (long d in dims)
                bytes = checked(bytes * d);
            return bytes;
        }

        private void Skip(long floats) => _offset = checked(_offset + floats * 4);
    }
}
