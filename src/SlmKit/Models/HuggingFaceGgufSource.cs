using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;
using SlmKit.Tokenizers;

namespace SlmKit.Models;

/// <summary>
/// A Hugging Face Llama, Qwen2 or Gemma folder (config.json, *.safetensors, tokenizer.json) seen as the GGUF that
/// <see cref="HuggingFaceToGguf"/> writes from it, without writing anything: <see cref="Metadata"/> is the converter's
/// {arch}.* and tokenizer.ggml.* metadata in its order, <see cref="TensorNames"/> are llama.cpp's names in safetensors
/// order, and <see cref="Find"/> gives each tensor as the GGUF holds it. Matrices come straight from the safetensors
/// mapping. Copied, once each, into memory this source owns: a Llama folder's q/k projections (rows moved from
/// transformers' rotate-half order to adjacent pairs, which llama.cpp's "llama" architecture rotates), 1-D tensors stored
/// below F32 (norms and Qwen2's q/k/v biases, widened to F32 as llama.cpp's converter keeps them) and Gemma's norms
/// (stored as 1 + w, as llama.cpp's converter stores them). Qwen2 and Gemma keep transformers' row order: llama.cpp
/// rotates their architectures in the rotate-half (NeoX) layout. The converter and <c>slm quantize</c> both read folders
/// through this, so quantizing a folder needs no intermediate GGUF and gives the bytes that quantizing the converted
/// GGUF gives.
/// </summary>
public sealed unsafe class HuggingFaceGgufSource : IWeightSource
{
    private readonly SafeTensorsModel _weights;
    private readonly Dictionary<string, string> _huggingFaceNames;
    private readonly string[] _names;
    private readonly int _headCount;
    private readonly int _kvHeadCount;
    private readonly int _headDim;
    private readonly bool _permuteQueryKey;
    private readonly float _normOffset;
    // Pinned (POH) arrays, so the WeightTensor pointers handed out stay valid for the life of this source.
    private readonly Dictionary<string, byte[]> _copies = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private bool _disposed;

    private HuggingFaceGgufSource(string folder, SafeTensorsModel weights, IReadOnlyList<KeyValuePair<string, object>> metadata,
        string[] names, Dictionary<string, string> huggingFaceNames, int headCount, int kvHeadCount, int headDim, bool permuteQueryKey, float normOffset)
    {
        SourcePath = folder;
        _weights = weights;
        Metadata = metadata;
        _names = names;
        _huggingFaceNames = huggingFaceNames;
        _headCount = headCount;
        _kvHeadCount = kvHeadCount;
        _headDim = headDim;
        _permuteQueryKey = permuteQueryKey;
        _normOffset = normOffset;
    }

    /// <summary>The folder.</summary>
    public string SourcePath { get; }

    /// <summary>GGUF metadata in the order a GGUF writer should set it (values as <see cref="GgufWriter.Metadata"/> holds them).</summary>
    public IReadOnlyList<KeyValuePair<string, object>> Metadata { get; }

    /// <summary>llama.cpp tensor names, in the safetensors order (RoPE inv_freq tables left out).</summary>
    public IReadOnlyList<string> TensorNames => _names;

