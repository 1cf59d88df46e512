using System.CommandLine;

namespace SlmKit.Cli.Commands;

/// <summary><c>slm tokenize</c>: ids and pieces with the model's own BOS/special-token rules.</summary>
internal static class TokenizeCommand
{
    public static Command Create(CliConsole console)
    {
        var model = new Option<string>("--model", "-m")
        {
            Description = "A model (GGUF, Hugging Face folder, llama2.c .bin with --tokenizer), a folder holding only tokenizer files, or a vocab-only GGUF; default: the built-in model",
        };
        var tokenizer = CommonOptions.Tokenizer();
        var text = new Option<string>("--text") { Description = "Text to tokenize", Required = true };
        var noSpecial = new Option<bool>("--no-special") { Description = "Do not add BOS/EOS and treat special-token text as plain text" };
        var json = CommonOptions.Json();
        var command = new Command("tokenize", "Print the token ids and pieces of a text") { model, tokenizer, text, noSpecial, json };
        command.SetAction(result =>
        {
            string modelPath = CommonOptions.ModelPath(result.GetValue(model));
            var tok = SlmModel.LoadTokenizerFor(modelPath, result.GetValue(tokenizer));
            bool special = !result.GetValue(noSpecial);
            int[] ids = tok.Encode(result.GetValue(text)!, addSpecial: special, parseSpecial: special);
            if (result.GetValue(json))
            {
                console.Out.WriteLine(JsonOutput.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteStartArray("ids");
                    foreach (int id in ids)
                        w.WriteNumberValue(id);
                    w.WriteEndArray();
                    w.WriteStartArray("pieces");
                    foreach (int id in ids)
                        w.WriteStringValue(tok.TokenPiece(id));
                    w.WriteEndArray();
                    w.WriteEndObject();
                }, indented: false));
                return 0;
            }
            foreach (int id in ids)
                console.Out.WriteLine($"{id,8} {Printable(tok.TokenPiece(id))}");
            return 0;
        });
        return command;
    }

    private static string Printable(string piece) =>
        "'" + piece.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal) + "'";
}
