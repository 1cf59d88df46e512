using System.Text.RegularExpressions;
using SlmKit.Formats;
using SlmKit.Tokenizers;

namespace SlmKit.Models;

public sealed partial class HuggingFaceGgufSource
{
    /// <summary>
    /// A Mamba or T5 folder, which are not decoder families: their llama.cpp keys and tensor names as
    /// convert_hf_to_gguf writes them (MambaModel: A as −exp(A_log), the convolution squeezed to [inner, width], the
    /// small SSM tensors in F32; T5Model: enc.*/dec.* names, the first layers' relative attention biases, the decoder
    /// start token).
    /// </summary>
    private static HuggingFaceGgufSource OpenOwnArchitecture(string folder, HuggingFaceConfig hf)
    {
        string architecture = hf.ModelType!;
        var writer = new GgufWriter();
        writer.Set("general.architecture", architecture);
        writer.Set("general.name", Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar)));
        var widen = new HashSet<string>(StringComparer.Ordinal);
        var negativeExponential = new HashSet<string>(StringComparer.Ordinal);
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        Func<string, string?> rename;
        string[] skipped;
        if (architecture == "mamba")
        {
            var c = MambaConfig.FromHuggingFace(hf);
            c.Validate(hf.SourcePath);
            string a = architecture;
            writer.Set($"{a}.context_length", 1u << 20);
            writer.Set($"{a}.embedding_length", (uint)c.HiddenSize);
            writer.Set($"{a}.feed_forward_length", 0u);
            writer.Set($"{a}.attention.head_count", 0u);
            writer.Set($"{a}.block_count", (uint)c.LayerCount);
            writer.Set($"{a}.ssm.conv_kernel", (uint)c.ConvKernel);
            writer.Set($"{a}.ssm.inner_size", (uint)c.InnerSize);
            writer.Set($"{a}.ssm.state_size", (uint)c.StateSize);
            writer.Set($"{a}.ssm.time_step_rank", (uint)c.TimeStepRank);
            writer.Set($"{a}.attention.layer_norm_rms_epsilon", c.NormEpsilon);
            rename = MambaName;
            skipped = [];
            for (int l = 0; l < c.LayerCount; l++)
            {
                foreach (string role in (ReadOnlySpan<string>)["ssm_conv1d.weight", "ssm_x.weight", "ssm_dt.weight", "ssm_a", "ssm_d"])
                    widen.Add($"blk.{l}.{role}");
                negativeExponential.Add($"blk.{l}.ssm_a");
                shapes[$"blk.{l}.ssm_conv1d.weight"] = [c.InnerSize, c.ConvKernel];
            }
        }
        else
        {
            var c = T5Config.FromHuggingFace(hf);
            c.Validate(hf.SourcePath);
            if (c.GatedFeedForward ? c.Activation != Kernels.ActivationKind.GeluTanh : c.Activation != Kernels.ActivationKind.Relu)
                throw new ModelFileException(hf.SourcePath, $"llama.cpp's t5 applies {(c.GatedFeedForward ? "the tanh GELU in a gated" : "ReLU in a plain")} feed-forward, this config {c.Activation}; it would not compute the same model");
            if (c.RelativeMaxDistance != 128)
                throw new ModelFileException(hf.SourcePath, $"relative_attention_max_distance is {c.RelativeMaxDistance}, but llama.cpp's t5 fixes 128");
            string a = architecture;
            writer.Set($"{a}.context_length", (uint)c.ContextLength);
            writer.Set($"{a}.embedding_length", (uint)c.HiddenSize);
            writer.Set($"{a}.feed_forward_length", (uint)c.FeedForwardSize);
            writer.Set($"{a}.block_count", (uint)c.EncoderLayers);
            writer.Set($"{a}.decoder_block_count", (uint)c.DecoderLayers);
            writer.Set($"{a}.attention.head_count", (uint)c.HeadCount);
            writer.Set($"{a}.attention.key_length", (uint)c.HeadDim);
            writer.Set($"{a}.attention.value_length", (uint)c.HeadDim);
            writer.Set($"{a}.attention.layer_norm_epsilon", c.NormEpsilon);
            writer.Set($"{a}.attention.relative_buckets_count", (uint)c.RelativeBuckets);
            writer.Set($"{a}.attention.layer_norm_rms_epsilon", c.NormEpsilon);
            writer.Set($"{a}.decoder_start_token_id", (uint)c.DecoderStartToken);
            rename = T5Name;
            // transformers saves the shared embedding again under each stack's name.
            skipped = ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"];
            foreach (string stack in (ReadOnlySpan<string>)["enc", "dec"])
                widen.Add($"{stack}.blk.0.attn_rel_b.weight");
        }
        Tokenizer.FromHuggingFace(folder).WriteGgufMetadata(writer);

        var weights = SafeTensorsModel.Open(folder);
        try
        {
            var (names, huggingFaceNames) = MapTensors(folder, weights, architecture, rename, skipped.Contains);
            return new HuggingFaceGgufSource(folder, weights, [.. writer.Metadata], [.. names], huggingFaceNames, config: null, permuteQueryKey: false,
                TensorLayout.Gguf, [], widen, negativeExponential, shapes);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>llama.cpp's name of a transformers Mamba tensor (state-spaces/mamba-*-hf), or null.</summary>
    private static string? MambaName(string name)
    {
        string bare = name.StartsWith("backbone.", StringComparison.Ordinal) ? name["backbone.".Length..] : name;
        switch (bare)
        {
            case "embeddings.weight": return "token_embd.weight";
            case "norm_f.weight": return "output_norm.weight";
            case "lm_head.weight": return "output.weight";
        }
        var m = Regex.Match(bare, @"^layers\.(\d+)\.(.+)$", RegexOptions.CultureInvariant);
        if (!m.Success)
            return null;
        string role = m.Groups[2].Value switch
        {
            "norm.weight" => "attn_norm.weight",
            "mixer.in_proj.weight" => "ssm_in.weight",
            "mixer.conv1d.weight" => "ssm_conv1d.weight",
            "mixer.conv1d.bias" => "ssm_conv1d.bias",
            "mixer.x_proj.weight" => "ssm_x.weight",
            "mixer.dt_proj.weight" => "ssm_dt.weight",
            "mixer.dt_proj.bias" => "ssm_dt.bias",
            "mixer.A_log" => "ssm_a",
            "mixer.D" => "ssm_d",
            "mixer.out_proj.weight" => "ssm_out.weight",
            _ => "",
        };
        return role.Length == 0 ? null : $"blk.{m.Groups[1].Value}.{role}";
    }

    /// <summary>llama.cpp's name of a transformers T5 tensor (t5-*, flan-t5-*), or null.</summary>
    private static string? T5Name(string name)
    {
        switch (name)
        {
            case "shared.weight": return "token_embd.weight";
            case "lm_head.weight": return "output.weight";
            case "encoder.final_layer_norm.weight": return "enc.output_norm.weight";
            case "decoder.final_layer_norm.weight": return "dec.output_norm.weight";
        }
        var m = Regex.Match(name, @"^(encoder|decoder)\.block\.(\d+)\.layer\.(\d)\.(.+)$", RegexOptions.CultureInvariant);
        if (!m.Success)
            return null;
        bool decoder = m.Groups[1].Value == "decoder";
        string stack = decoder ? "dec" : "enc", sub = m.Groups[3].Value, rest = m.Groups[4].Value;
        int ffn = decoder ? 2 : 1;
        string? role = (sub, rest) switch
        {
            ("0", "layer_norm.weight") => "attn_norm",
            ("0", "SelfAttention.q.weight") => "attn_q",
            ("0", "SelfAttention.k.weight") => "attn_k",
            ("0", "SelfAttention.v.weight") => "attn_v",
            ("0", "SelfAttention.o.weight") => "attn_o",
            ("0", "SelfAttention.relative_attention_bias.weight") => "attn_rel_b",
            ("1", "layer_norm.weight") when decoder => "cross_attn_norm",
            ("1", "EncDecAttention.q.weight") when decoder => "cross_attn_q",
            ("1", "EncDecAttention.k.weight") when decoder => "cross_attn_k",
            ("1", "EncDecAttention.v.weight") when decoder => "cross_attn_v",
            ("1", "EncDecAttention.o.weight") when decoder => "cross_attn_o",
            _ when sub == ffn.ToString(System.Globalization.CultureInfo.InvariantCulture) => rest switch
            {
                "layer_norm.weight" => "ffn_norm",
                "DenseReluDense.wi.weight" or "DenseReluDense.wi_1.weight" => "ffn_up",
                "DenseReluDense.wi_0.weight" => "ffn_gate",
                "DenseReluDense.wo.weight" => "ffn_down",
                _ => null,
            },
            _ => null,
        };
        return role is null ? null : $"{stack}.blk.{m.Groups[2].Value}.{role}.weight";
    }
}
