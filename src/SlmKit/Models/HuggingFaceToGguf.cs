using SlmKit.Formats;

namespace SlmKit.Models;

/// <summary>
/// Converts a Hugging Face folder (config.json, *.safetensors, tokenizer.json) of a family llama.cpp runs to one GGUF
/// file that SlmKit and llama.cpp load, as llama.cpp's converter writes it: {arch}.* metadata from the config, the
/// tokenizer as tokenizer.ggml.*, tensors renamed to llama.cpp's names and changed where its converter changes them
/// (see <see cref="HuggingFaceGgufSource"/>, which <c>slm quantize</c> shares), dtypes kept (vectors in F32).
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
