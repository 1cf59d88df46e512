using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;
using SlmKit.Tokenizers;

namespace SlmKit.Models;

/// <summary>
/// A Hugging Face folder (config.json, *.safetensors, tokenizer.json) of a family llama.cpp runs, seen as the GGUF that
/// <see cref="HuggingFaceToGguf"/> writes from it, without writing anything: <see cref="Metadata"/> is the converter's
/// {arch}.* and tokenizer.ggml.* metadata in its order, <see cref="TensorNames"/> are llama.cpp's names (any rotary
/// tables the file needs first, then the checkpoint's tensors in safetensors order), and <see cref="Find"/> gives each
/// tensor as the GGUF holds it. Names come from the family's own Hugging Face layout, the one the runtime binds the
/// folder with. Matrices come straight from the safetensors mapping; what llama.cpp's converter changes is copied, once
/// each, into memory this source owns:
/// <list type="bullet">
/// <item>q/k projections of the families llama.cpp rotates in adjacent pairs (llama, smollm3, olmo, minicpm): rows
/// moved from transformers' rotate-half order; the others keep it, since llama.cpp rotates them in the NeoX layout;</item>
/// <item>1-D tensors (norms, biases) widened to F32, and norms stored as 1 + w where the family's norm scales by
/// 1 + w (Gemma, Gemma 2 and 3, Nemotron);</item>
/// <item>GPT-2's Conv1D matrices transposed to [out, in], and GPT-NeoX's and BLOOM's fused q/k/v rows moved from head
/// by head to all q, all k, all v;</item>
/// <item>Llama 3's rope scaling as the per-pair rope_freqs table and Phi-3's long-rope factors as
/// rope_factors_short/long, as llama.cpp's converter writes them.</item>
/// </list>
/// The converter and <c>slm quantize</c> both read folders through this, so quantizing a folder needs no intermediate
/// GGUF and gives the bytes that quantizing the converted GGUF gives.
/// </summary>
public sealed unsafe partial class HuggingFaceGgufSource : IWeightSource
{
    /// <summary>
    /// The families converted, by SlmKit family name (each to its first llama.cpp architecture): whether llama.cpp rotates
    /// q/k in adjacent pairs, and the MLP activation its graph applies (a checkpoint configured with another would
    /// compute a different model there).
    /// </summary>
    private static readonly Dictionary<string, (bool PermuteQueryKey, ActivationKind Activation)> s_conversions = new(StringComparer.Ordinal)
    {
        ["llama"] = (true, ActivationKind.Silu),
        ["smollm3"] = (true, ActivationKind.Silu),
        ["qwen2"] = (false, ActivationKind.Silu),
        ["qwen3"] = (false, ActivationKind.Silu),
        ["gemma"] = (false, ActivationKind.GeluTanh),
        ["gemma2"] = (false, ActivationKind.GeluTanh),
        ["gemma3"] = (false, ActivationKind.GeluTanh),
        ["phi3"] = (false, ActivationKind.Silu),
        ["stablelm"] = (false, ActivationKind.Silu),
        ["olmo"] = (true, ActivationKind.Silu),
        ["olmo2"] = (false, ActivationKind.Silu),
        ["minicpm"] = (true, ActivationKind.Silu),
        ["nemotron"] = (false, ActivationKind.SquaredRelu),
        ["phi2"] = (false, ActivationKind.GeluTanh),
        ["gptneox"] = (false, ActivationKind.GeluTanh),
        ["gpt2"] = (false, ActivationKind.GeluTanh),
        ["bloom"] = (false, ActivationKind.GeluTanh),
    };

