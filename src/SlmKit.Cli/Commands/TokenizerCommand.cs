using System.CommandLine;
using SlmKit.Tokenizers;

namespace SlmKit.Cli.Commands;

/// <summary><c>slm tokenizer train</c>: learn a BPE tokenizer from text files and write a Hugging Face tokenizer.json.</summary>
internal static class TokenizerCommand
{
    public static Command Create(CliConsole console)
    {
        var inputs = new Option<string[]>("--input", "-i") { Description = "Text file(s) to learn from (repeatable)", Required = true, AllowMultipleArgumentsPerToken = true };
        var vocabSize = new Option<int>("--vocab-size") { Description = "Vocabulary size, special and byte tokens included", Required = true };
        var kind = new Option<string>("--kind")
        {
            Description = "byte-bpe (GPT-2 style, bytes as the alphabet) or sentencepiece-bpe (Llama 2 style, ▁ for spaces, byte fallback)",
            DefaultValueFactory = _ => "byte-bpe",
        };
        kind.AcceptOnlyFromAmong("byte-bpe", "sentencepiece-bpe");
        var special = new Option<string[]>("--special") { Description = "Extra special token (repeatable)" };
        var output = new Option<string>("--out", "-o") { Description = "Folder for tokenizer.json and tokenizer_config.json", Required = true };
        var json = CommonOptions.Json();

        var train = new Command("train", "Learn a BPE vocabulary from text and write tokenizer.json (loadable by SlmKit and transformers)")
        {
            inputs, vocabSize, kind, special, output, json,
        };
        train.SetAction(result =>
        {
            var options = new TokenizerTrainingOptions
            {
                Kind = result.GetValue(kind) == "sentencepiece-bpe" ? TrainedTokenizerKind.SentencePieceBpe : TrainedTokenizerKind.ByteLevelBpe,
                VocabSize = result.GetValue(vocabSize),
                SpecialTokens = result.GetValue(special) ?? [],
            };
            var trainer = new TokenizerTrainer(options);
            foreach (string file in result.GetValue(inputs)!)
            {
                console.Error.WriteLine($"reading {file}");
                trainer.AddFile(file);
            }
            var trained = trainer.Train(result.GetValue(output)!, new SynchronousProgress(p => console.Error.Write($"\rmerges {p.Done}/{p.Total}")));
            console.Error.WriteLine();
            if (result.GetValue(json))
            {
                console.Out.WriteLine(JsonOutput.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("tokenizer", trained.TokenizerJsonPath);
                    w.WriteNumber("vocab_size", trained.VocabSize);
                    w.WriteNumber("merges", trained.MergeCount);
                    w.WriteNumber("distinct_words", trained.DistinctWords);
                    w.WriteEndObject();
                }, indented: false));
            }
            else
            {
                console.Out.WriteLine(trained.ToString());
            }
            return 0;
        });

        return new Command("tokenizer", "Tokenizer tools") { train };
    }
}
