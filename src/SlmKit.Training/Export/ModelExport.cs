using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using SlmKit.Formats;
using SlmKit.Models;
using SlmKit.Tensors;
using SlmKit.Tokenizers;

namespace SlmKit.Training.Export;

/// <summary>
/// Writes a trained model where the runtime and other tools read it: a GGUF file (llama.cpp's names, metadata and
/// the tokenizer's vocabulary) and a Hugging Face folder (safetensors with transformers' names and q/k row order,
/// config.json, generation_config.json, and the tokenizer files when the tokenizer came from such a folder).
/// </summary>
public static class ModelExport
{
    /// <summary>Writes <paramref name="parameters"/> (GGUF names, row-major) as a llama GGUF with the tokenizer's metadata.</summary>
    public static void WriteGguf(string path, LlamaTrainingConfig config, IEnumerable<(string Name, int[] Shape, float[] Values)> parameters, Tokenizer tokenizer, string name, int contextLength)
    {
        var writer = new GgufWriter();
        writer.Set("general.architecture", "llama");
        writer.Set("general.name", name);
        writer.Set("general.file_type", 0u);
        writer.Set("llama.context_length", (uint)contextLength);
        writer.Set("llama.embedding_length", (uint)config.Dim);
        writer.Set("llama.block_count", (uint)config.LayerCount);
        writer.Set("llama.feed_forward_length", (uint)config.FfnDim);
        writer.Set("llama.rope.dimension_count", (uint)config.HeadDim);
        writer.Set("llama.attention.head_count", (uint)config.HeadCount);
        writer.Set("llama.attention.head_count_kv", (uint)config.KvHeadCount);
        writer.Set("llama.attention.layer_norm_rms_epsilon", (float)config.NormEpsilon);
        writer.Set("llama.rope.freq_base", (float)config.RopeTheta);
        writer.Set("llama.vocab_size", (uint)config.VocabSize);
        tokenizer.WriteGgufMetadata(writer);
        if (tokenizer.VocabSize != config.VocabSize)
            throw new SlmKitException($"the tokenizer has {tokenizer.VocabSize} tokens but the model {config.VocabSize} embedding rows; llama.cpp needs them equal");
        foreach (var (tensorName, shape, values) in parameters)
            writer.AddTensor(tensorName, Array.ConvertAll(shape, d => (long)d), values);
        writer.Write(path);
    }

    /// <summary>Writes a Hugging Face folder (model.safetensors + config.json + generation_config.json + tokenizer files).</summary>
    public static void WriteHuggingFace(string folder, LlamaTrainingConfig config, IEnumerable<(string Name, int[] Shape, float[] Values)> parameters, Tokenizer tokenizer, string? tokenizerFolder, int contextLength)
    {
        Directory.CreateDirectory(folder);
        var entries = new List<SafeTensorEntry>();
        foreach (var (name, shape, values) in parameters)
        {
            var bytes = MemoryMarshal.AsBytes(values.AsSpan());
            byte[] data = name.EndsWith(".attn_q.weight", StringComparison.Ordinal) ? RotaryRowOrder.ToHuggingFace(bytes, config.HeadCount, config.HeadDim)
                : name.EndsWith(".attn_k.weight", StringComparison.Ordinal) ? RotaryRowOrder.ToHuggingFace(bytes, config.KvHeadCount, config.HeadDim)
                : bytes.ToArray();
            string hfName = Llama.HuggingFaceName(name) ?? throw new SlmKitException($"tensor '{name}' has no Hugging Face Llama name");
            entries.Add(new SafeTensorEntry(hfName, GgmlType.F32, Array.ConvertAll(shape, d => (long)d), data));
        }
        SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), entries, new Dictionary<string, string> { ["format"] = "pt" });

        string I(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        string configJson = $$"""
        {
          "architectures": ["LlamaForCausalLM"],
          "model_type": "llama",
          "hidden_size": {{config.Dim}},
          "intermediate_size": {{config.FfnDim}},
          "num_hidden_layers": {{config.LayerCount}},
          "num_attention_heads": {{config.HeadCount}},
          "num_key_value_heads": {{config.KvHeadCount}},
          "head_dim": {{config.HeadDim}},
          "vocab_size": {{config.VocabSize}},
          "max_position_embeddings": {{contextLength}},
          "rms_norm_eps": {{I(config.NormEpsilon)}},
          "rope_theta": {{I(config.RopeTheta)}},
          "tie_word_embeddings": {{(config.TiedEmbeddings ? "true" : "false")}},
          "hidden_act": "silu",
          "torch_dtype": "float32",
          "bos_token_id": {{tokenizer.BosId?.ToString(CultureInfo.InvariantCulture) ?? "null"}},
          "eos_token_id": {{tokenizer.EosId?.ToString(CultureInfo.InvariantCulture) ?? "null"}}
        }
        """;
        AtomicFile.Write(Path.Combine(folder, "config.json"), s => s.Write(Encoding.UTF8.GetBytes(configJson)));
        string generation = $$"""
        {
          "bos_token_id": {{tokenizer.BosId?.ToString(CultureInfo.InvariantCulture) ?? "null"}},
          "eos_token_id": {{tokenizer.EosId?.ToString(CultureInfo.InvariantCulture) ?? "null"}},
          "do_sample": true,
          "temperature": 0.8,
          "top_p": 0.95
        }
        """;
        AtomicFile.Write(Path.Combine(folder, "generation_config.json"), s => s.Write(Encoding.UTF8.GetBytes(generation)));
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
}