    /// <summary>Tensor roles outside the blocks and inside each block, as <see cref="TensorLayout"/> names them.</summary>
    private static readonly string[] s_globalRoles = ["token_embd", "position_embd", "token_embd_norm", "output_norm", "output"];
    private static readonly string[] s_layerRoles =
    [
        "attn_norm", "attn_q", "attn_k", "attn_v", "attn_qkv", "attn_q_norm", "attn_k_norm", "attn_output", "post_attention_norm",
        "ffn_norm", "ffn_gate", "ffn_up", "ffn_down", "post_ffw_norm",
    ];

    /// <summary>Buffers some checkpoints save beside the parameters (RoPE tables, causal masks); nothing reads them.</summary>
    private static readonly string[] s_buffers = [".rotary_emb.inv_freq", ".attn.bias", ".attn.masked_bias", ".attention.bias", ".attention.masked_bias"];

    private readonly SafeTensorsModel _weights;
    private readonly Dictionary<string, string> _huggingFaceNames;
    private readonly string[] _names;
    private readonly int _headCount;
    private readonly int _kvHeadCount;
    private readonly int _headDim;
    private readonly bool _permuteQueryKey;
    private readonly TensorLayout _layout;
    // Pinned (POH) arrays, so the WeightTensor pointers handed out stay valid for the life of this source. The rotary
    // tables are here from the start; converted tensors are added on first use.
    private readonly Dictionary<string, byte[]> _copies;
    // Tensors the converter stores whole in F32 (Mamba's small ones), those it stores as −exp(x) (Mamba's A_log), and
    // shapes it changes (Mamba's [inner, 1, width] convolution squeezed to [inner, width]); by llama.cpp name.
    private readonly HashSet<string> _widenToF32;
    private readonly HashSet<string> _negativeExponential;
    private readonly Dictionary<string, long[]> _shapes;
    private readonly Lock _lock = new();
    private bool _disposed;

    private HuggingFaceGgufSource(string folder, SafeTensorsModel weights, IReadOnlyList<KeyValuePair<string, object>> metadata,
        string[] names, Dictionary<string, string> huggingFaceNames, DecoderConfig? config, bool permuteQueryKey, TensorLayout layout,
        Dictionary<string, byte[]> ropeTables, HashSet<string>? widenToF32 = null, HashSet<string>? negativeExponential = null,
        Dictionary<string, long[]>? shapes = null)
    {
        _widenToF32 = widenToF32 ?? [];
        _negativeExponential = negativeExponential ?? [];
        _shapes = shapes ?? [];
        SourcePath = folder;
        _weights = weights;
        Metadata = metadata;
        _names = names;
        _huggingFaceNames = huggingFaceNames;
        _headCount = config?.HeadCount ?? 0;
        _kvHeadCount = config?.KvHeadCount ?? 0;
        _headDim = config?.ResolvedHeadDim ?? 0;
        _permuteQueryKey = permuteQueryKey;
        _layout = layout;
        _copies = ropeTables;
    }

    /// <summary>The folder.</summary>
    public string SourcePath { get; }

    /// <summary>GGUF metadata in the order a GGUF writer should set it (values as <see cref="GgufWriter.Metadata"/> holds them).</summary>
    public IReadOnlyList<KeyValuePair<string, object>> Metadata { get; }

    /// <summary>llama.cpp tensor names: the rotary tables the file needs, then the checkpoint's tensors in safetensors order.</summary>
    public IReadOnlyList<string> TensorNames => _names;

