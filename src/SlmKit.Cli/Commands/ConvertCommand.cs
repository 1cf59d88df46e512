using System.CommandLine;
using SlmKit.Models;

namespace SlmKit.Cli.Commands;

/// <summary><c>slm convert</c>: a Hugging Face folder of a family llama.cpp runs to one GGUF file (loadable by SlmKit and llama.cpp).</summary>
internal static class ConvertCommand
{
    public static Command Create(CliConsole console)
    {
        var input = new Argument<string>("IN") { Description = "Hugging Face model folder (config.json, *.safetensors, tokenizer.json)" };
        var output = new Argument<string>("OUT") { Description = "GGUF file to write" };
        var to = new Option<string>("--to") { Description = "Target format (gguf)", DefaultValueFactory = _ => "gguf" };
        to.AcceptOnlyFromAmong("gguf");
        var command = new Command("convert", "Convert a Hugging Face folder (model_type llama, smollm3, qwen2, qwen3, gemma, gemma2, gemma3_text, phi3, stablelm, olmo, olmo2, minicpm, nemotron, phi, gpt_neox, gpt2, bloom, mamba or t5) to GGUF as llama.cpp's converter does (dtypes kept; tokenizer embedded)") { input, output, to };
        command.SetAction(result =>
        {
            string outPath = result.GetValue(output)!;
            HuggingFaceToGguf.Convert(result.GetValue(input)!, outPath,
                new SynchronousProgress(done => console.Error.Write($"\rtensors {done.Done}/{done.Total}")));
            console.Error.WriteLine();
            console.Out.WriteLine(outPath);
            return 0;
        });
        return command;
    }
}

/// <summary>Reports on the working thread, in order (Progress&lt;T&gt; would post to the thread pool).</summary>
internal sealed class SynchronousProgress(Action<(int Done, int Total)> report) : IProgress<(int Done, int Total)>
{
    public void Report((int Done, int Total) value) => report(value);
}
