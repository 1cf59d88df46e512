using System.Text;
using System.Text.Json;
using SlmKit.Inference;

namespace SlmKit.Tests.Models;

/// <summary>
/// Real-model ground truth: karpathy's stories260K must reproduce llama2.c's run.c output byte for byte, from the
/// llama2.c checkpoint (both formats) and from its GGUF conversion.
/// </summary>
public sealed class Stories260KTests
{
    private const string Folder = "assets/llama2c/stories260K/";
    private const string Expected = "assets/expected/stories260K/";

    private static SlmModel LoadBin(string file = "stories260K.bin") =>
        SlmModel.Load(SharedAssets.Require(Folder + file), new SlmModelOptions { TokenizerPath = SharedAssets.Require(Folder + "tok512.bin") });

    private static string ExpectedText(string file) => File.ReadAllText(SharedAssets.Require(Expected + file), Encoding.UTF8);

    private static int[] ExpectedGreedyIds()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(SharedAssets.Require(Expected + "derived_ids_and_logits.json")));
        var element = json.RootElement.GetProperty("ids_greedy_n200");
        string text = element.ValueKind == JsonValueKind.String ? element.GetString()! : element.GetRawText();
        return JsonSerializer.Deserialize(text, TestJson.Default.Int32Array)!;
    }

    [Theory]
    [InlineData("stories260K.bin")]
    [InlineData("stories260K_v1.bin")]
    public void Greedy_200_tokens_from_bos_reproduce_run_c_from_the_llama2c_checkpoint(string file)
    {
        using var model = LoadBin(file);
        string text = model.Generate("", GenerationOptions.Greedy with { MaxTokens = 200 });
        Assert.Equal(ExpectedText("runc_t0_n200_expected.txt"), text);
    }

    [Fact]
    public void Greedy_200_tokens_from_bos_reproduce_run_c_from_the_gguf()
    {
        using var model = SlmModel.Load(SharedAssets.Require(Folder + "stories260K.gguf"));
        string text = model.Generate("", GenerationOptions.Greedy with { MaxTokens = 200 });
        Assert.Equal(ExpectedText("runc_t0_n200_expected.txt"), text);
    }

    [Fact]
    public void Greedy_256_tokens_reproduce_the_llama2c_documentation()
    {
        using var model = LoadBin();
        string text = model.Generate("", GenerationOptions.Greedy with { MaxTokens = 256 });
        Assert.Equal(ExpectedText("runc_t0_n256_expected.txt"), text + "\n");
    }

    [Fact]
    public void Greedy_token_ids_equal_the_derived_reference()
    {
        using var model = LoadBin();
        var generator = new TextGenerator(model.Model, model.Tokenizer, 512);
        int[] ids = generator.GenerateTokens([1], GenerationOptions.Greedy with { MaxTokens = 200 }).ToArray();
        Assert.Equal(ExpectedGreedyIds(), ids);
    }

    [Fact]
    public void Extra_end_of_generation_ids_stop_generation_before_that_token()
    {
        using var model = LoadBin();
        int[] greedy = ExpectedGreedyIds();
        var generator = new TextGenerator(model.Model, model.Tokenizer, 512, extraEndOfGenerationIds: [greedy[9]]);
        int[] ids = generator.GenerateTokens([1], GenerationOptions.Greedy with { MaxTokens = 200 }).ToArray();
        Assert.Equal(greedy[..Array.IndexOf(greedy, greedy[9])], ids);
        Assert.Equal(FinishReason.Stop, generator.LastStats!.FinishReason);
    }

    [Fact]
    public void A_stop_string_cuts_the_text_before_it_and_reports_stop()
    {
        using var model = LoadBin();
        string text = model.Generate("", GenerationOptions.Greedy with { MaxTokens = 200, StopStrings = ["Lily"] });
        string expected = ExpectedText("runc_t0_n200_expected.txt");
        Assert.Equal(expected[..expected.IndexOf("Lily", StringComparison.Ordinal)], text);
        Assert.Equal(FinishReason.Stop, model.LastStats!.FinishReason);
    }

    [Fact]
    public void Logits_after_bos_put_once_first_at_the_reference_value()
    {
        using var model = LoadBin();
        float[] logits = model.ComputeLogits([1]);
        Assert.Equal(403, Sampler.ArgMax(logits));
        Assert.Equal(17.02352f, logits[403], 1e-4);
        Assert.Equal(15.40621f, logits[385], 1e-4);
    }

    [Fact]
    public void The_gguf_and_the_checkpoint_give_the_same_logits()
    {
        using var bin = LoadBin();
        using var gguf = SlmModel.Load(SharedAssets.Require(Folder + "stories260K.gguf"));
        int[] tokens = [1, 403, 407, 261, 378, 432, 383, 286];
        Assert.Equal(bin.ComputeLogits(tokens), gguf.ComputeLogits(tokens));
    }

    [Theory]
    [InlineData("Once upon a time", new[] { 1, 403, 407, 261, 378 })]
    [InlineData("Lily and Tom", new[] { 1, 317, 269, 274, 287 })]
    [InlineData("", new[] { 1 })]
    public void Prompts_encode_as_llama2c_encodes_them(string prompt, int[] expected)
    {
        using var model = LoadBin();
        Assert.Equal(expected, model.Tokenize(prompt));
    }

    [Fact]
    public void Sampling_at_temperature_1_top_p_0_9_with_seed_133742_reproduces_run_c()
    {
        // run.c's sampler: xorshift64* coin per step, softmax, nucleus cut where the cumulative probability first exceeds p.
        using var model = LoadBin();
        var options = new GenerationOptions { Temperature = 1, TopK = 0, TopP = 0.9f, MinP = 0, Seed = 133742, MaxTokens = 256 };
        string text = model.Generate("", options);
        // run.c prints a final newline after the generated pieces.
        Assert.Equal(ExpectedText("runc_t1.0_p0.9_s133742_n256_expected.txt"), text + "\n");
    }
}