    /// <summary>
    /// Opens <paramref name="folder"/> and checks everything that can be checked before any tensor is read: config.json,
    /// the tokenizer, the safetensors files, every tensor's dtype and llama.cpp name, and the q/k shapes.
    /// </summary>
    /// <exception cref="ModelFileException">Not a folder of a family that converts, or a missing or damaged file in it.</exception>
    public static HuggingFaceGgufSource Open(string folder)
    {
        if (!Directory.Exists(folder))
            throw new ModelFileException(folder, "not a Hugging Face model folder: the folder does not exist");
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath))
            throw new ModelFileException(folder, "not a Hugging Face model folder: config.json is missing");
        var hf = HuggingFaceConfig.Load(configPath);
        if (hf.ModelType is "mamba" or "t5")
            return OpenOwnArchitecture(folder, hf);
        var family = ModelFamily.ForHuggingFaceModelType(hf.ModelType ?? "");
        if (family is null || !s_conversions.TryGetValue(family.Name, out var conversion))
        {
            string supported = string.Join(", ", ModelFamily.All.Where(f => s_conversions.ContainsKey(f.Name)).SelectMany(f => f.HuggingFaceModelTypes).Append("mamba").Append("t5"));
            throw new ModelFileException(configPath, $"converting model_type '{hf.ModelType}' is not supported yet (supported: {supported}); SlmKit runs such folders directly");
        }
        string architecture = family.GgufArchitectures[0];
        DecoderConfig config = ModelLoader.ConfigFromHuggingFace(hf);
        CheckLlamaCppComputesTheSameModel(configPath, family.Name, architecture, config, conversion.Activation);
        Tokenizer tokenizer = Tokenizer.FromHuggingFace(folder);
        int headDim = config.ResolvedHeadDim;

        var writer = new GgufWriter();
        writer.Set("general.architecture", architecture);
        writer.Set("general.name", Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar)));
        GgufDecoderMetadata.Write(writer, architecture, config, ropeTablesAdded: true);
        tokenizer.WriteGgufMetadata(writer);

        var weights = SafeTensorsModel.Open(folder);
        try
        {
            var layout = family.HuggingFaceLayout(weights);
            var ggufNames = GgufNames(layout, config.LayerCount);
            var ropeTables = RopeTables(config);
            var (tensorNames, huggingFaceNames) = MapTensors(folder, weights, architecture, ggufNames.GetValueOrDefault,
                // Buffers are recomputed or implied by the architecture, as llama.cpp's converter drops them.
                name => s_buffers.Any(b => name.EndsWith(b, StringComparison.Ordinal)) && !ggufNames.ContainsKey(name),
                (name, gguf, tensor) =>
                {
                    int heads = IsQuery(gguf) ? config.HeadCount : IsKey(gguf) ? config.KvHeadCount : 0;
                    if (heads > 0 && (tensor.Dimensions.Length != 2 || tensor.Dimensions[0] != (long)heads * headDim))
                        throw new ModelFileException(folder, $"tensor '{name}' is {tensor.ShapeText}, but config.json gives {heads} heads of {headDim} rows");
                    int biasRows = gguf.EndsWith(".attn_q.bias", StringComparison.Ordinal) ? config.HeadCount * headDim
                        : gguf.EndsWith(".attn_k.bias", StringComparison.Ordinal) || gguf.EndsWith(".attn_v.bias", StringComparison.Ordinal) ? config.KvHeadCount * headDim : 0;
                    if (biasRows > 0 && (tensor.Dimensions.Length != 1 || tensor.Dimensions[0] != biasRows))
                        throw new ModelFileException(folder, $"tensor '{name}' is {tensor.ShapeText}, but config.json gives a bias of {biasRows}");
                    if (layout.FusedQkv == QkvLayout.PerHeadInterleaved && IsFusedQkv(gguf) && tensor.Dimensions[0] != 3L * config.HeadCount * headDim)
                        throw new ModelFileException(folder, $"tensor '{name}' is {tensor.ShapeText}, but config.json gives {config.HeadCount} heads of 3 × {headDim} rows");
                    if (layout.TransposedLinears && IsLinear(gguf) && tensor.Dimensions.Length != 2)
                        throw new ModelFileException(folder, $"tensor '{name}' is {tensor.ShapeText}, not a matrix");
                });
            string[] names = [.. ropeTables.Keys, .. tensorNames];
            // llama.cpp's gemma graphs always multiply by the token embeddings and load no output matrix, so a file
            // holding one would be refused there ("wrong number of tensors").
            if (architecture is "gemma" or "gemma2" or "gemma3" && huggingFaceNames.TryGetValue("output.weight", out string? head))
                throw new ModelFileException(folder, $"tensor '{head}': a {architecture} checkpoint converts only with its head tied to the embeddings");
            // llama.cpp's olmo2 loads only with an output matrix of its own.
            if (architecture == "olmo2" && !huggingFaceNames.ContainsKey("output.weight"))
                throw new ModelFileException(folder, "an olmo2 checkpoint converts only with a head of its own (llama.cpp's olmo2 requires output.weight)");
            if (architecture == "qwen2")
            {
                // llama.cpp's qwen2 graph requires the q/k/v biases; a folder without them is not a Qwen2 checkpoint.
                foreach (string role in (ReadOnlySpan<string>)["attn_q.bias", "attn_k.bias", "attn_v.bias"])
                {
                    if (!huggingFaceNames.ContainsKey($"blk.0.{role}"))
                        throw new ModelFileException(folder, $"a qwen2 checkpoint needs the q, k and v biases; 'blk.0.{role}' has no tensor");
                }
            }
            return new HuggingFaceGgufSource(folder, weights, [.. writer.Metadata], names, huggingFaceNames, config, conversion.PermuteQueryKey, layout, ropeTables);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Every tensor of the folder under its llama.cpp name, in safetensors order: <paramref name="rename"/> gives the name
    /// (a tensor without one is refused), <paramref name="skip"/> leaves out what the converter drops, and
    /// <paramref name="check"/> refuses what the config rules out. Only float checkpoints convert; two tensors may not
    /// share a name.
    /// </summary>
    private static (List<string> Names, Dictionary<string, string> HuggingFaceNames) MapTensors(string folder, SafeTensorsModel weights,
        string architecture, Func<string, string?> rename, Func<string, bool> skip, Action<string, string, WeightTensor>? check = null)
    {
        var names = new List<string>();
        var huggingFaceNames = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string name in weights.TensorNames)
        {
            if (skip(name))
                continue;
            var tensor = weights.Find(name)!;
            if (!GgmlTypeInfo.IsSupportedForCompute(tensor.Type))
                throw new ModelFileException(folder, $"tensor '{name}' is {tensor.Type}; only F32, F16 and BF16 checkpoints convert");
            string gguf = rename(name) ?? throw new ModelFileException(folder, $"tensor '{name}' has no llama.cpp name for {architecture}");
            check?.Invoke(name, gguf, tensor);
            if (!huggingFaceNames.TryAdd(gguf, name))
                throw new ModelFileException(folder, $"tensors '{huggingFaceNames[gguf]}' and '{name}' both map to '{gguf}'");
            names.Add(gguf);
        }
        return (names, huggingFaceNames);
    }

    /// <summary>
    /// Refuses a config that llama.cpp's graph for <paramref name="architecture"/> would compute differently from
    /// transformers: another MLP activation, a rope scaling the file cannot state, Gemma 2 without its soft caps, Gemma 2
    /// or 3 with a query scale other than llama.cpp's, Gemma 3 with another layer pattern or local rotation base, SmolLM 3
    /// with NoPE layers other than every fourth.
    /// </summary>
    private static void CheckLlamaCppComputesTheSameModel(string configPath, string family, string architecture, DecoderConfig config, ActivationKind activation)
    {
        if (config.Activation != activation)
            throw new ModelFileException(configPath, $"llama.cpp's {architecture} applies {activation} in the MLP, this config {config.Activation}; it would not compute the same model");
        switch (config.RopeScaling?.Type)
        {
            case null or "linear":
                break;
            case "llama3" when architecture == "llama":
            case "longrope" when architecture == "phi3":
                break;
            case string type:
                throw new ModelFileException(configPath, $"rope scaling '{type}' cannot be written to a {architecture} GGUF by this converter yet");
        }
        if (family == "gemma2" && (config.AttentionSoftCap <= 0 || config.FinalLogitSoftCap <= 0))
            throw new ModelFileException(configPath, "llama.cpp's gemma2 always soft-caps attention scores and logits; attn_logit_softcapping and final_logit_softcapping must be set");
        if (family is "gemma2" or "gemma3")
        {
            float expected = Gemma2.LlamaCppQueryScale(config, family == "gemma2" ? Gemma2.LayersOf27B : Gemma3.LayersOf27B);
            if (MathF.Abs(config.ResolvedAttentionScale - expected) > 1e-6f * expected)
                throw new ModelFileException(configPath, $"query_pre_attn_scalar gives a query scale of {config.ResolvedAttentionScale}, but llama.cpp's {family} uses {expected} for this shape");
        }
        if (family == "smollm3")
        {
            // llama.cpp's smollm3 skips the rotation in every fourth layer, whatever the config lists.
            bool[] llamaCpp = SmolLm3.StepLayers(config.LayerCount);
            for (int l = 0; l < config.LayerCount; l++)
            {
                if ((config.NoRopeLayers?[l] == true) != llamaCpp[l])
                    throw new ModelFileException(configPath, $"layer {l} {(config.NoRopeLayers?[l] == true ? "skips" : "applies")} the rotation, but llama.cpp's smollm3 skips it in every fourth layer only (no_rope_layers)");
            }
        }
        if (family == "gemma3")
        {
            // llama.cpp's gemma3 makes every sixth layer global and rotates the others with base 10000.
            bool[] llamaCpp = Gemma3.PatternLayers(config.LayerCount);
            for (int l = 0; l < config.LayerCount; l++)
            {
                if ((config.WindowOf(l) > 0) != llamaCpp[l])
                    throw new ModelFileException(configPath, $"layer {l} is {(config.WindowOf(l) > 0 ? "sliding" : "global")}, but llama.cpp's gemma3 makes every sixth layer global and the others sliding (layer_types)");
            }
            if (config.SlidingRopeTheta != Gemma3.LocalRopeTheta)
                throw new ModelFileException(configPath, $"rope_local_base_freq is {config.SlidingRopeTheta}, but llama.cpp's gemma3 rotates the sliding layers with base 10000");
        }
    }

    /// <summary>Hugging Face tensor name → llama.cpp name, for every role and kind the family's layout names.</summary>
    private static Dictionary<string, string> GgufNames(TensorLayout layout, int layers)
    {
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string role, int layer)
        {
            if (layout.Stem(role, layer) is not { } stem)
                return;
            string gguf = layer < 0 ? role : $"blk.{layer}.{role}";
            names.TryAdd(stem + ".weight", gguf + ".weight");
            names.TryAdd(stem + ".bias", gguf + ".bias");
        }
        foreach (string role in s_globalRoles)
            Add(role, -1);
        for (int l = 0; l < layers; l++)
        {
            foreach (string role in s_layerRoles)
                Add(role, l);
        }
        return names;
    }

    /// <summary>
    /// The rotary tables llama.cpp's converter writes as tensors (F32): Llama 3's rope_freqs, each pair's divisor of its
    /// frequency (1 above the high-frequency wavelength, the factor beyond the low one, and in between the reciprocal of
    /// the blend transformers applies), and long-rope's short and long factors.
    /// </summary>
    private static Dictionary<string, byte[]> RopeTables(DecoderConfig config)
    {
        var tables = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        byte[] Pinned(ReadOnlySpan<float> values)
        {
            var bytes = GC.AllocateUninitializedArray<byte>(values.Length * sizeof(float), pinned: true);
            MemoryMarshal.AsBytes(values).CopyTo(bytes);
            return bytes;
        }
        switch (config.RopeScaling)
        {
            case { Type: "llama3" } s:
            {
                int dim = config.ResolvedHeadDim;
                var factors = new float[dim / 2];
                double lowWavelength = s.OriginalContextLength / s.LowFrequencyFactor, highWavelength = s.OriginalContextLength / s.HighFrequencyFactor;
                for (int i = 0; i < factors.Length; i++)
                {
                    double wavelength = 2 * Math.PI * Math.Pow(config.RopeTheta, 2.0 * i / dim);
                    double smooth = (s.OriginalContextLength / wavelength - s.LowFrequencyFactor) / (s.HighFrequencyFactor - s.LowFrequencyFactor);
                    factors[i] = wavelength < highWavelength ? 1f
                        : wavelength > lowWavelength ? s.Factor
                        : (float)(1 / ((1 - smooth) / s.Factor + smooth));
                }
                tables["rope_freqs.weight"] = Pinned(factors);
                break;
            }
            case { Type: "longrope" } s:
                tables["rope_factors_long.weight"] = Pinned(s.LongFactors!);
                tables["rope_factors_short.weight"] = Pinned(s.ShortFactors!);
                break;
        }
        return tables;
    }

    /// <summary>The tensor <paramref name="name"/> (a llama.cpp name) as the converted GGUF holds it, or null.</summary>
    public WeightTensor? Find(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        byte[]? copy;
        lock (_lock)
        {
            if (_copies.TryGetValue(name, out copy) && !_huggingFaceNames.ContainsKey(name))
                return Pinned(name, GgmlType.F32, [copy.Length / sizeof(float)], copy); // a rotary table
        }
        if (!_huggingFaceNames.TryGetValue(name, out string? huggingFaceName))
            return null;
        WeightTensor tensor = _weights.Find(huggingFaceName)!;
        if (_widenToF32.Contains(name))
            return WholeInF32(name, tensor);
        long[] dimensions = (long[])tensor.Dimensions.Clone();
        int heads = !_permuteQueryKey ? 0 : IsQuery(name) ? _headCount : IsKey(name) ? _kvHeadCount : 0;
        bool vector = dimensions.Length == 1;
        bool offset = _layout.NormWeightOffset != 0 && name.EndsWith("_norm.weight", StringComparison.Ordinal);
        bool interleaved = _layout.FusedQkv == QkvLayout.PerHeadInterleaved && IsFusedQkv(name);
        bool transposed = _layout.TransposedLinears && IsLinear(name);
        if (heads == 0 && !interleaved && !transposed && (!vector || (tensor.Type == GgmlType.F32 && !offset)))
            return new WeightTensor(name, tensor.Type, dimensions, tensor.Data, tensor.ByteLength);

        if (transposed)
            dimensions = [dimensions[1], dimensions[0]];
        GgmlType type = vector ? GgmlType.F32 : tensor.Type;
        lock (_lock)
        {
            if (!_copies.TryGetValue(name, out copy))
            {
                copy = Convert(tensor, heads, offset, interleaved, transposed);
                _copies[name] = copy;
            }
        }
        return Pinned(name, type, dimensions, copy);
    }

    /// <summary>One tensor through the steps llama.cpp's converter applies to it (see the class summary).</summary>
    private byte[] Convert(WeightTensor tensor, int heads, bool offset, bool interleaved, bool transposed)
    {
        ReadOnlySpan<byte> source = tensor.Bytes;
        byte[] widened = [];
        if (tensor.Dimensions.Length == 1)
        {
            widened = GC.AllocateUninitializedArray<byte>(checked((int)tensor.ElementCount * sizeof(float)), pinned: true);
            var values = MemoryMarshal.Cast<byte, float>(widened.AsSpan());
            MatMul.WidenRow(tensor.Data, tensor.Type, (int)tensor.ElementCount, 0, values);
            if (offset)
            {
                foreach (ref float v in values)
                    v += _layout.NormWeightOffset;
            }
            source = widened;
        }
        var copy = GC.AllocateUninitializedArray<byte>(source.Length, pinned: true);
        if (heads > 0)
            RotaryRowOrder.ToGguf(source, copy, heads, _headDim);
        else if (interleaved)
            QkvToConcatenated(source, copy, _headCount, _headDim);
        else if (transposed)
            Transpose(source, copy, (int)tensor.Dimensions[0], (int)tensor.Dimensions[1], (int)(tensor.ByteLength / tensor.ElementCount));
        else
            source.CopyTo(copy);
        return copy;
    }

    /// <summary>A tensor stored whole in F32, as −exp(x) where the converter stores it so, in its converted shape.</summary>
    private WeightTensor WholeInF32(string name, WeightTensor tensor)
    {
        byte[]? copy;
        lock (_lock)
        {
            if (!_copies.TryGetValue(name, out copy))
            {
                copy = GC.AllocateUninitializedArray<byte>(checked((int)tensor.ElementCount * sizeof(float)), pinned: true);
                var values = MemoryMarshal.Cast<byte, float>(copy.AsSpan());
                MatMul.WidenRow(tensor.Data, tensor.Type, (int)tensor.ElementCount, 0, values);
                if (_negativeExponential.Contains(name))
                {
                    foreach (ref float v in values)
                        v = -MathF.Exp(v);
                }
                _copies[name] = copy;
            }
        }
        return Pinned(name, GgmlType.F32, _shapes.GetValueOrDefault(name) ?? (long[])tensor.Dimensions.Clone(), copy);
    }

    private static WeightTensor Pinned(string name, GgmlType type, long[] dimensions, byte[] copy)
    {
        byte* data = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(copy));
        return new WeightTensor(name, type, dimensions, data, copy.Length);
    }

    /// <summary>
    /// GPT-NeoX's and BLOOM's fused rows, head by head (q, k, v of head 0, then of head 1, …), to llama.cpp's order: the
    /// q rows of every head, then the k rows, then the v rows. Rows move whole (a bias is rows of one value).
    /// </summary>
    private static void QkvToConcatenated(ReadOnlySpan<byte> source, Span<byte> destination, int heads, int headDim)
    {
        int rowBytes = source.Length / (3 * heads * headDim), block = headDim * rowBytes;
        for (int h = 0; h < heads; h++)
        {
            for (int part = 0; part < 3; part++)
                source.Slice((3 * h + part) * block, block).CopyTo(destination.Slice((part * heads + h) * block));
        }
    }

    /// <summary>A [rows, cols] matrix of <paramref name="elementBytes"/>-byte values to [cols, rows] (GPT-2's Conv1D).</summary>
    private static void Transpose(ReadOnlySpan<byte> source, Span<byte> destination, int rows, int cols, int elementBytes)
    {
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
                source.Slice((r * cols + c) * elementBytes, elementBytes).CopyTo(destination.Slice((c * rows + r) * elementBytes));
        }
    }

    /// <summary>Closes the safetensors files; tensors handed out by <see cref="Find"/> become invalid.</summary>
    public void Dispose()
    {
        _disposed = true;
        _weights.Dispose();
        lock (_lock)
            _copies.Clear();
    }

    private static bool IsQuery(string ggufName) => ggufName.EndsWith(".attn_q.weight", StringComparison.Ordinal);

    private static bool IsKey(string ggufName) => ggufName.EndsWith(".attn_k.weight", StringComparison.Ordinal);

    private static bool IsFusedQkv(string ggufName) => ggufName.Contains(".attn_qkv.", StringComparison.Ordinal);

    /// <summary>A block's projection matrix (what GPT-2 stores transposed); the embeddings and the head are not.</summary>
    private static bool IsLinear(string ggufName) =>
        ggufName.StartsWith("blk.", StringComparison.Ordinal) && ggufName.EndsWith(".weight", StringComparison.Ordinal) && !ggufName.EndsWith("_norm.weight", StringComparison.Ordinal);
}
