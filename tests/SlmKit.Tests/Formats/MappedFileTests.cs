using SlmKit.Formats;
using SlmKit.Models;
using SlmKit.Tensors;
using SlmKit.Tests.Models;

namespace SlmKit.Tests.Formats;

/// <summary>A file read into memory (<see cref="MappedFile.Load"/>) must hold what a mapping of it holds, and fail the same way.</summary>
public sealed class MappedFileTests : IDisposable
{
    private readonly TempDirectory _folder = new();

    public void Dispose() => _folder.Dispose();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData((2 << 20) + 7)] // past one 2 MB page, so the buffer is rounded up and the tail must still be exact
    public unsafe void A_loaded_file_holds_the_same_bytes_as_its_mapping(int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        string path = _folder.File($"bytes-{length}.bin");
        File.WriteAllBytes(path, bytes);

        using var loaded = MappedFile.Load(path);
        using var mapped = MappedFile.Open(path);
        Assert.Equal(length, loaded.Length);
        Assert.Equal(mapped.Length, loaded.Length);
        Assert.True(new ReadOnlySpan<byte>(loaded.Pointer, length).SequenceEqual(bytes));
        Assert.True(((nuint)loaded.Pointer % (2 << 20)) == 0 || length == 0, "the buffer starts on a 2 MB boundary");
    }

    [Fact]
    public void Loading_a_missing_file_names_it()
    {
        string path = _folder.File("missing.gguf");
        var error = Assert.Throws<ModelFileException>(() => MappedFile.Load(path));
        Assert.StartsWith(path, error.Message);
        Assert.Contains("file not found", error.Message);
    }

    [Fact]
    public void A_truncated_gguf_read_into_memory_is_refused_as_when_mapped()
    {
        var spec = new RandomLlamaSpec("tiny", Dim: 64, Layers: 1, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 96, Vocab: 300, Tied: true, RopeTheta: 10000, Type: GgmlType.F32, Seed: 3);
        string whole = new RandomLlama(spec).WriteGguf(_folder.File("whole.gguf"));
        byte[] bytes = File.ReadAllBytes(whole);
        string cut = _folder.File("cut.gguf");
        File.WriteAllBytes(cut, bytes[..(bytes.Length - 100)]);

        var mapped = Assert.Throws<ModelFileException>(() => GgufFile.Open(cut, memoryMap: true).Dispose());
        var loaded = Assert.Throws<ModelFileException>(() => GgufFile.Open(cut, memoryMap: false).Dispose());
        Assert.Equal(mapped.Message, loaded.Message);
    }

    [Fact]
    public void A_model_read_into_memory_gives_the_logits_of_its_mapping()
    {
        var spec = new RandomLlamaSpec("tiny", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 96, Vocab: 300, Tied: false, RopeTheta: 10000, Type: GgmlType.F32, Seed: 5);
        string path = new RandomLlama(spec).WriteGguf(_folder.File("model.gguf"));
        int[] tokens = [1, 17, 42, 99, 250];

        float[] Logits(bool memoryMap)
        {
            using var model = ModelLoader.Load(path, memoryMap: memoryMap);
            var cache = model.CreateCache(16);
            var logits = new float[tokens.Length * spec.Vocab];
            model.Forward(cache, tokens, logits, allPositions: true);
            return logits;
        }

        Assert.Equal(Logits(memoryMap: true), Logits(memoryMap: false));
    }
}
