using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Tensors;
using SlmKit.Tokenizers;

namespace SlmKit.Models;

/// <summary>
/// Converts a Hugging Face Llama-family folder (config.json, *.safetensors, tokenizer.json) to one GGUF file that
/// SlmKit and llama.cpp load: llama.* metadata from the config, the tokenizer as tokenizer.ggml.*, tensors renamed
/// to llama.cpp's names with q/k rows moved from transformers' rotate-half order to adjacent pairs, dtypes kept.
/// </summary>
public static class HuggingFaceToGguf
{
    /// <summary>Writes <paramref name="outputPath"/> (atomically) from the folder <paramref name="folder"/>; reports progress per tensor.</summary>
    public static void Convert(string folder, string outputPath, IProgress<(int Done, int Total)>? progress = null)
    {
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath))
            throw new ModelFileException(folder, "not a Hugging Face model folder: config.json is missing");
        var hf = HuggingFaceConfig.Load(configPath);
        if (hf.ModelType != "llama")
            throw new ModelFileException(configPath, $"converting model_type '{hf.ModelType}' is not supported yet (supported: llama); SlmKit runs such folders directly");
        DecoderConfig config = ModelLoader.ConfigFromHuggingFace(hf);
        if (config.RopeScaling is not null && config.RopeScaling.Type != "linear")
            throw new ModelFileException(configPath, $"rope scaling '{config.RopeScaling.Type}' cannot be written to GGUF by this converter yet");
        Tokenizer tokenizer = Tokenizer.FromHuggingFace(folder);
        using var weights = SafeTensorsModel.Open(folder);

        int headDim = config.HeadDim > 0 ? config.HeadDim : config.HiddenSize / config.HeadCount;
        var writer = new GgufWriter();
        writer.Set("general.architecture", "llama");
        writer.Set("general.name", Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar)));
        writer.Set("llama.context_length", (uint)config.ContextLength);
        writer.Set("llama.embedding_length", (uint)config.HiddenSize);
        writer.Set("llama.block_count", (uint)config.LayerCount);
        writer.Set("llama.feed_forward_length", (uint)config.FeedForwardSize);
        writer.Set("llama.rope.dimension_count", (uint)headDim);
        writer.Set("llama.attention.head_count", (uint)config.HeadCount);
        writer.Set("llama.attention.head_count_kv", (uint)config.KvHeadCount);
        if (headDim != config.HiddenSize / config.HeadCount)
        {
            writer.Set("llama.attention.key_length", (uint)headDim);
            writer.Set("llama.attention.value_length", (uint)headDim);
        }
        writer.Set("llama.attention.layer_norm_rms_epsilon", config.NormEpsilon);
        writer.Set("llama.rope.freq_base", config.RopeTheta);
        if (config.RopeScaling is { Type: "linear" } linear)
        {
            writer.Set("llama.rope.scaling.type", "linear");
            writer.Set("llama.rope.scaling.factor", linear.Factor);
        }
        writer.Set("llama.vocab_size", (uint)config.VocabSize);
        tokenizer.WriteGgufMetadata(writer);

        var names = weights.TensorNames;
        int done = 0;
        foreach (string name in names)
        {
            if (name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal))
                continue; // old checkpoints carry the RoPE table; it is recomputed from rope_theta
            var tensor = weights.Find(name)!;
            if (!GgmlTypeInfo.IsSupportedForCompute(tensor.Type))
                throw new ModelFileException(folder, $"tensor '{name}' is {tensor.Type}; only F32, F16 and BF16 checkpoints convert");
            string gguf = Llama.GgufName(name) ?? throw new ModelFileException(folder, $"tensor '{name}' has no llama.cpp name");
            byte[] data = gguf.EndsWith(".attn_q.weight", StringComparison.Ordinal) ? RotaryRowOrder.ToGguf(tensor.Bytes, config.HeadCount, headDim)
                : gguf.EndsWith(".attn_k.weight", StringComparison.Ordinal) ? RotaryRowOrder.ToGguf(tensor.Bytes, config.KvHeadCount, headDim)
                : tensor.Bytes.ToArray();
            // llama.cpp keeps norms in F32, as its converter does.
            if (tensor.Dimensions.Length == 1 && tensor.Type != GgmlType.F32)
            {
                var values = new float[tensor.ElementCount];
                unsafe
                {
                    MatMul.WidenRow(tensor.Data, tensor.Type, values.Length, 0, values);
                }
                writer.AddTensor(gguf, tensor.Dimensions, values);
            }
            else
            {
                writer.AddTensor(gguf, tensor.Type, tensor.Dimensions, data);
            }
            progress?.Report((++done, names.Count));
        }
        writer.Write(outputPath);
    }
}
