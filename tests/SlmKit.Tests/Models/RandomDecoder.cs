using System.Globalization;
using SlmKit.Formats;
using SlmKit.Models;
using SlmKit.Tensors;

namespace SlmKit.Tests.Models;

/// <summary>
/// What a family's checkpoints hold, written down here from llama.cpp's loader (src/models/*.cpp) and transformers'
/// modeling files — independently of the production family files, so a wrong choice there shows up as a failed
/// load in llama.cpp or a logit mismatch.
/// </summary>
public sealed record FamilyTraits
{
    public required string Family { get; init; }
    public required string Arch { get; init; }
    public bool Rms { get; init; } = true;
    public bool NormWeight { get; init; } = true;
    public bool NormBias { get; init; }
    public bool FusedQkv { get; init; }
    public bool QkvBias { get; init; }
    public bool OutputBias { get; init; }
    public bool Gated { get; init; } = true;
    public bool FusedGateUp { get; init; }
    public bool FfnBias { get; init; }
    public bool HeadBias { get; init; }
    public bool LearnedPositions { get; init; }
    public bool Rope { get; init; } = true;
    public bool EmbeddingNorm { get; init; }
    public bool PostNorms { get; init; }
    public bool SharedNorm { get; init; }

    /// <summary>llama.cpp's converter permutes q/k rows into adjacent rotary pairs (rope type NORM).</summary>
    public bool PermuteQk { get; init; }

    /// <summary>Hugging Face stores norm weight w where the GGUF stores 1 + w.</summary>
    public bool NormOffset { get; init; }
    public bool HfInterleavedQkv { get; init; }
    public bool HfTransposed { get; init; }

    /// <summary>llama.cpp's loader has no output.weight for this architecture.</summary>
    public bool AlwaysTied { get; init; }

    /// <summary>RMSNorm (weight only) of every query and key head, stored as attn_q_norm / attn_k_norm of head size.</summary>
    public bool QkNorm { get; init; }

    /// <summary>OLMo 2: q and k norms over the whole projection rather than per head.</summary>
    public bool QkNormAcrossHeads { get; init; }

    /// <summary>False for OLMo 2: no norm before either branch.</summary>
    public bool PreNorms { get; init; } = true;

    /// <summary>The GGUF holds ffn_gate and ffn_up; the Hugging Face checkpoint one matrix with the gate rows first.</summary>
    public bool HfFusedGateUp { get; init; }
}

/// <summary>The shape of a random test model of some family.</summary>
public sealed record RandomDecoderSpec(
    string Family, string Name, int Dim, int Layers, int Heads, int KvHeads, int HeadDim, int Ffn, int Vocab,
    bool Tied, GgmlType Type, int Seed)
{
    public int RotaryDim { get; init; }
    public float RopeTheta { get; init; } = 10000f;
    public int SlidingWindow { get; init; }
    public bool Parallel { get; init; } = true;
    public bool Biases { get; init; }
    public float ClipQkv { get; init; }
    public int Context { get; init; } = 512;

    /// <summary>Phi-3 long-rope: the original context length (0: no long-rope); Context is then max_position_embeddings.</summary>
    public int LongRopeOriginal { get; init; }

    /// <summary>
    /// Llama 3 rope scaling in the Hugging Face twin's config (factor 8, frequency factors 1 and 4) from this original
    /// length (0: none). Only the twin has it: the GGUF of such a model needs the rope_freqs table, which the converter writes.
    /// </summary>
    public int Llama3RopeOriginal { get; init; }

    /// <summary>Linear rope scaling by this factor (0: none); Gemma 3 applies it to its global layers only.</summary>
    public float LinearRopeFactor { get; init; }

    /// <summary>OpenELM: per-layer query heads, KV heads and MLP widths (null: Heads, KvHeads, Ffn in every layer).</summary>
    public int[]? LayerHeads { get; init; }
    public int[]? LayerKvHeads { get; init; }
    public int[]? LayerFfn { get; init; }

    public int Rotary => RotaryDim > 0 ? RotaryDim : HeadDim;

    public int HeadsOf(int layer) => LayerHeads?[layer] ?? Heads;
    public int KvHeadsOf(int layer) => LayerKvHeads?[layer] ?? KvHeads;
    public int FfnOf(int layer) => LayerFfn?[layer] ?? Ffn;

    public override string ToString() => Family + ":" + Name;
}