    /// <summary>
    /// Opens <paramref name="folder"/> and checks everything that can be checked before any tensor is read: config.json,
    /// the tokenizer, the safetensors files, every tensor's dtype and llama.cpp name, and the q/k shapes.
    /// </summary>
    /// <exception cref="ModelFileException">Not a Llama, Qwen2 or Gemma folder, or a missing or damaged file in it.</exception>
    public static HuggingFaceGgufSource Open(string folder)
    {
        if (!Directory.Exists(folder))
            throw new ModelFileException(folder, "not a Hugging Face model folder: the folder does not exist");
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath))
            throw new ModelFileException(folder, "not a Hugging Face model folder: config.json is missing");
        var hf = HuggingFaceConfig.Load(configPath);
        // llama.cpp's architecture for each model_type, whether its rotation wants q/k rows in adjacent pairs, and what
        // its converter adds to the norm weights (Gemma's RMSNorm scales by 1 + w; the GGUF stores 1 + w).
        (string architecture, bool permuteQueryKey, float normOffset) = hf.ModelType switch
        {
            "llama" => ("llama", true, 0f),
            "qwen2" => ("qwen2", false, 0f),
            "gemma" => ("gemma", false, 1f),
            _ => throw new ModelFileException(configPath, $"converting model_type '{hf.ModelType}' is not supported yet (supported: llama, qwen2, gemma); SlmKit runs such folders directly"),
        };
        DecoderConfig config = ModelLoader.ConfigFromHuggingFace(hf);
        if (config.RopeScaling is not null && config.RopeScaling.Type != "linear")
            throw new ModelFileException(configPath, $"rope scaling '{config.RopeScaling.Type}' cannot be written to GGUF by this converter yet");
        Tokenizer tokenizer = Tokenizer.FromHuggingFace(folder);
        int headDim = config.ResolvedHeadDim;

        var writer = new GgufWriter();
        writer.Set("general.architecture", architecture);
        writer.Set("general.name", Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar)));
        GgufDecoderMetadata.Write(writer, architecture, config);
        tokenizer.WriteGgufMetadata(writer);

        var weights = SafeTensorsModel.Open(folder);
        try
        {
            var names = new List<string>();
            var huggingFaceNames = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (string name in weights.TensorNames)
            {
                if (name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal))
                    continue; // old checkpoints carry the RoPE table; it is recomputed from rope_theta
                var tensor = weights.Find(name)!;
                if (!GgmlTypeInfo.IsSupportedForCompute(tensor.Type))
                    throw new ModelFileException(folder, $"tensor '{name}' is {tensor.Type}; only F32, F16 and BF16 checkpoints convert");
                string gguf = GgufName(name, architecture) ?? throw new ModelFileException(folder, $"tensor '{name}' has no llama.cpp name for {architecture}");
                int heads = IsQuery(gguf) ? config.HeadCount : IsKey(gguf) ? config.KvHeadCount : 0;
                if (heads > 0 && (tensor.Dimensions.Length != 2 || tensor.Dimensions[0] != (long)heads * headDim))
                    throw new ModelFileException(folder, $"tensor '{name}' is {tensor.ShapeText}, but config.json gives {heads} heads of {headDim} rows");
                int biasRows = gguf.EndsWith(".attn_q.bias", StringComparison.Ordinal) ? config.HeadCount * headDim
                    : gguf.EndsWith(".attn_k.bias", StringComparison.Ordinal) || gguf.EndsWith(".attn_v.bias", StringComparison.Ordinal) ? config.KvHeadCount * headDim : 0;
                if (biasRows > 0 && (tensor.Dimensions.Length != 1 || tensor.Dimensions[0] != biasRows))
                    throw new ModelFileException(folder, $"tensor '{name}' is {tensor.ShapeText}, but config.json gives a bias of {biasRows}");
                if (!huggingFaceNames.TryAdd(gguf, name))
                    throw new ModelFileException(folder, $"tensors '{huggingFaceNames[gguf]}' and '{name}' both map to '{gguf}'");
                names.Add(gguf);
            }
            // llama.cpp's gemma graph always multiplies by the token embeddings and loads no output matrix, so a
            // file holding one would be refused there ("wrong number of tensors").
            if (architecture == "gemma" && huggingFaceNames.TryGetValue("output.weight", out string? head))
                throw new ModelFileException(folder, $"tensor '{head}': a gemma checkpoint converts only with its head tied to the embeddings");
            if (architecture == "qwen2")
            {
                // llama.cpp's qwen2 graph requires the q/k/v biases; a folder without them is not a Qwen2 checkpoint.
                foreach (string role in (ReadOnlySpan<string>)["attn_q.bias", "attn_k.bias", "attn_v.bias"])
                {
                    if (!huggingFaceNames.ContainsKey($"blk.0.{role}"))
                        throw new ModelFileException(folder, $"a qwen2 checkpoint needs the q, k and v biases; 'blk.0.{role}' has no tensor");
                }
            }
            return new HuggingFaceGgufSource(folder, weights, [.. writer.Metadata], [.. names], huggingFaceNames, config.HeadCount, config.KvHeadCount, headDim, permuteQueryKey, normOffset);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>The tensor <paramref name="name"/> (a llama.cpp name) as the converted GGUF holds it, or null.</summary>
    public WeightTensor? Find(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_huggingFaceNames.TryGetValue(name, out string? huggingFaceName))
            return null;
        WeightTensor tensor = _weights.Find(huggingFaceName)!;
        long[] dimensions = (long[])tensor.Dimensions.Clone();
        int heads = !_permuteQueryKey ? 0 : IsQuery(name) ? _headCount : IsKey(name) ? _kvHeadCount : 0;
        bool offset = _normOffset != 0 && name.EndsWith("_norm.weight", StringComparison.Ordinal);
        if (heads == 0 && (dimensions.Length != 1 || (tensor.Type == GgmlType.F32 && !offset)))
            return new WeightTensor(name, tensor.Type, dimensions, tensor.Data, tensor.ByteLength);

        byte[] copy;
        lock (_lock)
        {
            if (!_copies.TryGetValue(name, out copy!))
            {
                if (heads > 0)
                {
                    copy = GC.AllocateUninitializedArray<byte>(checked((int)tensor.ByteLength), pinned: true);
                    RotaryRowOrder.ToGguf(tensor.Bytes, copy, heads, _headDim);
                }
                else
                {
                    copy = GC.AllocateUninitializedArray<byte>(checked((int)tensor.ElementCount * sizeof(float)), pinned: true);
                    var values = MemoryMarshal.Cast<byte, float>(copy.AsSpan());
                    MatMul.WidenRow(tensor.Data, tensor.Type, (int)tensor.ElementCount, 0, values);
                    if (offset)
                    {
                        foreach (ref float v in values)
                            v += _normOffset;
                    }
                }
                _copies[name] = copy;
            }
        }
        GgmlType type = heads > 0 ? tensor.Type : GgmlType.F32;
        byte* data = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(copy));
        return new WeightTensor(name, type, dimensions, data, copy.Length);
    }

    /// <summary>Closes the safetensors files; tensors handed out by <see cref="Find"/> become invalid.</summary>
    public void Dispose()
    {
        _disposed = true;
        _weights.Dispose();
        lock (_lock)
            _copies.Clear();
    }

    /// <summary>
    /// llama.cpp's name of a transformers tensor: Llama's names, and for Qwen2 also the q/k/v biases
    /// ("model.layers.3.self_attn.q_proj.bias" → "blk.3.attn_q.bias"). Null where the architecture has no such tensor.
    /// </summary>
    private static string? GgufName(string huggingFaceName, string architecture)
    {
        const string bias = ".bias";
        if (!huggingFaceName.EndsWith(bias, StringComparison.Ordinal))
            return Llama.GgufName(huggingFaceName);
        if (architecture != "qwen2")
            return null;
        string? weight = Llama.GgufName(string.Concat(huggingFaceName.AsSpan(0, huggingFaceName.Length - bias.Length), ".weight"));
        return weight is not null && (weight.EndsWith(".attn_q.weight", StringComparison.Ordinal) || weight.EndsWith(".attn_k.weight", StringComparison.Ordinal) || weight.EndsWith(".attn_v.weight", StringComparison.Ordinal))
            ? string.Concat(weight.AsSpan(0, weight.Length - ".weight".Length), bias)
            : null;
    }

    private static bool IsQuery(string ggufName) => ggufName.EndsWith(".attn_q.weight", StringComparison.Ordinal);

    private static bool IsKey(string ggufName) => ggufName.EndsWith(".attn_k.weight", StringComparison.Ordinal);
}
