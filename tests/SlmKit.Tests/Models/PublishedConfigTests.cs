using SlmKit.Cli;
using SlmKit.Formats;
using SlmKit.Kernels;
using SlmKit.Models;

namespace SlmKit.Tests.Models;

/// <summary>
/// The config.json files of published checkpoints (field names, values and omissions as on the Hugging Face Hub) load
/// into configs whose parameter count matches the published count, computed without any weights.
/// </summary>
public sealed class PublishedConfigTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-configs-").FullName;

    /// <summary>(checkpoint, family, published parameter count, config.json).</summary>
    public static TheoryData<string, string, long, string> Published => new()
    {
        {
            "Qwen/Qwen2.5-0.5B", "qwen2", 494_032_768, """
            {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151643,
             "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864,
             "max_position_embeddings": 32768, "max_window_layers": 24, "model_type": "qwen2", "num_attention_heads": 14,
             "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
             "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.40.1",
             "use_cache": true, "use_mrope": false, "use_sliding_window": false, "vocab_size": 151936}
            """
        },
        {
            "google/gemma-2-2b", "gemma2", 2_614_341_888, """
            {"architectures": ["Gemma2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "attn_logit_softcapping": 50.0,
             "bos_token_id": 2, "cache_implementation": "hybrid", "eos_token_id": 1, "final_logit_softcapping": 30.0, "head_dim": 256,
             "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304, "initializer_range": 0.02,
             "intermediate_size": 9216, "max_position_embeddings": 8192, "model_type": "gemma2", "num_attention_heads": 8,
             "num_hidden_layers": 26, "num_key_value_heads": 4, "pad_token_id": 0, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06,
             "rope_theta": 10000.0, "sliding_window": 4096, "torch_dtype": "float32", "transformers_version": "4.42.4", "use_cache": true,
             "vocab_size": 256000}
            """
        },
        {
            "microsoft/phi-2", "phi2", 2_779_683_840, """
            {"architectures": ["PhiForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 50256, "embd_pdrop": 0.0, "eos_token_id": 50256,
             "hidden_act": "gelu_new", "hidden_size": 2560, "initializer_range": 0.02, "intermediate_size": 10240, "layer_norm_eps": 1e-05,
             "max_position_embeddings": 2048, "model_type": "phi", "num_attention_heads": 32, "num_hidden_layers": 32,
             "num_key_value_heads": 32, "partial_rotary_factor": 0.4, "qk_layernorm": false, "resid_pdrop": 0.1, "rope_scaling": null,
             "rope_theta": 10000.0, "tie_word_embeddings": false, "torch_dtype": "float16", "transformers_version": "4.37.0",
             "use_cache": true, "vocab_size": 51200}
            """
        },
        {
            "microsoft/Phi-3-mini-4k-instruct", "phi3", 3_821_079_552, """
            {"_name_or_path": "Phi-3-mini-4k-instruct", "architectures": ["Phi3ForCausalLM"], "attention_dropout": 0.0,
             "auto_map": {"AutoConfig": "configuration_phi3.Phi3Config", "AutoModelForCausalLM": "modeling_phi3.Phi3ForCausalLM"},
             "bos_token_id": 1, "embd_pdrop": 0.0, "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072,
             "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 4096, "model_type": "phi3",
             "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32, "original_max_position_embeddings": 4096,
             "pad_token_id": 32000, "resid_pdrop": 0.0, "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0,
             "sliding_window": 2047, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.40.2",
             "use_cache": true, "attention_bias": false, "vocab_size": 32064}
            """
        },
        {
            "HuggingFaceTB/SmolLM-135M", "llama", 134_515_008, """
            {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 0,
             "hidden_act": "silu", "hidden_size": 576, "initializer_range": 0.02, "intermediate_size": 1536, "max_position_embeddings": 2048,
             "model_type": "llama", "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3, "pretraining_tp": 1,
             "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0, "tie_word_embeddings": true, "torch_dtype": "float32",
             "transformers_version": "4.39.3", "use_cache": true, "vocab_size": 49152}
            """
        },
        {
            "EleutherAI/pythia-160m", "gptneox", 162_322_944, """
            {"architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "gelu", "hidden_size": 768,
             "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 2048,
             "model_type": "gpt_neox", "num_attention_heads": 12, "num_hidden_layers": 12, "rotary_emb_base": 10000, "rotary_pct": 0.25,
             "tie_word_embeddings": false, "torch_dtype": "float16", "transformers_version": "4.24.0", "use_cache": true,
             "use_parallel_residual": true, "vocab_size": 50304}
            """
        },
        {
            "bigscience/bloom-560m", "bloom", 559_214_592, """
            {"apply_residual_connection_post_layernorm": false, "architectures": ["BloomForCausalLM"], "attention_dropout": 0.0,
             "attention_softmax_in_fp32": true, "bias_dropout_fusion": true, "bos_token_id": 1, "eos_token_id": 2, "hidden_dropout": 0.0,
             "hidden_size": 1024, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "masked_softmax_fusion": true,
             "model_type": "bloom", "n_head": 16, "n_inner": null, "n_layer": 24, "offset_alibi": 100, "pad_token_id": 3,
             "pretraining_tp": 1, "skip_bias_add": true, "skip_bias_add_qkv": false, "slow_but_exact": false, "unk_token_id": 0,
             "use_cache": true, "vocab_size": 250880}
            """
        },
        {
            "apple/OpenELM-270M", "openelm", 271_527_168, """
            {"activation_fn_name": "swish", "architectures": ["OpenELMForCausalLM"],
             "auto_map": {"AutoConfig": "configuration_openelm.OpenELMConfig", "AutoModelForCausalLM": "modeling_openelm.OpenELMForCausalLM"},
             "bos_token_id": 1, "eos_token_id": 2, "ffn_dim_divisor": 256,
             "ffn_multipliers": [0.5, 0.73, 0.97, 1.2, 1.43, 1.67, 1.9, 2.13, 2.37, 2.6, 2.83, 3.07, 3.3, 3.53, 3.77, 4.0],
             "ffn_with_glu": true, "head_dim": 64, "initializer_range": 0.02, "max_context_length": 2048, "model_dim": 1280,
             "model_type": "openelm", "normalization_layer_name": "rms_norm", "normalize_qk_projections": true, "num_gqa_groups": 4,
             "num_kv_heads": [3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5],
             "num_query_heads": [12, 12, 12, 12, 12, 16, 16, 16, 16, 16, 16, 16, 20, 20, 20, 20],
             "num_transformer_layers": 16, "qkv_multipliers": [0.5, 1.0], "rope_freq_constant": 10000, "rope_max_length": 4096,
             "share_input_output_layers": true, "torch_dtype": "float32", "transformers_version": "4.39.3", "use_cache": true,
             "vocab_size": 32000}
            """
        },
        {
            "openai-community/gpt2", "gpt2", 124_439_808, """
            {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1, "bos_token_id": 50256,
             "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
             "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1,
             "summary_activation": null, "summary_first_dropout": 0.1, "summary_proj_to_labels": true, "summary_type": "cls_index",
             "summary_use_proj": true, "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
             "vocab_size": 50257}
            """
        },
        {
            "facebook/opt-125m", "opt", 125_239_296, """
            {"_name_or_path": "facebook/opt-125m", "activation_dropout": 0.0, "activation_function": "relu", "architectures": ["OPTForCausalLM"],
             "attention_dropout": 0.0, "bos_token_id": 2, "do_layer_norm_before": true, "dropout": 0.1, "eos_token_id": 2, "ffn_dim": 3072,
             "hidden_size": 768, "init_std": 0.02, "layerdrop": 0.0, "max_position_embeddings": 2048, "model_type": "opt",
             "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1, "prefix": "</s>", "torch_dtype": "float16",
             "transformers_version": "4.21.0.dev0", "use_cache": true, "vocab_size": 50272, "word_embed_proj_dim": 768}
            """
        },
        {
            // Post-norm blocks, no final norm, 512-wide embeddings with project_in/project_out around the 1024-wide stack.
            "facebook/opt-350m", "opt", 331_196_416, """
            {"_name_or_path": "facebook/opt-350m", "activation_dropout": 0.0, "activation_function": "relu", "architectures": ["OPTForCausalLM"],
             "attention_dropout": 0.0, "bos_token_id": 2, "do_layer_norm_before": false, "dropout": 0.1, "eos_token_id": 2, "ffn_dim": 4096,
             "hidden_size": 1024, "init_std": 0.02, "layerdrop": 0.0, "max_position_embeddings": 2048, "model_type": "opt",
             "num_attention_heads": 16, "num_hidden_layers": 24, "pad_token_id": 1, "prefix": "</s>", "torch_dtype": "float16",
             "transformers_version": "4.20.0.dev0", "use_cache": true, "vocab_size": 50272, "word_embed_proj_dim": 512}
            """
        },
        {
            "EleutherAI/gpt-neo-125m", "gptneo", 125_198_592, """
            {"activation_function": "gelu_new", "architectures": ["GPTNeoForCausalLM"], "attention_dropout": 0,
             "attention_layers": ["global", "local", "global", "local", "global", "local", "global", "local", "global", "local", "global", "local"],
             "attention_types": [[["global", "local"], 6]], "bos_token_id": 50256, "embed_dropout": 0, "eos_token_id": 50256,
             "gradient_checkpointing": false, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": null,
             "layer_norm_epsilon": 1e-05, "max_position_embeddings": 2048, "model_type": "gpt_neo", "num_heads": 12, "num_layers": 12,
             "resid_dropout": 0, "use_cache": true, "vocab_size": 50257, "window_size": 256}
            """
        },
        {
            "facebook/xglm-564M", "xglm", 564_463_616, """
            {"activation_dropout": 0.0, "activation_function": "gelu", "architectures": ["XGLMForCausalLM"], "attention_dropout": 0.1,
             "attention_heads": 16, "bos_token_id": 0, "d_model": 1024, "decoder_start_token_id": 2, "dropout": 0.1, "eos_token_id": 2,
             "ffn_dim": 4096, "init_std": 0.02, "layerdrop": 0.0, "max_position_embeddings": 2048, "model_type": "xglm", "num_layers": 24,
             "pad_token_id": 1, "scale_embedding": true, "use_cache": true, "vocab_size": 256008}
            """
        },
    };

    [Theory]
    [MemberData(nameof(Published))]
    public void A_published_config_gives_the_published_parameter_count(string checkpoint, string family, long published, string json)
    {
        string path = Path.Combine(_folder, checkpoint.Replace('/', '_') + ".json");
        File.WriteAllText(path, json);
        var config = HuggingFaceConfig.Load(path);
        var modelFamily = ModelLoader.FamilyOf(config);
        Assert.Equal(family, modelFamily.Name);
        long count = modelFamily.Name switch
        {
            "llama" => Llama.ParameterCount(modelFamily.FromHuggingFace(config)),
            "qwen2" => Qwen2.ParameterCount(modelFamily.FromHuggingFace(config)),
            "gemma2" => Gemma2.ParameterCount(modelFamily.FromHuggingFace(config)),
            "phi2" => Phi2.ParameterCount(modelFamily.FromHuggingFace(config)),
            "phi3" => Phi3.ParameterCount(modelFamily.FromHuggingFace(config)),
            "gptneox" => GptNeoX.ParameterCount(modelFamily.FromHuggingFace(config)),
            "bloom" => Bloom.ParameterCount(modelFamily.FromHuggingFace(config)),
            "gpt2" => Gpt2.ParameterCount(modelFamily.FromHuggingFace(config)),
            "opt" => Opt.ParameterCount(modelFamily.FromHuggingFace(config)),
            "gptneo" => GptNeo.ParameterCount(modelFamily.FromHuggingFace(config)),
            "xglm" => Xglm.ParameterCount(modelFamily.FromHuggingFace(config)),
            "openelm" => OpenElm.ParameterCount(modelFamily.FromHuggingFace(config)),
            _ => throw new InvalidOperationException(family),
        };
        Assert.True(Math.Abs(count - published) <= published / 1000, $"{checkpoint}: {count:N0} parameters, published {published:N0}");
    }

    [Theory]
    [InlineData("llama", "silu", ActivationKind.Silu)]
    [InlineData("llama", "gelu", ActivationKind.GeluErf)]
    [InlineData("qwen2", "gelu_new", ActivationKind.GeluTanh)]
    [InlineData("phi3", "relu", ActivationKind.Relu)]
    public void A_llama_style_config_runs_the_mlp_activation_its_hidden_act_names(string modelType, string hiddenAct, ActivationKind expected)
    {
        // transformers' Llama, Qwen2 and Phi-3 MLPs apply ACT2FN[config.hidden_act], whatever the family usually ships.
        string path = Path.Combine(_folder, $"{modelType}-{hiddenAct}.json");
        File.WriteAllText(path, $$"""
            {"model_type": "{{modelType}}", "hidden_act": "{{hiddenAct}}", "hidden_size": 64, "intermediate_size": 128,
             "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 100}
            """);
        var config = HuggingFaceConfig.Load(path);
        Assert.Equal(expected, ModelLoader.FamilyOf(config).FromHuggingFace(config).Activation);
    }

    [Theory]
    [InlineData("rwkv", "RWKV/rwkv-4-169m-pile")]
    [InlineData("mamba2", "state-spaces/mamba2-130m")]
    [InlineData("jamba", "ai21labs/Jamba-tiny-dev")]
    public void An_unsupported_model_type_is_refused_with_the_supported_list(string modelType, string checkpoint)
    {
        string folder = Path.Combine(_folder, checkpoint.Replace('/', '_'));
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), $$"""{"model_type": "{{modelType}}", "hidden_size": 64}""");
        var error = Assert.Throws<ModelFileException>(() => ModelLoader.Load(folder));
        Assert.Contains($"'{modelType}' is not supported", error.Message, StringComparison.Ordinal);
        foreach (string supported in new[] { "llama", "qwen2", "qwen3", "gemma2", "phi", "phi3", "gpt_neox", "gpt2", "bloom", "olmo", "openelm", "nemotron" })
            Assert.Contains(supported, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unsupported_gguf_architecture_is_refused_with_the_supported_list()
    {
        string path = Path.Combine(_folder, "rwkv6.gguf");
        var writer = new GgufWriter();
        writer.Set("general.architecture", "rwkv6");
        writer.AddTensor("token_embd.weight", [4, 4], new float[16]);
        writer.Write(path);
        var error = Assert.Throws<ModelFileException>(() => ModelLoader.Load(path));
        Assert.Contains("'rwkv6' is not supported (supported: llama, qwen2, qwen3, gemma", error.Message, StringComparison.Ordinal);
        Assert.Contains("mamba", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    [InlineData("phi2")]
    [InlineData("gpt2")]
    [InlineData("bloom")]
    [InlineData("openelm")]
    public void Slm_info_names_the_family(string family)
    {
        var spec = FamilyOracleTests.AllSpecs().First(s => s.Family == family);
        var random = new RandomDecoder(spec);
        string gguf = random.WriteGguf(Path.Combine(_folder, family + ".gguf"));
        foreach (string path in new[] { gguf, random.WriteHuggingFace(Path.Combine(_folder, family + "-hf")) })
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            string[] args = path == gguf
                ? ["info", "--model", path, "--json"]
                : ["info", "--model", path, "--tokenizer", gguf, "--json"];
            int code = Program.Run(args, stdout, stderr);
            Assert.True(code == 0, stderr.ToString());
            Assert.Contains($"\"family\": \"{family}\"", stdout.ToString(), StringComparison.Ordinal);
        }
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
