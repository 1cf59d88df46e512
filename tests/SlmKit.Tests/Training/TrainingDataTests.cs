using Parquet;
using Parquet.Schema;
using SlmKit.Tokenizers;
using SlmKit.Training.Data;

namespace SlmKit.Tests.Training;

public sealed class TrainingDataTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slmkit-data-").FullName;

    private string Write(string name, string content)
    {
        string path = Path.Combine(_folder, name);
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void Text_documents_split_at_the_endoftext_marker()
    {
        string path = Write("a.txt", "first story\nline two\n<|endoftext|>\nsecond<|endoftext|>third\n");
        Assert.Equal(["first story\nline two", "second", "third"], DocumentReader.Read(new DataSource { Path = path }));
    }

    [Fact]
    public void Text_documents_can_be_lines_or_blank_line_paragraphs()
    {
        string path = Write("b.txt", "one\ntwo\n\nthree\n");
        Assert.Equal(["one", "two", "three"], DocumentReader.Read(new DataSource { Path = path, DocumentSeparator = "\n" }));
        Assert.Equal(["one\ntwo", "three"], DocumentReader.Read(new DataSource { Path = path, DocumentSeparator = "\n\n" }));
    }

    [Fact]
    public void Jsonl_reads_the_named_field()
    {
        string path = Write("c.jsonl", "{\"text\":\"alpha\",\"id\":1}\n\n{\"text\":\"beta\"}\n");
        Assert.Equal(["alpha", "beta"], DocumentReader.Read(new DataSource { Path = path }));
    }

    [Theory]
    [InlineData("{\"text\":\"ok\"}\n{\"text\": broken}\n", "line 2: not valid JSON")]
    [InlineData("{\"text\":\"ok\"}\n{\"body\":\"x\"}\n", "line 2: field 'text' is missing")]
    [InlineData("{\"text\":3}\n", "line 1: field 'text' is Number")]
    public void A_bad_jsonl_line_is_reported_with_its_number(string content, string expected)
    {
        string path = Write("bad.jsonl", content);
        var error = Assert.Throws<ModelFileException>(() => DocumentReader.Read(new DataSource { Path = path }).ToList());
        Assert.StartsWith(path, error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Missing_and_empty_files_are_refused_by_name()
    {
        Assert.Contains("not found", Assert.Throws<ModelFileException>(() => DocumentReader.Read(new DataSource { Path = Path.Combine(_folder, "none.txt") })).Message);
        string empty = Write("empty.txt", "");
        Assert.Contains("empty", Assert.Throws<ModelFileException>(() => DocumentReader.Read(new DataSource { Path = empty })).Message);
    }

    [Fact]
    public async Task Parquet_reads_the_text_column_across_row_groups()
    {
        string path = Path.Combine(_folder, "d.parquet");
        var text = new DataField<string>("text");
        var schema = new ParquetSchema(text, new DataField<int>("id"));
        await using (var stream = File.Create(path))
        await using (var writer = await ParquetWriter.CreateAsync(schema, stream))
        {
            foreach (string[] group in new[] { new[] { "one", "two" }, new[] { "three" } })
            {
                using var rows = writer.CreateRowGroup();
                await rows.WriteAsync(text, group);
                await rows.WriteAsync<int>(schema.GetDataFields()[1], Enumerable.Range(0, group.Length).ToArray().AsMemory());
            }
        }
        Assert.Equal(["one", "two", "three"], DocumentReader.Read(new DataSource { Path = path }));
        var error = Assert.Throws<ModelFileException>(() => DocumentReader.Read(new DataSource { Path = path, TextField = "body" }).ToList());
        Assert.Contains("column 'body' is missing", error.Message);
        var notText = Assert.Throws<ModelFileException>(() => DocumentReader.Read(new DataSource { Path = path, TextField = "id" }).ToList());
        Assert.Contains("column 'id' cannot be read as text", notText.Message);
    }

    private static Tokenizer CharTokenizer(string folder)
    {
        var trainer = new TokenizerTrainer(new TokenizerTrainingOptions { Kind = TrainedTokenizerKind.SentencePieceBpe, VocabSize = 300 });
        trainer.AddText("abcdefghij klmnop qrstuv wxyz");
        trainer.Train(folder);
        return Tokenizer.FromHuggingFace(folder);
    }

    [Fact]
    public void Windows_hold_sequence_plus_one_tokens_with_bos_before_each_document()
    {
        var tokenizer = CharTokenizer(Path.Combine(_folder, "tok"));
        string path = Write("docs.txt", string.Join("<|endoftext|>", Enumerable.Range(0, 30).Select(i => "abc def ghij klm nop")));
        var corpus = new TrainingCorpus([new DataSource { Path = path }], tokenizer, sequenceLength: 8, validationFraction: 0);
        var windows = corpus.Windows(validation: false).ToList();
        Assert.All(windows, w => Assert.Equal(9, w.Length));
        Assert.Equal(1, windows[0][0]);
        // Consecutive windows overlap by one token, so every token is a target exactly once.
        for (int i = 1; i < windows.Count; i++)
            Assert.Equal(windows[i - 1][^1], windows[i][0]);
        var batch = corpus.TrainingBatches(4).First();
        Assert.Equal(4 * 8, batch.Tokens.Length);
        for (int b = 0; b < 4; b++)
            Assert.Equal(batch.Tokens.AsSpan(b * 8 + 1, 7).ToArray(), batch.Targets.AsSpan(b * 8, 7).ToArray());
    }

    [Fact]
    public void The_validation_split_is_disjoint_and_shuffling_is_seeded()
    {
        var tokenizer = CharTokenizer(Path.Combine(_folder, "tok2"));
        string path = Write("many.txt", string.Join("\n", Enumerable.Range(0, 200).Select(i => $"doc {i} abc")));
        DataSource[] sources = [new DataSource { Path = path, DocumentSeparator = "\n" }];
        var corpus = new TrainingCorpus(sources, tokenizer, 4, validationFraction: 0.1, seed: 7, shuffleBuffer: 16);
        var train = corpus.Windows(false).Select(w => string.Join(",", w)).ToList();
        var valid = corpus.Windows(true).Select(w => string.Join(",", w)).ToList();
        Assert.NotEmpty(valid);
        Assert.True(valid.Count * 5 < train.Count);

        int[] First(ulong seed) => new TrainingCorpus(sources, tokenizer, 4, 0.1, seed, 16).TrainingBatches(2).Take(5).SelectMany(b => b.Tokens).ToArray();
        Assert.Equal(First(7), First(7));
        Assert.NotEqual(First(7), First(8));

        // One epoch of shuffled batches is a permutation of the training windows.
        int perEpoch = corpus.Windows(false).Count();
        var seen = corpus.TrainingBatches(1).Take(perEpoch).Select(b => string.Join(",", b.Tokens.Append(b.Targets[^1]))).ToList();
        Assert.Equal(corpus.Windows(false).Select(w => string.Join(",", w)).Order(), seen.Order());
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
