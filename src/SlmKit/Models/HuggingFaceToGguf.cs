using SlmKit.Formats;

namespace SlmKit.Models;

/// <summary>
/// Converts a Hugging Face Llama, Qwen2 or Gemma folder (config.json, *.safetensors, tokenizer.json) to one GGUF file
/// that SlmKit and llama.cpp load: {arch}.* metadata from the config, the tokenizer as tokenizer.ggml.*, tensors renamed
/// to llama.cpp's names (Llama's q/k rows moved from transformers' rotate-half order to adjacent pairs, Gemma's norms
/// stored as 1 + w), dtypes kept (norms and biases in F32). The folder is read through
/// <see cref="HuggingFaceGgufSource"/>, which <c>slm quantize</c> shares.
/// </summary>
public static class HuggingFaceToGguf
{
    /// <summary>Writes <paramref name="outputPath"/> (atomically) from the folder <paramref name="folder"/>; reports progress per tensor.</summary>
    public static void Convert(string folder, string outputPath, IProgress<(int Done, int Total)>? progress = null)
    {
        using var source = HuggingFaceGgufSource.Open(folder);
        var writer = new GgufWriter();
        foreach (var (key, value) in source.Metadata)
            writer.Set(key, value);
        int done = 0;
        foreach (string name in source.TensorNames)
        {
            var tensor = source.Find(name)!;
            writer.AddTensor(name, tensor.Type, tensor.Dimensions, tensor.Bytes);
            progress?.Report((++done, source.TensorNames.Count));
        }
        writer.Write(outputPath);
    }
}
