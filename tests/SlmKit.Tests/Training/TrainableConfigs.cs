using SlmKit.Kernels;
using SlmKit.Models;
using SlmKit.Training;

namespace SlmKit.Tests.Training;

/// <summary>
/// Small decoder configs covering every <see cref="DecoderConfig"/> choice the trainer runs, for the gradient checks
/// and the comparisons with the runtime: vocabulary 13, width 8, 2 layers.
/// </summary>
internal static class TrainableConfigs
{
    private static readonly DecoderConfig s_llama = ModelPresets.Llama(13, 8, 2, 2, 1, 12, contextLength: 8);

    private static readonly DecoderConfig s_layerNorm = s_llama with { Norm = NormKind.LayerNorm, NormHasBias = true, NormEpsilon = 1e-5f };

    public static IReadOnlyList<string> Names { get; } = ["llama", "llama-untied-mha", "qwen2", "gpt2", "neox-like", "phi-like", "opt-like", "wide-heads"];

    public static DecoderConfig Get(string name) => name switch
    {
        "llama" => s_llama,
        "llama-untied-mha" => s_llama with { KvHeadCount = 2, TiedEmbeddings = false, RopeTheta = 500f },
        // Qwen2 as GGUF reads it: biases on q, k, v; half-split rotary pairs.
        "qwen2" => s_llama with { QkvBias = true, RopeLayout = RopeLayout.NeoX, TiedEmbeddings = false, RopeTheta = 1e6f },
        // GPT-2: learned positions, LayerNorm with bias, biases everywhere, GELU (tanh) MLP without gate, tied head.
        "gpt2" => s_layerNorm with
        {
            KvHeadCount = 2, Positions = PositionKind.Learned, QkvBias = true, AttentionOutputBias = true,
            GatedFeedForward = false, Activation = ActivationKind.GeluTanh, FeedForwardBias = true,
        },
        // GPT-NeoX-like: attention and MLP in parallel off two norms, half of each head rotated in half-split pairs, exact GELU, head bias.
        "neox-like" => s_layerNorm with
        {
            KvHeadCount = 2, Residual = ResidualKind.ParallelTwoNorms, RotaryDim = 2, RopeLayout = RopeLayout.NeoX, QkvBias = true, AttentionOutputBias = true,
            GatedFeedForward = false, Activation = ActivationKind.GeluErf, FeedForwardBias = true, TiedEmbeddings = false, HeadBias = true,
        },
        // Phi-2: one norm shared by the parallel branches, partial rotary in adjacent pairs, tanh GELU, head bias.
        "phi-like" => s_layerNorm with
        {
            Residual = ResidualKind.ParallelSharedNorm, RotaryDim = 2, QkvBias = true, AttentionOutputBias = true,
            GatedFeedForward = false, Activation = ActivationKind.GeluTanh, FeedForwardBias = true, TiedEmbeddings = false, HeadBias = true,
        },
        // OPT-like: learned positions read from row t + 2, LayerNorm without bias, ReLU MLP, no final norm.
        "opt-like" => s_llama with
        {
            Norm = NormKind.LayerNorm, Positions = PositionKind.Learned, PositionOffset = 2, GatedFeedForward = false,
            Activation = ActivationKind.Relu, FinalNorm = false,
        },
        // Heads wider than hidden/heads, squared-ReLU MLP without gate, RMSNorm.
        "wide-heads" => s_llama with { HeadDim = 6, GatedFeedForward = false, Activation = ActivationKind.SquaredRelu, TiedEmbeddings = false },
        _ => throw new ArgumentException(name),
    };

    /// <summary>
    /// Sets every parameter away from its initialisation (norm weights 1 ± 0.3, biases ± 0.3, the rest ± 0.6), so every
    /// nonlinearity works outside its linear regime; returns the values by name.
    /// </summary>
    public static Dictionary<string, double[]> Randomize<T>(TrainableDecoder<T> model, Random rng) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var values = new Dictionary<string, double[]>();
        foreach (Parameter<T> p in model.Parameters)
        {
            double scale = p.Kind is ParameterKind.Norm or ParameterKind.Bias ? 0.3 : 0.6;
            double[] v = ReferenceOps.Random(rng, p.Value.Length, scale);
            if (p.Kind == ParameterKind.Norm)
            {
                for (int i = 0; i < v.Length; i++)
                    v[i] += 1;
            }
            for (int i = 0; i < v.Length; i++)
                p.Value[i] = T.CreateChecked(v[i]);
            values[p.Name] = v;
        }
        return values;
    }

    /// <summary>Fixed tokens and next-token targets for <paramref name="batch"/> × <paramref name="seq"/>, one target ignored.</summary>
    public static (int[] Tokens, int[] Targets) Batch(int vocab, int batch, int seq)
    {
        var tokens = new int[batch * seq];
        var targets = new int[batch * seq];
        for (int i = 0; i < tokens.Length; i++)
        {
            tokens[i] = (i * 7 + 3) % vocab;
            targets[i] = (i * 5 + 1) % vocab;
        }
        targets[seq - 1] = TrainableDecoder<double>.IgnoreIndex;
        return (tokens, targets);
    }
}
