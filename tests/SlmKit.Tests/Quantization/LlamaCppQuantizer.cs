using LLama;
using LLama.Native;

namespace SlmKit.Tests.Quantization;

/// <summary>llama.cpp's own quantizer (through LLamaSharp, tests only), with llama-quantize's defaults.</summary>
internal static class LlamaCppQuantizer
{
    private static readonly object s_lock = new();

    public static string Quantize(string source, string destination, LLamaFtype type)
    {
        LlamaCppOracle.EnsureInitialised();
        lock (s_lock)
        {
            if (!LLamaQuantizer.Quantize(source, destination, type, nthread: 2, allowRequantize: true, quantizeOutputTensor: true))
                throw new InvalidOperationException($"llama.cpp failed to quantize {source} to {type}");
        }
        return destination;
    }
}