/// <summary>
/// Builds random-weight models of any family and writes them with SlmKit's writers: a GGUF with llama.cpp's tensor
/// names and metadata (and a synthetic SentencePiece vocabulary so llama.cpp loads it), and a Hugging Face twin
/// whose names, layouts and config.json are those transformers saves for that family.
/// </summary>
public sealed class RandomDecoder
{
    private sealed record Entry(string Role, int Layer, string Kind, long[] Dims, float[] Values);

    private readonly List<Entry> _entries = [];
    private readonly float[]? _shortFactors, _longFactors;

    public RandomDecoder(RandomDecoderSpec spec)
    {
        Spec = spec;
        Traits = TraitsOf(spec);
        var t = Traits;
        var random = new Random(spec.Seed);
        bool half = spec.Type == GgmlType.F16;
        int d = spec.Dim;

        float Round(double x) => half ? (float)(Half)x : (float)x;
        float[] Uniform(int count, double scale, double offset = 0)
        {
            var v = new float[count];
            // Drawn at storage precision so the GGUF (F32 vectors) and the HF twin (all in Spec.Type) hold the same
            // numbers; where HF stores w and GGUF 1 + w, w is the value rounded.
            for (int i = 0; i < count; i++)
            {
                double x = (random.NextDouble() * 2 - 1) * scale;
                v[i] = Traits.NormOffset ? (float)offset + Round(x) : Round(offset + x);
            }
            return v;
        }
        void Add(string role, int layer, string kind, long[] dims, float[] values) => _entries.Add(new(role, layer, kind, dims, values));
        void Linear(string role, int layer, int rows, int cols, bool bias)
        {
            Add(role, layer, "weight", [rows, cols], Uniform(rows * cols, 1.5 / Math.Sqrt(cols)));
            if (bias)
                Add(role, layer, "bias", [rows], Uniform(rows, 0.1));
        }
        void Norm(string role, int layer)
        {
            if (t.NormWeight)
                Add(role, layer, "weight", [d], Uniform(d, 0.2, 1.0));
            if (t.NormBias)
                Add(role, layer, "bias", [d], Uniform(d, 0.1));
        }

        Add("token_embd", -1, "weight", [spec.Vocab, d], Uniform(spec.Vocab * d, 1.0));
        if (t.LearnedPositions)
            Add("position_embd", -1, "weight", [spec.Context, d], Uniform(spec.Context * d, 0.5));
        if (t.EmbeddingNorm)
            Norm("token_embd_norm", -1);
        bool qkvBias = t.QkvBias || spec.Biases, outBias = t.OutputBias || (spec.Biases && t.Family == "nemotron");
        for (int l = 0; l < spec.Layers; l++)
        {
            int q = spec.HeadsOf(l) * spec.HeadDim, kv = spec.KvHeadsOf(l) * spec.HeadDim, f = spec.FfnOf(l);
            if (t.PreNorms)
                Norm("attn_norm", l);
            if (t.FusedQkv)
                Linear("attn_qkv", l, q + 2 * kv, d, qkvBias);
            else
            {
                Linear("attn_q", l, q, d, qkvBias);
                Linear("attn_k", l, kv, d, qkvBias);
                Linear("attn_v", l, kv, d, qkvBias);
            }
            if (t.QkNorm)
            {
                int qn = t.QkNormAcrossHeads ? q : spec.HeadDim, kn = t.QkNormAcrossHeads ? kv : spec.HeadDim;
                Add("attn_q_norm", l, "weight", [qn], Uniform(qn, 0.2, 1.0));
                Add("attn_k_norm", l, "weight", [kn], Uniform(kn, 0.2, 1.0));
            }
            Linear("attn_output", l, d, q, outBias);
            if (t.PostNorms)
                Norm("post_attention_norm", l);
            if (t.PreNorms && !(t.SharedNorm || (t.Family == "stablelm" && spec.Parallel)))
                Norm("ffn_norm", l);
            if (t.Gated && !t.FusedGateUp)
                Linear("ffn_gate", l, f, d, t.FfnBias);
            Linear("ffn_up", l, t.FusedGateUp ? 2 * f : f, d, t.FfnBias);
            Linear("ffn_down", l, d, f, t.FfnBias);
            if (t.PostNorms)
                Norm("post_ffw_norm", l);
        }
        Norm("output_norm", -1);
        if (!spec.Tied)
            Linear("output", -1, spec.Vocab, d, t.HeadBias);
        if (spec.LongRopeOriginal > 0)
        {
            // Drawn from their own generator so the weights are those of the same spec without long-rope.
            var factors = new Random(spec.Seed + 1);
            _shortFactors = [.. Enumerable.Range(0, spec.Rotary / 2).Select(_ => (float)(1 + 0.5 * factors.NextDouble()))];
            _longFactors = [.. Enumerable.Range(0, spec.Rotary / 2).Select(i => (float)(1 + i * 0.75 + 2 * factors.NextDouble()))];
        }
    }

