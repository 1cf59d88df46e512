using System.Text;
using System.Text.Json;
using Parquet;
using Parquet.Schema;

namespace SlmKit.Training.Data;

/// <summary>The file formats training text can come in.</summary>
public enum DataFormat
{
    /// <summary>Plain UTF-8 text; documents split by <see cref="DataSource.DocumentSeparator"/>.</summary>
    Text,

    /// <summary>One JSON object per line; the document is the string in <see cref="DataSource.TextField"/>.</summary>
    Jsonl,

    /// <summary>Apache Parquet (what Hugging Face datasets ship); the document is the string column <see cref="DataSource.TextField"/>.</summary>
    Parquet,
}

/// <summary>One training data file and how to read documents out of it.</summary>
public sealed record DataSource
{
    public required string Path { get; init; }

    /// <summary>The format; null infers it from the extension (.jsonl/.json → JSONL, .parquet → Parquet, else text).</summary>
    public DataFormat? Format { get; init; }

    /// <summary>JSONL field or Parquet column holding the text.</summary>
    public string TextField { get; init; } = "text";

    /// <summary>
    /// Plain text only: the marker between documents ("&lt;|endoftext|&gt;" by default, as TinyStories dumps use),
    /// or "\n" for one document per line, or "\n\n" for blank-line separated paragraphs.
    /// </summary>
    public string DocumentSeparator { get; init; } = "<|endoftext|>";

    public DataFormat ResolvedFormat => Format ?? System.IO.Path.GetExtension(Path).ToLowerInvariant() switch
    {
        ".jsonl" or ".json" or ".ndjson" => DataFormat.Jsonl,
        ".parquet" => DataFormat.Parquet,
        _ => DataFormat.Text,
    };
}

/// <summary>
/// Streams the documents of a <see cref="DataSource"/>, never holding more than one document (text, JSONL) or one
/// row group (Parquet) in memory, so a corpus larger than memory can be trained on.
/// </summary>
public static class DocumentReader
{
    /// <summary>The documents of <paramref name="source"/>, in file order; empty documents are skipped.</summary>
    public static IEnumerable<string> Read(DataSource source)
    {
        if (!File.Exists(source.Path))
            throw new ModelFileException(source.Path, "data file not found");
        if (new FileInfo(source.Path).Length == 0)
            throw new ModelFileException(source.Path, "data file is empty");
        return source.ResolvedFormat switch
        {
            DataFormat.Jsonl => ReadJsonl(source),
            DataFormat.Parquet => ReadParquet(source),
            _ => ReadText(source),
        };
    }

    private static IEnumerable<string> ReadText(DataSource source)
    {
        string separator = source.DocumentSeparator;
        if (separator.Length == 0)
            throw new SlmKitException("the document separator must not be empty");
        var document = new StringBuilder();
        using var reader = new StreamReader(source.Path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            if (separator == "\n")
            {
                document.Append(line);
                if (Flush(document) is { } text)
                    yield return text;
            }
            else if (separator == "\n\n" && line.Trim().Length == 0)
            {
                if (Flush(document) is { } text)
                    yield return text;
            }
            else if (separator != "\n\n" && line.Contains(separator, StringComparison.Ordinal))
            {
                // A marker may sit inside a line: text before it ends the document, text after it starts the next.
                string[] parts = line.Split(separator);
                for (int i = 0; i < parts.Length; i++)
                {
                    document.Append(parts[i]);
                    if (i < parts.Length - 1 && Flush(document) is { } text)
                        yield return text;
                }
                if (document.Length > 0)
                    document.Append('\n');
            }
            else
            {
                document.Append(line).Append('\n');
            }
        }
        if (Flush(document) is { } last)
            yield return last;
    }

    private static string? Flush(StringBuilder document)
    {
        string text = document.ToString().Trim('\n', '\r');
        document.Clear();
        return text.Trim().Length == 0 ? null : text;
    }

    private static IEnumerable<string> ReadJsonl(DataSource source)
    {
        using var reader = new StreamReader(source.Path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        string? line;
        int number = 0;
        while ((line = reader.ReadLine()) is not null)
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
                continue;
            string? text;
            try
            {
                using var json = JsonDocument.Parse(line);
                if (json.RootElement.ValueKind != JsonValueKind.Object)
                    throw new ModelFileException(source.Path, $"line {number}: expected a JSON object");
                if (!json.RootElement.TryGetProperty(source.TextField, out var field))
                    throw new ModelFileException(source.Path, $"line {number}: field '{source.TextField}' is missing");
                if (field.ValueKind != JsonValueKind.String)
                    throw new ModelFileException(source.Path, $"line {number}: field '{source.TextField}' is {field.ValueKind}, expected a string");
                text = field.GetString();
            }
            catch (JsonException e)
            {
                throw new ModelFileException(source.Path, $"line {number}: not valid JSON ({e.Message.Split('.')[0]})");
            }
            if (!string.IsNullOrWhiteSpace(text))
                yield return text;
        }
    }

    private static IEnumerable<string> ReadParquet(DataSource source)
    {
        ParquetReader reader;
        Stream stream = File.OpenRead(source.Path);
        try
        {
            reader = ParquetReader.CreateAsync(stream).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not SlmKitException)
        {
            stream.Dispose();
            throw new ModelFileException(source.Path, $"not a readable Parquet file ({e.Message})");
        }

        try
        {
            DataField? field = null;
            foreach (DataField f in reader.Schema.GetDataFields())
            {
                if (f.Name == source.TextField)
                    field = f;
            }
            if (field is null)
                throw new ModelFileException(source.Path, $"column '{source.TextField}' is missing (columns: {string.Join(", ", reader.Schema.GetDataFields().Select(f => f.Name))})");

            for (int g = 0; g < reader.RowGroupCount; g++)
            {
                string?[] values;
                try
                {
                    using var group = reader.OpenRowGroupReader(g);
                    values = new string?[checked((int)group.RowCount)];
                    group.ReadAsync(field, values.AsMemory(), null).AsTask().GetAwaiter().GetResult();
                }
                catch (Exception e) when (e is not SlmKitException)
                {
                    throw new ModelFileException(source.Path, $"column '{source.TextField}' cannot be read as text in row group {g} ({e.Message})");
                }
                foreach (string? text in values)
                {
                    if (!string.IsNullOrWhiteSpace(text))
                        yield return text;
                }
            }
        }
        finally
        {
            // ParquetReader is only IAsyncDisposable; this iterator is synchronous.
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
            stream.Dispose();
        }
    }
}
