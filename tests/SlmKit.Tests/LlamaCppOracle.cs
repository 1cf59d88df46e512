using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace SlmKit.Tests;

/// <summary>
/// llama.cpp (through LLamaSharp 0.30) as the reference implementation for tests. All LLamaSharp use goes through
/// here so the native library is initialised once, in the right order: the log callback must be set before the
/// native library loads, and <c>NativeApi.llama_empty_call()</c> forces that load before entry points that would
/// otherwise throw <see cref="DllNotFoundException"/>.
/// </summary>
internal static class LlamaCppOracle
{
    private static readonly Lazy<bool> s_initialised = new(() =>
    {
        NativeLibraryConfig.All.WithLogCallback((level, message) => { });
        NativeApi.llama_empty_call();
        return true;
    });

    /// <summary>Initialises LLamaSharp (idempotent, thread-safe). Call before any other LLamaSharp API.</summary>
    public static void EnsureInitialised() => _ = s_initialised.Value;

    /// <summary>Loads only the vocabulary of a GGUF file (no tensors), e.g. the llama.cpp ggml-vocab-*.gguf files.</summary>
    public static LLamaWeights LoadVocabOnly(string ggufPath)
    {
        EnsureInitialised();
        return LLamaWeights.LoadFromFile(new ModelParams(ggufPath) { VocabOnly = true, GpuLayerCount = 0 });
    }

    /// <summary>llama.cpp's tokenization of <paramref name="text"/> (llama_tokenize with add_special / parse_special).</summary>
    public static int[] Tokenize(LLamaWeights weights, string text, bool addSpecial, bool parseSpecial)
    {
        LLamaToken[] tokens = weights.NativeHandle.Tokenize(text, addSpecial, parseSpecial, Encoding.UTF8);
        var ids = new int[tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
            ids[i] = (int)tokens[i];
        return ids;
    }
}