    /// <summary>convert_hf_to_gguf's Phi-3 rope.scaling.attn_factor: √(1 + ln s / ln original), s = max / original positions.</summary>
    private static double LongRopeAttentionFactor(RandomDecoderSpec s)
    {
        double scale = (double)s.Context / s.LongRopeOriginal;
        return scale > 1 ? Math.Sqrt(1 + Math.Log(scale) / Math.Log(s.LongRopeOriginal)) : 1;
    }

    public RandomDecoderSpec Spec { get; }

    public FamilyTraits Traits { get; }

    public static FamilyTraits TraitsOf(RandomDecoderSpec spec) => spec.Family switch
    {
        "llama" => new() { Family = "llama", Arch = "llama", PermuteQk = true },
        "smollm3" => new() { Family = "smollm3", Arch = "smollm3", PermuteQk = true },
        "qwen2" => new() { Family = "qwen2", Arch = "qwen2", QkvBias = true },
        "qwen3" => new() { Family = "qwen3", Arch = "qwen3", QkNorm = true },
        "qwen" => new() { Family = "qwen", Arch = "qwen", FusedQkv = true, QkvBias = true },
        "gemma" => new() { Family = "gemma", Arch = "gemma", NormOffset = true, AlwaysTied = true },
        "gemma2" => new() { Family = "gemma2", Arch = "gemma2", NormOffset = true, AlwaysTied = true, PostNorms = true },
        "gemma3" => new() { Family = "gemma3", Arch = "gemma3", NormOffset = true, AlwaysTied = true, PostNorms = true, QkNorm = true },
        "phi2" => new()
        {
            Family = "phi2", Arch = "phi2", Rms = false, NormBias = true, QkvBias = true, OutputBias = true, Gated = false,
            FfnBias = true, HeadBias = true, SharedNorm = true,
        },
        "phi3" => new() { Family = "phi3", Arch = "phi3", FusedQkv = true, FusedGateUp = true },
        "stablelm" => new() { Family = "stablelm", Arch = "stablelm", Rms = false, NormBias = true },
        "gptneox" => new()
        {
            Family = "gptneox", Arch = "gptneox", Rms = false, NormBias = true, FusedQkv = true, QkvBias = true, OutputBias = true,
            Gated = false, FfnBias = true, HfInterleavedQkv = true,
        },
        "gpt2" => new()
        {
            Family = "gpt2", Arch = "gpt2", Rms = false, NormBias = true, FusedQkv = true, QkvBias = true, OutputBias = true,
            Gated = false, FfnBias = true, LearnedPositions = true, Rope = false, HfTransposed = true,
        },
        "olmo" => new() { Family = "olmo", Arch = "olmo", Rms = false, NormWeight = false, PermuteQk = true },
        "olmo2" => new() { Family = "olmo2", Arch = "olmo2", PostNorms = true, QkNorm = true, QkNormAcrossHeads = true, PreNorms = false },
        "minicpm" => new() { Family = "minicpm", Arch = "minicpm", PermuteQk = true },
        "nemotron" => new() { Family = "nemotron", Arch = "nemotron", Rms = false, NormBias = true, Gated = false, NormOffset = true },
        "openelm" => new() { Family = "openelm", Arch = "openelm", FusedQkv = true, AlwaysTied = true, QkNorm = true, HfFusedGateUp = true },
        "bloom" => new()
        {
            Family = "bloom", Arch = "bloom", Rms = false, NormBias = true, FusedQkv = true, QkvBias = true, OutputBias = true,
            Gated = false, FfnBias = true, Rope = false, EmbeddingNorm = true, HfInterleavedQkv = true,
        },
        _ => throw new ArgumentException(spec.Family),
    };

