using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Models;
using SlmKit.Tensors;
using SlmKit.Tokenizers;

namespace SlmKit.Training.Export;

/// <summary>
/// Writes a trained model where the runtime and other tools read it: a GGUF file (llama.cpp's architecture, metadata,
/// tensor names and the tokenizer's vocabulary) and a Hugging Face folder (safetensors named and laid out as the
/// family's <see cref="ModelFamily.HuggingFaceLayout"/> says, config.json, generation_config.json, and the tokenizer
/// files when the tokenizer came from such a folder). Families: llama, qwen2, gpt2.
/// <para>
/// Every export is checked against the family's own reader before a tensor is written: the metadata (or config.json)
/// is read back through <see cref="ModelFamily.FromGguf"/> (or <see cref="ModelFamily.FromHuggingFace"/>) and must give
/// the trained <see cref="DecoderConfig"/>, so a file never describes a different architecture from the one trained.
/// The only difference allowed is the rotary row order, which the export converts (q/k rows move, values do not).
/// </para>
/// </summary>
public static class ModelExport
{
    /// <summary>The families this exporter writes.</summary>
    public static IReadOnlyList<ModelFamily> Families { get; } = [Llama.Family, Qwen2.Family, Gpt2.Family];

    /// <summary>Throws a <see cref="SlmKitException"/> unless both files of <paramref name="architecture"/> can be written faithfully.</summary>
    public static void EnsureExportable(TrainingArchitecture architecture)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        _ = GgufView(architecture);
        _ = HuggingFaceView(architecture, tokenizer: null);
    }

    /// <summary>Writes <paramref name="parameters"/> (GGUF names, row-major) as a GGUF of the family's architecture with the tokenizer's metadata.</summary>
    public static void WriteGguf(string path, TrainingArchitecture architecture, IEnumerable<(string Name, int[] Shape, float[] Values)> parameters, Tokenizer tokenizer, string name)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(tokenizer);
        DecoderConfig config = architecture.Config;
        DecoderConfig stored = GgufView(architecture);
        var writer = new GgufWriter();
        SetGgufMetadata(writer, architecture, name);
        tokenizer.WriteGgufMetadata(writer);
        if (tokenizer.VocabSize != config.VocabSize)
            throw new SlmKitException($"the tokenizer has {tokenizer.VocabSize} tokens but the model {config.VocabSize} embedding rows; llama.cpp needs them equal");
        bool fuseQkv = architecture.Family == Gpt2.Family; // llama.cpp's gpt2 reads one attn_qkv per block
        foreach (var (tensorName, shape, values) in Stored(parameters, config, stored.RopeLayout, fuseQkv))
            writer.AddTensor(tensorName, Array.ConvertAll(shape, d => (long)d), values);
        writer.Write(path);
    }

    /// <summary>Writes a Hugging Face folder (model.safetensors + config.json + generation_config.json + tokenizer files).</summary>
    public static void WriteHuggingFace(string folder, TrainingArchitecture architecture, IEnumerable<(string Name, int[] Shape, float[] Values)> parameters, Tokenizer tokenizer, string? tokenizerFolder)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(tokenizer);
        DecoderConfig config = architecture.Config;
        DecoderConfig stored = HuggingFaceView(architecture, tokenizer);
        TensorLayout layout = architecture.Family.HuggingFaceLayout(new NoTensors());
        bool fuseQkv = layout.Stem("attn_q", 0) is null && layout.Stem("attn_qkv", 0) is not null;
        if (fuseQkv && layout.FusedQkv != QkvLayout.Concatenated)
            throw new SlmKitException($"the {architecture.Family.Name} family's Hugging Face fused qkv order is not written yet");

        Directory.CreateDirectory(folder);
        var entries = new List<SafeTensorEntry>();
        foreach (var (name, shape, values) in Stored(parameters, config, stored.RopeLayout, fuseQkv))
        {
            var (role, layer, kind) = Split(name);
            string stem = layout.Stem(role, layer) ?? throw new SlmKitException($"tensor '{name}' has no Hugging Face {architecture.Family.Name} name");
            float[] data = values;
            int[] dims = shape;
            // GPT-2's Conv1D stores linear weights [in, out]; embeddings and the head stay [rows, width].
            if (layout.TransposedLinears && shape.Length == 2 && role is not ("token_embd" or "position_embd" or "output"))
            {
                data = Transpose(values, shape[0], shape[1]);
                dims = [shape[1], shape[0]];
            }
            entries.Add(new SafeTensorEntry(stem + "." + kind, GgmlType.F32, Array.ConvertAll(dims, d => (long)d), MemoryMarshal.AsBytes(data.AsSpan()).ToArray()));
        }
        SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), entries, new Dictionary<string, string> { ["format"] = "pt" });
        AtomicFile.Write(Path.Combine(folder, HuggingFaceConfig.FileName), s => s.Write(HuggingFaceConfigJson(architecture, tokenizer)));

        string Id(int? id) => id?.ToString(CultureInfo.InvariantCulture) ?? "null";
        string generation = $$"""
        {
          "bos_token_id": {{Id(tokenizer.BosId)}},
          "eos_token_id": {{Id(tokenizer.EosId)}},
          "do_sample": true,
          "temperature": 0.8,
          "top_p": 0.95
        }
        """;
        AtomicFile.Write(Path.Combine(folder, "generation_config.json"), s => s.Write(System.Text.Encoding.UTF8.GetBytes(generation)));
        if (tokenizerFolder is not null)
        {
            foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja" })
            {
                string source = Path.Combine(tokenizerFolder, file);
                if (File.Exists(source))
                    File.Copy(source, Path.Combine(folder, file), overwrite: true);
            }
        }
    }

    private static void RequireFamily(TrainingArchitecture architecture)
    {
        if (!Families.Contains(architecture.Family))
            throw new SlmKitException($"exporting the '{architecture.Family.Name}' family is not supported yet (supported: {string.Join(", ", Families.Select(f => f.Name))})");
        if (architecture.Family.GgufArchitectures.Count == 0)
            throw new SlmKitException($"llama.cpp has no architecture for the '{architecture.Family.Name}' family");
    }

    /// <summary>llama.cpp's metadata for the config: {arch}.* sizes, norm ε, rotary settings, vocabulary size.</summary>
    private static void SetGgufMetadata(GgufWriter writer, TrainingArchitecture architecture, string name)
    {
        string a = architecture.Family.GgufArchitectures[0];
        writer.Set("general.architecture", a);
        writer.Set("general.name", name);
        writer.Set("general.file_type", 0u);
        GgufDecoderMetadata.Write(writer, a, architecture.Config);
    }

    /// <summary>transformers' config.json for the config, in the family's own field names.</summary>
    private static byte[] HuggingFaceConfigJson(TrainingArchitecture architecture, Tokenizer? tokenizer)
    {
        DecoderConfig c = architecture.Config;
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            if (architecture.Family == Gpt2.Family)
            {
                w.WriteStartArray("architectures");
                w.WriteStringValue("GPT2LMHeadModel");
                w.WriteEndArray();
                w.WriteString("model_type", "gpt2");
                w.WriteNumber("n_embd", c.HiddenSize);
                w.WriteNumber("n_layer", c.LayerCount);
                w.WriteNumber("n_head", c.HeadCount);
                w.WriteNumber("n_inner", c.FeedForwardSize);
                w.WriteNumber("vocab_size", c.VocabSize);
                w.WriteNumber("n_positions", c.ContextLength);
                w.WriteNumber("n_ctx", c.ContextLength);
                w.WriteNumber("layer_norm_epsilon", c.NormEpsilon);
                w.WriteString("activation_function", c.Activation switch
                {
                    ActivationKind.GeluTanh => "gelu_new",
                    ActivationKind.GeluErf => "gelu",
                    ActivationKind.Relu => "relu",
                    ActivationKind.SquaredRelu => "relu2",
                    _ => "silu",
                });
            }
            else
            {
                bool qwen2 = architecture.Family == Qwen2.Family;
                w.WriteStartArray("architectures");
                w.WriteStringValue(qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM");
                w.WriteEndArray();
                w.WriteString("model_type", qwen2 ? "qwen2" : "llama");
                w.WriteNumber("hidden_size", c.HiddenSize);
                w.WriteNumber("intermediate_size", c.FeedForwardSize);
                w.WriteNumber("num_hidden_layers", c.LayerCount);
                w.WriteNumber("num_attention_heads", c.HeadCount);
                w.WriteNumber("num_key_value_heads", c.KvHeadCount);
                if (!qwen2) // transformers' Qwen2 always derives the head size
                    w.WriteNumber("head_dim", c.ResolvedHeadDim);
                w.WriteNumber("vocab_size", c.VocabSize);
                w.WriteNumber("max_position_embeddings", c.ContextLength);
                w.WriteNumber("rms_norm_eps", c.NormEpsilon);
                w.WriteNumber("rope_theta", c.RopeTheta);
                w.WriteString("hidden_act", "silu");
                if (qwen2)
                    w.WriteBoolean("use_sliding_window", false);
            }
            w.WriteBoolean("tie_word_embeddings", c.TiedEmbeddings);
            w.WriteString("torch_dtype", "float32");
            if (tokenizer?.BosId is int bos)
                w.WriteNumber("bos_token_id", bos);
            if (tokenizer?.EosId is int eos)
                w.WriteNumber("eos_token_id", eos);
            w.WriteEndObject();
        }
        return stream.ToArray();
    }

    /// <summary>The config the family reads back from the GGUF metadata this export writes; refused unless it is the trained one.</summary>
    private static DecoderConfig GgufView(TrainingArchitecture architecture)
    {
        RequireFamily(architecture);
        DecoderConfig c = architecture.Config;
        string folder = Directory.CreateTempSubdirectory("slmkit-export-").FullName;
        try
        {
            // The metadata and stand-ins for the two tensors a family's reader looks at (the embedding, and the head when untied).
            string path = Path.Combine(folder, "probe.gguf");
            var writer = new GgufWriter();
            SetGgufMetadata(writer, architecture, "probe");
            writer.AddTensor("token_embd.weight", [1L, 1L], new float[1]);
            if (!c.TiedEmbeddings)
                writer.AddTensor("output.weight", [1L, 1L], new float[1]);
            writer.Write(path);
            using var file = GgufFile.Open(path);
            DecoderConfig read = architecture.Family.FromGguf(file);
            RequireSame(c, read, $"GGUF '{architecture.Family.GgufArchitectures[0]}'");
            return read;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The config the family reads back from the config.json this export writes; refused unless it is the trained one.</summary>
    private static DecoderConfig HuggingFaceView(TrainingArchitecture architecture, Tokenizer? tokenizer)
    {
        RequireFamily(architecture);
        string folder = Directory.CreateTempSubdirectory("slmkit-export-").FullName;
        try
        {
            string path = Path.Combine(folder, HuggingFaceConfig.FileName);
            File.WriteAllBytes(path, HuggingFaceConfigJson(architecture, tokenizer));
            DecoderConfig read = architecture.Family.FromHuggingFace(HuggingFaceConfig.Load(path));
            RequireSame(architecture.Config, read, $"Hugging Face '{architecture.Family.HuggingFaceModelTypes[0]}'");
            return read;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static void RequireSame(DecoderConfig trained, DecoderConfig read, string target)
    {
        var differences = Differences(trained, read);
        if (differences.Count > 0)
            throw new SlmKitException($"a {target} file cannot describe this model: {string.Join("; ", differences)}");
        if (trained.Positions == PositionKind.Rope && trained.RopeLayout != read.RopeLayout && trained.ResolvedRotaryDim != trained.ResolvedHeadDim)
            throw new SlmKitException($"a {target} file rotates {read.RopeLayout} pairs; moving the rows of a partial rotary head there is not supported");
    }

    /// <summary>
    /// The choices and sizes in which two configs differ ("Norm: RmsNorm vs LayerNorm"), compared as the runtime
    /// resolves them (head size, rotary size, attention scale). The rotary row order is left out: export converts it.
    /// </summary>
    internal static List<string> Differences(DecoderConfig a, DecoderConfig b)
    {
        var differences = new List<string>();
        void Compare<TValue>(string name, TValue x, TValue y)
        {
            if (!EqualityComparer<TValue>.Default.Equals(x, y))
                differences.Add(string.Create(CultureInfo.InvariantCulture, $"{name}: {x} vs {y}"));
        }
        string List(int[]? values) => values is null ? "-" : string.Join(",", values);

        Compare("HiddenSize", a.HiddenSize, b.HiddenSize);
        Compare("LayerCount", a.LayerCount, b.LayerCount);
        Compare("HeadCount", a.HeadCount, b.HeadCount);
        Compare("KvHeadCount", a.KvHeadCount, b.KvHeadCount);
        Compare("FeedForwardSize", a.FeedForwardSize, b.FeedForwardSize);
        Compare("VocabSize", a.VocabSize, b.VocabSize);
        Compare("HeadDim", a.ResolvedHeadDim, b.ResolvedHeadDim);
        Compare("ContextLength", a.ContextLength, b.ContextLength);
        Compare("Norm", a.Norm, b.Norm);
        Compare("NormHasWeight", a.NormHasWeight, b.NormHasWeight);
        Compare("NormHasBias", a.NormHasBias, b.NormHasBias);
        Compare("NormEpsilon", a.NormEpsilon, b.NormEpsilon);
        Compare("PostNorms", a.PostNorms, b.PostNorms);
        Compare("PreNorms", a.PreNorms, b.PreNorms);
        Compare("EmbeddingNorm", a.EmbeddingNorm, b.EmbeddingNorm);
        Compare("PostLayerNorm", a.PostLayerNorm, b.PostLayerNorm);
        Compare("FinalNorm", a.FinalNorm, b.FinalNorm);
        Compare("Residual", a.Residual, b.Residual);
        Compare("ResidualScale", a.ResidualScale, b.ResidualScale);
        Compare("QkvBias", a.QkvBias, b.QkvBias);
        Compare("AttentionOutputBias", a.AttentionOutputBias, b.AttentionOutputBias);
        Compare("QkNorm", a.QkNorm, b.QkNorm);
        Compare("QkNormAcrossHeads", a.QkNormAcrossHeads, b.QkNormAcrossHeads);
        Compare("AttentionScale", a.ResolvedAttentionScale, b.ResolvedAttentionScale);
        Compare("AttentionSoftCap", a.AttentionSoftCap, b.AttentionSoftCap);
        Compare("ClipQkv", a.ClipQkv, b.ClipQkv);
        for (int l = 0; l < Math.Min(a.LayerCount, b.LayerCount); l++)
            Compare($"sliding window of layer {l}", a.WindowOf(l), b.WindowOf(l));
        Compare("Positions", a.Positions, b.Positions);
        Compare("PositionOffset", a.PositionOffset, b.PositionOffset);
        if (a.Positions == PositionKind.Rope && b.Positions == PositionKind.Rope)
        {
            Compare("RopeTheta", a.RopeTheta, b.RopeTheta);
            Compare("RotaryDim", a.ResolvedRotaryDim, b.ResolvedRotaryDim);
            Compare("RopeScaling", a.RopeScaling?.ToString(), b.RopeScaling?.ToString());
            Compare("SlidingRopeTheta", a.SlidingRopeTheta, b.SlidingRopeTheta);
            for (int l = 0; l < Math.Min(a.LayerCount, b.LayerCount); l++)
                Compare($"rotation skipped in layer {l}", a.NoRopeLayers?[l] ?? false, b.NoRopeLayers?[l] ?? false);
        }
        Compare("GatedFeedForward", a.GatedFeedForward, b.GatedFeedForward);
        Compare("Activation", a.Activation, b.Activation);
        Compare("FeedForwardBias", a.FeedForwardBias, b.FeedForwardBias);
        Compare("TiedEmbeddings", a.TiedEmbeddings, b.TiedEmbeddings);
        Compare("EmbeddingSize", a.ResolvedEmbeddingSize, b.ResolvedEmbeddingSize);
        Compare("EmbeddingScale", a.EmbeddingScale, b.EmbeddingScale);
        Compare("LogitScale", a.LogitScale, b.LogitScale);
        Compare("FinalLogitSoftCap", a.FinalLogitSoftCap, b.FinalLogitSoftCap);
        Compare("HeadBias", a.HeadBias && !a.TiedEmbeddings, b.HeadBias && !b.TiedEmbeddings);
        Compare("LayerHeadCounts", List(a.LayerHeadCounts), List(b.LayerHeadCounts));
        Compare("LayerKvHeadCounts", List(a.LayerKvHeadCounts), List(b.LayerKvHeadCounts));
        Compare("LayerFeedForwardSizes", List(a.LayerFeedForwardSizes), List(b.LayerFeedForwardSizes));
        return differences;
    }

    /// <summary>
    /// The parameters as a file stores them: q/k rows (and biases) moved when the file's rotary order differs from the
    /// trained one, and q, k, v concatenated into attn_qkv (weights, then biases) when <paramref name="fuseQkv"/>.
    /// </summary>
    private static IEnumerable<(string Name, int[] Shape, float[] Values)> Stored(
        IEnumerable<(string Name, int[] Shape, float[] Values)> parameters, DecoderConfig config, RopeLayout fileLayout, bool fuseQkv)
    {
        bool moveRows = config.Positions == PositionKind.Rope && config.RopeLayout != fileLayout;
        int headDim = config.ResolvedHeadDim;
        var pending = new Dictionary<string, (int[] Shape, float[] Values)>(StringComparer.Ordinal);
        foreach (var (name, shape, values) in parameters)
        {
            var (role, layer, kind) = Split(name);
            float[] data = values;
            if (moveRows && role is "attn_q" or "attn_k")
            {
                int heads = role == "attn_q" ? config.HeadCount : config.KvHeadCount;
                var bytes = MemoryMarshal.AsBytes(values.AsSpan());
                byte[] moved = config.RopeLayout == RopeLayout.Normal ? RotaryRowOrder.ToHuggingFace(bytes, heads, headDim) : RotaryRowOrder.ToGguf(bytes, heads, headDim);
                data = MemoryMarshal.Cast<byte, float>(moved).ToArray();
            }
            if (!fuseQkv || role is not ("attn_q" or "attn_k" or "attn_v"))
            {
                yield return (name, shape, data);
                continue;
            }
            pending[role + "." + kind] = (shape, data);
            if (role != "attn_v")
                continue;
            // q, k, v of this kind are all in: one [q + 2kv, …] tensor, rows in that order.
            var (q, k, v) = (pending["attn_q." + kind], pending["attn_k." + kind], pending["attn_v." + kind]);
            foreach (string part in new[] { "attn_q.", "attn_k.", "attn_v." })
                pending.Remove(part + kind);
            int[] fused = (int[])q.Shape.Clone();
            fused[0] = q.Shape[0] + k.Shape[0] + v.Shape[0];
            yield return (string.Create(CultureInfo.InvariantCulture, $"blk.{layer}.attn_qkv.{kind}"), fused, [.. q.Values, .. k.Values, .. v.Values]);
        }
    }

    /// <summary>"blk.3.attn_q.bias" → ("attn_q", 3, "bias"); "token_embd.weight" → ("token_embd", −1, "weight").</summary>
    private static (string Role, int Layer, string Kind) Split(string name)
    {
        string[] parts = name.Split('.');
        return parts switch
        {
            [var role, var kind] => (role, -1, kind),
            ["blk", var n, var role, var kind] when int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out int layer) => (role, layer, kind),
            _ => throw new SlmKitException($"'{name}' is not a GGUF tensor name"),
        };
    }

    private static float[] Transpose(float[] values, int rows, int columns)
    {
        var result = new float[values.Length];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
                result[c * rows + r] = values[r * columns + c];
        }
        return result;
    }

    /// <summary>A weight source with no tensors: a family's Hugging Face layout probes for optional prefixes and finds none.</summary>
    private sealed class NoTensors : IWeightSource
    {
        public string SourcePath => "export";
        public IReadOnlyList<string> TensorNames => [];
        public WeightTensor? Find(string name) => null;
        public void Dispose()
        {
        }
    }
}
