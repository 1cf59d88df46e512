using System.Text.Json;
using SlmKit.Cli;

namespace SlmKit.Tests.Cli;

/// <summary>The <c>slm</c> command line, run in-process: stdout for results, stderr for one-line errors, exit 2 for user errors.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-cli-").FullName;

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static string Stories(string file) => SharedAssets.Require("assets/llama2c/stories260K/" + file);

    [Fact]
    public void Generate_streams_only_the_generated_text_to_stdout()
    {
        var (code, output, error) = Run("generate", "--model", Stories("stories260K.bin"), "--tokenizer", Stories("tok512.bin"),
            "--prompt", "", "--max-tokens", "200", "--temperature", "0", "--threads", "1");
        Assert.Equal(0, code);
        string expected = File.ReadAllText(SharedAssets.Require("assets/expected/stories260K/runc_t0_n200_expected.txt"));
        Assert.Equal(expected + "\n", output);
        Assert.Contains("tok/s", error);
    }

    [Fact]
    public void Generate_without_a_model_uses_the_built_in_tinystories_model()
    {
        var (code, output, error) = Run("generate", "--prompt", "Once upon a time", "--max-tokens", "30", "--seed", "7");
        Assert.True(code == 0, error);
        Assert.True(output.Trim().Length > 10, $"generated only '{output}'");
        var (infoCode, info, _) = Run("info", "--json");
        Assert.Equal(0, infoCode);
        using var json = JsonDocument.Parse(info);
        Assert.Equal("llama", json.RootElement.GetProperty("architecture").GetString());
        Assert.True(json.RootElement.GetProperty("parameters").GetInt64() * 4 <= 8 * 1024 * 1024, "the default model's weights must stay within 8 MB");
    }

    [Fact]
    public void Info_json_names_the_architecture_size_and_tokenizer()
    {
        var (code, output, _) = Run("info", "--model", Stories("stories260K.gguf"), "--json");
        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.Equal("llama", root.GetProperty("architecture").GetString());
        Assert.Equal(512, root.GetProperty("vocab_size").GetInt32());
        Assert.Equal(5, root.GetProperty("layers").GetInt32());
        Assert.Equal(2048, root.GetProperty("context_length").GetInt32());
        Assert.True(root.GetProperty("parameters").GetInt64() > 250_000);
        Assert.False(root.GetProperty("chat_template").GetBoolean());
    }

    [Fact]
    public void Tokenize_json_prints_ids_and_pieces_with_the_models_bos_rule()
    {
        var (code, output, _) = Run("tokenize", "--model", Stories("stories260K.gguf"), "--text", "Once upon a time", "--json");
        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(output);
        Assert.Equal([1, 403, 407, 261, 378], json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(5, json.RootElement.GetProperty("pieces").GetArrayLength());
    }

    [Fact]
    public void Tokenize_accepts_a_folder_holding_only_tokenizer_files()
    {
        string folder = SharedAssets.Require("assets/hf-tokenizers/gpt2");
        var (code, output, _) = Run("tokenize", "--model", folder, "--text", "Hello world", "--json");
        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(output);
        Assert.Equal([15496, 995], json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(["Hello", "\u0120world"], json.RootElement.GetProperty("pieces").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void Tokenize_accepts_a_vocab_only_gguf()
    {
        string vocab = SharedAssets.Require("assets/llamacpp/vocab/ggml-vocab-llama-spm.gguf");
        var (code, output, _) = Run("tokenize", "--model", vocab, "--text", "I believe the meaning of life is", "--json");
        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(output);
        Assert.Equal([1, 306, 4658, 278, 6593, 310, 2834, 338], json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public void Tokenize_of_a_llama2c_checkpoint_uses_its_tokenizer_bin()
    {
        var (code, output, _) = Run("tokenize", "--model", Stories("stories260K.bin"), "--tokenizer", Stories("tok512.bin"), "--text", "Lily and Tom", "--json");
        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(output);
        Assert.Equal([1, 317, 269, 274, 287], json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public void Logits_writes_float32_rows_for_every_position()
    {
        string outPath = Path.Combine(_folder, "logits.bin");
        var (code, _, _) = Run("logits", "--model", Stories("stories260K.gguf"), "--tokens", "1,403,407", "--out", outPath);
        Assert.Equal(0, code);
        byte[] bytes = File.ReadAllBytes(outPath);
        Assert.Equal(3 * 512 * 4, bytes.Length);
        Assert.Equal(17.02352f, BitConverter.ToSingle(bytes, 403 * 4), 1e-4);
    }

    [Fact]
    public void Logits_top_json_lists_the_best_tokens_per_position()
    {
        var (code, output, _) = Run("logits", "--model", Stories("stories260K.gguf"), "--tokens", "1", "--top", "3", "--json");
        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(output);
        var top = json.RootElement[0].GetProperty("top");
        Assert.Equal(403, top[0].GetProperty("id").GetInt32());
        Assert.Equal(3, top.GetArrayLength());
    }

    [Fact]
    public void A_missing_model_file_is_one_line_on_stderr_and_exit_code_2()
    {
        var (code, output, error) = Run("info", "--model", Path.Combine(_folder, "nope.gguf"));
        Assert.Equal(2, code);
        Assert.Empty(output);
        Assert.Single(error.TrimEnd('\n').Split('\n'));
        Assert.Contains("nope.gguf", error);
    }

    [Fact]
    public void A_truncated_gguf_is_refused_with_the_file_named()
    {
        byte[] bytes = File.ReadAllBytes(Stories("stories260K.gguf"));
        string path = Path.Combine(_folder, "truncated.gguf");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var (code, _, error) = Run("generate", "--model", path, "--max-tokens", "5");
        Assert.Equal(2, code);
        Assert.StartsWith("slm: " + path, error);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public void A_llama2c_checkpoint_without_a_tokenizer_asks_for_one()
    {
        var (code, _, error) = Run("generate", "--model", Stories("stories260K.bin"));
        Assert.Equal(2, code);
        Assert.Contains("--tokenizer", error);
    }

    [Theory]
    [InlineData("generate", "--model", "x", "--max-tokens", "many")]
    [InlineData("generate", "--model", "x", "--top-p", "2")]
    [InlineData("logits", "--model", "x", "--tokens", "1,a")]
    [InlineData("frobnicate")]
    public void Bad_arguments_exit_with_2(params string[] args)
    {
        var (code, _, error) = Run(args);
        Assert.Equal(2, code);
        Assert.NotEmpty(error);
    }

    [Fact]
    public void Tokenizer_train_writes_a_tokenizer_that_tokenize_then_uses()
    {
        string corpus = Path.Combine(_folder, "corpus.txt");
        File.WriteAllLines(corpus, Enumerable.Repeat("the cat sat on the mat and the dog sat on the log", 20));
        string output = Path.Combine(_folder, "tok");
        var (code, stdout, _) = Run("tokenizer", "train", "--input", corpus, "--vocab-size", "300", "--kind", "sentencepiece-bpe", "--out", output, "--json");
        Assert.Equal(0, code);
        using (var json = JsonDocument.Parse(stdout))
            Assert.True(json.RootElement.GetProperty("merges").GetInt32() > 10);
        var (code2, tokens, _) = Run("tokenize", "--model", output, "--text", "the cat", "--json");
        Assert.Equal(0, code2);
        using var ids = JsonDocument.Parse(tokens);
        Assert.Equal(1, ids.RootElement.GetProperty("ids")[0].GetInt32());
    }

    [Fact]
    public void Tokenizer_train_refuses_an_unknown_kind_and_a_missing_input()
    {
        Assert.Equal(2, Run("tokenizer", "train", "--input", "x.txt", "--vocab-size", "300", "--kind", "wordpiece", "--out", _folder).Code);
        var (code, _, error) = Run("tokenizer", "train", "--input", Path.Combine(_folder, "missing.txt"), "--vocab-size", "300", "--out", _folder);
        Assert.Equal(2, code);
        Assert.Contains("missing.txt", error);
    }

    [Fact]
    public void Help_explains_the_commands()
    {
        var (code, output, _) = Run("--help");
        Assert.Equal(0, code);
        foreach (string command in new[] { "generate", "info", "tokenize", "logits", "tokenizer" })
            Assert.Contains(command, output);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