    /// <summary>OpenELM's modeling file uses RMSNorm's default ε of 1e-6 (its config has no field for it).</summary>
    private static float Epsilon(FamilyTraits t) => t.Family == "openelm" ? 1e-6f : 1e-5f;

    private static string Ggufname(Entry e) => (e.Layer < 0 ? e.Role : $"blk.{e.Layer}.{e.Role}") + "." + e.Kind;

    /// <summary>Writes the model as GGUF (matrices in Spec.Type, vectors in F32 as llama.cpp's converter does).</summary>
    public string WriteGguf(string path)
    {
        var s = Spec;
        var t = Traits;
        string a = t.Arch;
        var writer = new GgufWriter();
        writer.Set("general.architecture", a);
        writer.Set("general.name", "slmkit-random-" + s.Name);
        writer.Set($"{a}.context_length", (uint)s.Context);
        writer.Set($"{a}.embedding_length", (uint)s.Dim);
        writer.Set($"{a}.block_count", (uint)s.Layers);
        // llama.cpp's qwen states the width of both MLP halves together (transformers' intermediate_size).
        writer.Set($"{a}.feed_forward_length", (uint)(t.Family == "qwen" ? 2 * s.Ffn : s.Ffn));
        writer.Set($"{a}.attention.head_count", (uint)s.Heads);
        writer.Set($"{a}.attention.head_count_kv", (uint)s.KvHeads);
        if (s.HeadDim != s.Dim / s.Heads)
        {
            writer.Set($"{a}.attention.key_length", (uint)s.HeadDim);
            writer.Set($"{a}.attention.value_length", (uint)s.HeadDim);
        }
        if (t.Rope)
        {
            writer.Set($"{a}.rope.dimension_count", (uint)s.Rotary);
            writer.Set($"{a}.rope.freq_base", s.RopeTheta);
        }
        writer.Set(t.Rms ? $"{a}.attention.layer_norm_rms_epsilon" : $"{a}.attention.layer_norm_epsilon", Epsilon(t));
        switch (t.Family)
        {
            case "gemma2":
                writer.Set($"{a}.attn_logit_softcapping", 50f);
                writer.Set($"{a}.final_logit_softcapping", 30f);
                writer.Set($"{a}.attention.sliding_window", (uint)s.SlidingWindow);
                break;
            case "gemma3":
                writer.Set($"{a}.attention.sliding_window", (uint)s.SlidingWindow);
                if (s.LinearRopeFactor > 0)
                {
                    writer.Set($"{a}.rope.scaling.type", "linear");
                    writer.Set($"{a}.rope.scaling.factor", s.LinearRopeFactor);
                }
                break;
            case "gptneox":
                writer.Set($"{a}.use_parallel_residual", s.Parallel);
                break;
            case "minicpm":
                writer.Set($"{a}.embedding_scale", 12f);
                writer.Set($"{a}.residual_scale", (float)(1.4 / Math.Sqrt(s.Layers)));
                writer.Set($"{a}.logit_scale", s.Dim / 32f);
                break;
            case "openelm":
                // convert_hf_to_gguf's OpenELMModel: per-layer arrays (int32) for the head counts and MLP widths.
                int[] PerLayer(Func<int, int> of) => [.. Enumerable.Range(0, s.Layers).Select(of)];
                writer.Set($"{a}.feed_forward_length", PerLayer(s.FfnOf));
                writer.Set($"{a}.attention.head_count", PerLayer(s.HeadsOf));
                writer.Set($"{a}.attention.head_count_kv", PerLayer(s.KvHeadsOf));
                writer.Set($"{a}.attention.key_length", (uint)s.HeadDim);
                writer.Set($"{a}.attention.value_length", (uint)s.HeadDim);
                break;
            case "phi3" when s.LongRopeOriginal > 0:
                // Phi3MiniModel: the original length, the attention factor, and the factors as F32 tensors (long, then short).
                writer.Set($"{a}.rope.scaling.original_context_length", (uint)s.LongRopeOriginal);
                writer.Set($"{a}.rope.scaling.attn_factor", (float)LongRopeAttentionFactor(s));
                writer.AddTensor("rope_factors_long.weight", [_longFactors!.Length], _longFactors, GgmlType.F32);
                writer.AddTensor("rope_factors_short.weight", [_shortFactors!.Length], _shortFactors, GgmlType.F32);
                break;
            case "olmo" when s.ClipQkv > 0:
                writer.Set($"{a}.attention.clamp_kqv", s.ClipQkv);
                break;
        }
        writer.Set("general.file_type", s.Type == GgmlType.F16 ? 1u : 0u);
        RandomLlama.SetSyntheticTokenizer(writer, s.Vocab);
        foreach (var e in _entries)
        {
            float[] values = e.Values;
            if (t.PermuteQk && e.Kind == "weight" && e.Role is "attn_q" or "attn_k")
                values = ToAdjacentPairs(values, e.Role == "attn_q" ? s.Heads : s.KvHeads, s.HeadDim, s.Rotary, s.Dim);
            writer.AddTensor(Ggufname(e), e.Dims, values, e.Dims.Length == 1 ? GgmlType.F32 : s.Type);
        }
        writer.Write(path);
        return path;
    }

