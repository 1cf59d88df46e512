using SlmKit.Formats;

namespace SlmKit.Tests.Formats;

public sealed class HuggingFaceJsonTests
{
    [Fact]
    public void Config_getters_and_errors()
    {
        using var dir = new TempDirectory();
        string path = dir.File("config.json");
        File.WriteAllText(path, """
            {
              "model_type": "llama",
              "hidden_size": 576,
              "vocab_size": 49152.0,
              "rms_norm_eps": 1e-05,
              "tie_word_embeddings": true,
              "eos_token_id": [0, 2],
              "rope_scaling": null,
              "rope_theta": "oops",
              "bad_int": 1.5,
              "text_config": { "num_hidden_layers": 30 }
            }
            """);
        HuggingFaceConfig config = HuggingFaceConfig.TryLoadFromFolder(dir.Path)!;
        Assert.Equal("llama", config.ModelType);
        Assert.Equal(576, config.GetInt("hidden_size"));
        Assert.Equal(49152, config.GetInt("vocab_size"));
        Assert.Equal(1e-5, config.GetDouble("rms_norm_eps"));
        Assert.True(config.GetBool("tie_word_embeddings"));
        Assert.Equal([0, 2], config.GetIntArray("eos_token_id")!);
        Assert.Null(config.GetInt("rope_scaling"));
        Assert.False(config.TryGetObject("rope_scaling", out _));
        Assert.Null(config.GetInt("absent"));
        Assert.True(config.TryGetObject("text_config", out var text));
        Assert.Equal(30, text.GetProperty("num_hidden_layers").GetInt32());

        var e = Assert.Throws<ModelFileException>(() => config.GetDouble("rope_theta"));
        Assert.Equal($"{path}: 'rope_theta' is a JSON string, expected a number", e.Message);
        Assert.Contains("'bad_int' = 1.5", Assert.Throws<ModelFileException>(() => config.GetInt("bad_int")).Message);
        Assert.Contains("'hidden_size'", Assert.Throws<ModelFileException>(() => config.TryGetObject("hidden_size", out _)).Message);

        File.WriteAllText(path, "{\n  \"a\": 1,\n  \"b\": [1, 2,, 3]\n}");
        e = Assert.Throws<ModelFileException>(() => HuggingFaceConfig.Load(path));
        Assert.StartsWith($"{path}: file is not valid JSON at line 3,", e.Message);
        Assert.DoesNotContain("\n", e.Message);

        Assert.Null(HuggingFaceConfig.TryLoadFromFolder(dir.File("nowhere")));
        Assert.Null(GenerationConfig.TryLoadFromFolder(dir.Path));
        Assert.Null(TokenizerConfig.TryLoadFromFolder(dir.Path));
    }

    [Fact]
    public void Tokenizer_config_tokens_may_be_strings_or_objects_and_templates_a_list()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("tokenizer_config.json"), """
            {
              "add_bos_token": true,
              "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
              "eos_token": "</s>",
              "unk_token": null,
              "chat_template": [
                {"name": "tool_use", "template": "T"},
                {"name": "default", "template": "D"}
              ],
              "model_max_length": 1000000000000000019884624838656
            }
            """);
        TokenizerConfig config = TokenizerConfig.TryLoadFromFolder(dir.Path)!;
        Assert.True(config.AddBosToken);
        Assert.Null(config.AddEosToken);
        Assert.Equal("<s>", config.BosToken);
        Assert.Equal("</s>", config.EosToken);
        Assert.Null(config.UnkToken);
        Assert.Equal("D", config.ChatTemplate);
        Assert.Equal("T", config.ChatTemplates["tool_use"]);
        Assert.Null(config.ModelMaxLength);

        File.WriteAllText(dir.File("tokenizer_config.json"), """{"eos_token": 5}""");
        var e = Assert.Throws<ModelFileException>(() => TokenizerConfig.TryLoadFromFolder(dir.Path));
        Assert.Contains("'eos_token' is a JSON number", e.Message);
    }

    [Fact]
    public void Real_tokenizer_configs()
    {
        TokenizerConfig llama2 = TokenizerConfig.Load(SharedAssets.Require("assets/hf-tokenizers/llama2/tokenizer_config.json"));
        Assert.Equal("<s>", llama2.BosToken);
        Assert.Equal("<unk>", llama2.UnkToken);
        Assert.Null(llama2.PadToken);
        Assert.True(llama2.AddBosToken);
        Assert.False(llama2.AddEosToken);

        TokenizerConfig qwen = TokenizerConfig.Load(SharedAssets.Require("assets/hf-tokenizers/qwen2.5/tokenizer_config.json"));
        Assert.Equal("<|im_end|>", qwen.EosToken);
        Assert.Null(qwen.BosToken);
        Assert.Equal(131072, qwen.ModelMaxLength);
        Assert.Contains("<|im_start|>", qwen.ChatTemplate);

        // SmolLM3 keeps its template beside the config.
        TokenizerConfig smol = TokenizerConfig.TryLoadFromFolder(SharedAssets.Require("assets/hf-tokenizers/smollm3"))!;
        Assert.NotNull(smol.ChatTemplate);

        foreach (string folder in Directory.GetDirectories(SharedAssets.Require("assets/hf-tokenizers")))
            _ = TokenizerConfig.TryLoadFromFolder(folder);
    }

    [Fact]
    public void Generation_config_eos_may_be_one_id_or_a_list()
    {
        using var dir = new TempDirectory();
        string path = dir.File("generation_config.json");
        File.WriteAllText(path, """
            {"bos_token_id": 128000, "eos_token_id": [128001, 128009], "do_sample": true,
             "temperature": 0.6, "top_p": 0.9, "top_k": 50, "repetition_penalty": 1.1, "max_new_tokens": 256,
             "pad_token_id": null, "transformers_version": "4.45.0"}
            """);
        GenerationConfig g = GenerationConfig.TryLoadFromFolder(dir.Path)!;
        Assert.Equal(128000, g.BosTokenId);
        Assert.Equal([128001, 128009], g.EosTokenIds!);
        Assert.Null(g.PadTokenId);
        Assert.True(g.DoSample);
        Assert.Equal(0.6, g.Temperature);
        Assert.Equal(0.9, g.TopP);
        Assert.Equal(50, g.TopK);
        Assert.Equal(1.1, g.RepetitionPenalty);
        Assert.Equal(256, g.MaxNewTokens);

        File.WriteAllText(path, """{"eos_token_id": 2}""");
        Assert.Equal([2], GenerationConfig.Load(path).EosTokenIds!);
        File.WriteAllText(path, """{"eos_token_id": "2"}""");
        Assert.Contains("'eos_token_id'", Assert.Throws<ModelFileException>(() => GenerationConfig.Load(path)).Message);
    }
}