    /// <summary>
    /// Writes the same weights as a Hugging Face folder, undoing each llama.cpp conversion step. With
    /// <paramref name="tokenizerFolder"/>, its tokenizer.json and tokenizer_config.json are copied in (what <c>slm convert</c>
    /// needs; llama.cpp loads the result only when that vocabulary has Spec.Vocab tokens).
    /// </summary>
    public string WriteHuggingFace(string folder, string? tokenizerFolder = null)
    {
        var s = Spec;
        var t = Traits;
        Directory.CreateDirectory(folder);
        var family = ModelFamily.All.Single(f => f.Name == t.Family);
        var layout = family.HuggingFaceLayout(new NoTensors());
        var entries = new List<SafeTensorEntry>();
        foreach (var e in _entries)
        {
            float[] data = e.Values;
            long[] dims = e.Dims;
            if (t.HfFusedGateUp && e.Role == "ffn_gate")
                continue;
            if (t.HfFusedGateUp && e.Role == "ffn_up")
            {
                var gate = _entries.Single(g => g.Role == "ffn_gate" && g.Layer == e.Layer && g.Kind == e.Kind);
                data = [.. gate.Values, .. e.Values];
                dims = [gate.Dims[0] + dims[0], .. dims[1..]];
            }
            bool norm = e.Role.EndsWith("norm", StringComparison.Ordinal);
            if (norm && e.Kind == "weight" && t.NormOffset)
                data = Array.ConvertAll(data, v => v - 1f);
            if (t.HfInterleavedQkv && e.Role == "attn_qkv")
                data = ToPerHeadInterleaved(data, s.Heads, s.HeadDim, e.Kind == "weight" ? s.Dim : 1);
            if (t.HfTransposed && e.Kind == "weight" && dims.Length == 2 && e.Layer >= 0)
            {
                data = Transpose(data, (int)dims[0], (int)dims[1]);
                dims = [dims[1], dims[0]];
            }
            string name = layout.Stem(e.Role, e.Layer) + "." + e.Kind;
            entries.Add(new SafeTensorEntry(name, s.Type, dims, RandomLlama.StoredBytes(data, s.Type)));
        }
        SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), entries);
        File.WriteAllText(Path.Combine(folder, "config.json"), HuggingFaceConfigJson());
        if (tokenizerFolder is not null)
        {
            foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json" })
                File.Copy(Path.Combine(tokenizerFolder, file), Path.Combine(folder, file));
        }
        return folder;
    }

    private string HuggingFaceConfigJson()
    {
        var s = Spec;
        string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        string B(bool v) => v ? "true" : "false";
        string dtype = s.Type == GgmlType.F16 ? "float16" : "float32";
        double partial = (double)s.Rotary / s.HeadDim;
        string llamaLike = $"""
          "hidden_size": {s.Dim}, "intermediate_size": {s.Ffn}, "num_hidden_layers": {s.Layers},
          "num_attention_heads": {s.Heads}, "num_key_value_heads": {s.KvHeads}, "vocab_size": {s.Vocab},
          "max_position_embeddings": {s.Context}, "rope_theta": {F(s.RopeTheta)}, "tie_word_embeddings": {B(s.Tied)},
          "torch_dtype": "{dtype}", "bos_token_id": 1, "eos_token_id": 2
        """;
        return Traits.Family switch
        {
            "llama" => $$"""{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "head_dim": {{s.HeadDim}}, "rms_norm_eps": 1e-05, "hidden_act": "silu", "rope_scaling": {{Llama3RopeScaling()}}, {{llamaLike}} }""",
            "qwen2" => $$"""{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "rms_norm_eps": 1e-05, "hidden_act": "silu", "use_sliding_window": false, "sliding_window": 32768, "max_window_layers": 21, {{llamaLike}} }""",
            "smollm3" => $$"""{"architectures": ["SmolLM3ForCausalLM"], "model_type": "smollm3", "rms_norm_eps": 1e-05, "hidden_act": "silu", "attention_bias": false, "mlp_bias": false, "use_sliding_window": false, "no_rope_layer_interval": 4, "no_rope_layers": [{{string.Join(", ", Enumerable.Range(0, s.Layers).Select(l => (l + 1) % 4 == 0 ? 0 : 1))}}], {{llamaLike}} }""",
            "qwen3" => $$"""{"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "head_dim": {{s.HeadDim}}, "rms_norm_eps": 1e-05, "hidden_act": "silu", "attention_bias": {{B(s.Biases)}}, "use_sliding_window": false, "sliding_window": null, "max_window_layers": 28, {{llamaLike}} }""",
            "qwen" => $$"""{"architectures": ["QWenLMHeadModel"], "model_type": "qwen", "hidden_size": {{s.Dim}}, "intermediate_size": {{2 * s.Ffn}}, "num_hidden_layers": {{s.Layers}}, "num_attention_heads": {{s.Heads}}, "kv_channels": {{s.HeadDim}}, "vocab_size": {{s.Vocab}}, "seq_length": {{s.Context}}, "max_position_embeddings": {{s.Context}}, "layer_norm_epsilon": 1e-05, "rotary_emb_base": {{F(s.RopeTheta)}}, "rotary_pct": 1.0, "no_bias": true, "tie_word_embeddings": {{B(s.Tied)}}, "torch_dtype": "{{dtype}}" }""",
            "gemma" => $$"""{"architectures": ["GemmaForCausalLM"], "model_type": "gemma", "head_dim": {{s.HeadDim}}, "rms_norm_eps": 1e-05, "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", {{llamaLike}} }""",
            "gemma2" => $$"""{"architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "head_dim": {{s.HeadDim}}, "rms_norm_eps": 1e-05, "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": {{s.HeadDim}}, "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0, "sliding_window": {{s.SlidingWindow}}, "cache_implementation": "hybrid", {{llamaLike}} }""",
            "gemma3" => $$"""{"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "head_dim": {{s.HeadDim}}, "rms_norm_eps": 1e-05, "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": {{s.HeadDim}}, "sliding_window": {{s.SlidingWindow}}, "sliding_window_pattern": 6, "layer_types": [{{string.Join(", ", Enumerable.Range(0, s.Layers).Select(l => (l + 1) % 6 == 0 ? "\"full_attention\"" : "\"sliding_attention\""))}}], "rope_local_base_freq": 10000.0, "rope_scaling": {{(s.LinearRopeFactor > 0 ? $$"""{"rope_type": "linear", "factor": {{F(s.LinearRopeFactor)}}}""" : "null")}}, "attn_logit_softcapping": null, "final_logit_softcapping": null, {{llamaLike}} }""",
            "phi2" => $$"""{"architectures": ["PhiForCausalLM"], "model_type": "phi", "layer_norm_eps": 1e-05, "hidden_act": "gelu_new", "partial_rotary_factor": {{F(partial)}}, "qk_layernorm": false, {{llamaLike}} }""",
            "phi3" => $$"""{"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "rms_norm_eps": 1e-05, "hidden_act": "silu", "sliding_window": {{s.Context - 1}}, "rope_scaling": {{Phi3RopeScaling()}}, "original_max_position_embeddings": {{(s.LongRopeOriginal > 0 ? s.LongRopeOriginal : s.Context)}}, {{llamaLike}} }""",
            "stablelm" => $$"""{"architectures": ["StableLmForCausalLM"], "model_type": "stablelm", "layer_norm_eps": 1e-05, "hidden_act": "silu", "partial_rotary_factor": {{F(partial)}}, "use_qkv_bias": {{B(s.Biases)}}, "use_parallel_residual": {{B(s.Parallel)}}, "qk_layernorm": false, {{llamaLike}} }""",
            "gptneox" => $$"""{"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "layer_norm_eps": 1e-05, "hidden_act": "gelu_new", "rotary_pct": {{F(partial)}}, "rotary_emb_base": {{F(s.RopeTheta)}}, "use_parallel_residual": {{B(s.Parallel)}}, "attention_bias": true, {{llamaLike}} }""",
            "gpt2" => $$"""{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": {{s.Dim}}, "n_layer": {{s.Layers}}, "n_head": {{s.Heads}}, "n_inner": {{s.Ffn}}, "n_positions": {{s.Context}}, "n_ctx": {{s.Context}}, "vocab_size": {{s.Vocab}}, "layer_norm_epsilon": 1e-05, "activation_function": "gelu_new", "torch_dtype": "{{dtype}}" }""",
            "olmo2" => $$"""{"architectures": ["Olmo2ForCausalLM"], "model_type": "olmo2", "rms_norm_eps": 1e-05, "hidden_act": "silu", "attention_bias": false, {{llamaLike}} }""",
            "olmo" => $$"""{"architectures": ["OlmoForCausalLM"], "model_type": "olmo", "hidden_act": "silu", "clip_qkv": {{(s.ClipQkv > 0 ? F(s.ClipQkv) : "null")}}, {{llamaLike}} }""",
            "minicpm" => $$"""{"architectures": ["MiniCPMForCausalLM"], "model_type": "minicpm", "rms_norm_eps": 1e-05, "hidden_act": "silu", "scale_emb": 12, "dim_model_base": 32, "scale_depth": 1.4, {{llamaLike}} }""",
            "nemotron" => $$"""{"architectures": ["NemotronForCausalLM"], "model_type": "nemotron", "head_dim": {{s.HeadDim}}, "norm_eps": 1e-05, "hidden_act": "relu2", "partial_rotary_factor": {{F(partial)}}, "attention_bias": {{B(s.Biases)}}, "mlp_bias": false, {{llamaLike}} }""",
            "openelm" => OpenElmConfigJson(dtype),
            "bloom" => $$"""{"architectures": ["BloomForCausalLM"], "model_type": "bloom", "hidden_size": {{s.Dim}}, "n_layer": {{s.Layers}}, "n_head": {{s.Heads}}, "vocab_size": {{s.Vocab}}, "layer_norm_epsilon": 1e-05, "apply_residual_connection_post_layernorm": false, "torch_dtype": "{{dtype}}" }""",
            _ => throw new InvalidOperationException(Traits.Family),
        };
    }

    /// <summary>Llama 3.2's rope_scaling block with Spec.Llama3RopeOriginal as its original length, or null.</summary>
    private string Llama3RopeScaling() => Spec.Llama3RopeOriginal > 0
        ? $$"""{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": {{Spec.Llama3RopeOriginal}}}"""
        : "null";

    /// <summary>Phi-3's rope_scaling: null, or the longrope block of Phi-3-mini-128k (the attention factor left to transformers).</summary>
    private string Phi3RopeScaling()
    {
        if (_shortFactors is null)
            return "null";
        string List(float[] values) => "[" + string.Join(", ", values.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "]";
        return $$"""{"type": "longrope", "short_factor": {{List(_shortFactors)}}, "long_factor": {{List(_longFactors!)}}}""";
    }

    /// <summary>
    /// apple/OpenELM's config.json fields. transformers recomputes the head counts from qkv_multipliers and num_gqa_groups
    /// (and the widths from ffn_multipliers, ffn_dim_divisor), so the spec's per-layer numbers must be what those give.
    /// </summary>
    private string OpenElmConfigJson(string dtype)
    {
        var s = Spec;
        string List<T>(IEnumerable<T> values) => "[" + string.Join(", ", values.Select(v => string.Format(CultureInfo.InvariantCulture, "{0}", v))) + "]";
        var layers = Enumerable.Range(0, s.Layers).ToArray();
        int groups = s.HeadsOf(0) / s.KvHeadsOf(0);
        double[] ffnMultipliers = [.. layers.Select(l => (double)s.FfnOf(l) / s.Dim)];
        double[] qkvMultipliers = [(double)s.HeadsOf(0) * s.HeadDim / s.Dim, (double)s.HeadsOf(s.Layers - 1) * s.HeadDim / s.Dim];
        return $$"""
        {"architectures": ["OpenELMForCausalLM"], "model_type": "openelm", "activation_fn_name": "swish", "bos_token_id": 1,
         "eos_token_id": 2, "ffn_dim_divisor": 16, "ffn_multipliers": {{List(ffnMultipliers)}}, "ffn_with_glu": true,
         "head_dim": {{s.HeadDim}}, "initializer_range": 0.02, "max_context_length": {{s.Context}}, "model_dim": {{s.Dim}},
         "normalization_layer_name": "rms_norm", "normalize_qk_projections": true, "num_gqa_groups": {{groups}},
         "num_kv_heads": {{List(layers.Select(s.KvHeadsOf))}}, "num_query_heads": {{List(layers.Select(s.HeadsOf))}},
         "num_transformer_layers": {{s.Layers}}, "qkv_multipliers": {{List(qkvMultipliers)}}, "rope_freq_constant": {{s.RopeTheta.ToString("R", CultureInfo.InvariantCulture)}},
         "rope_max_length": {{2 * s.Context}}, "share_input_output_layers": {{(s.Tied ? "true" : "false")}}, "torch_dtype": "{{dtype}}",
         "transformers_version": "4.39.3", "use_cache": true, "vocab_size": {{s.Vocab}}}
        """;
    }

    /// <summary>convert_hf_to_gguf's q/k permute (rotate-half order → adjacent pairs) for the first <paramref name="rotary"/> dims of each head.</summary>
    private static float[] ToAdjacentPairs(float[] hf, int heads, int headDim, int rotary, int cols)
    {
        var gguf = (float[])hf.Clone();
        int half = rotary / 2;
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < half; i++)
            {
                for (int j = 0; j < 2; j++)
                    Array.Copy(hf, (long)(h * headDim + j * half + i) * cols, gguf, (long)(h * headDim + 2 * i + j) * cols, cols);
            }
        }
        return gguf;
    }

    /// <summary>q; k; v rows → head by head [q_h; k_h; v_h] (the GPT-NeoX/BLOOM checkpoint order).</summary>
    private static float[] ToPerHeadInterleaved(float[] concatenated, int heads, int headDim, int cols)
    {
        var result = new float[concatenated.Length];
        int d = heads * headDim;
        for (int h = 0; h < heads; h++)
        {
            for (int part = 0; part < 3; part++)
                Array.Copy(concatenated, (long)(part * d + h * headDim) * cols, result, (long)((3 * h + part) * headDim) * cols, (long)headDim * cols);
        }
        return result;
    }

    private static float[] Transpose(float[] m, int rows, int cols)
    {
        var t = new float[m.Length];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
                t[(long)c * rows + r] = m[(long)r * cols + c];
        }
        return t;
    }

    private sealed class NoTensors : IWeightSource
    {
        public string SourcePath => "(none)";
        public IReadOnlyList<string> TensorNames => [];
        public WeightTensor? Find(string name) => null;
        public void Dispose()
        {
        }
    }
}
