using System.Runtime.InteropServices;
using System.Text;
using SlmKit.Formats;
using SlmKit.Tensors;

namespace SlmKit.Tests.Formats;

public sealed class SafeTensorsTests
{
    internal static SafeTensorEntry[] SampleTensors()
    {
        var random = new Random(7);
        SafeTensorEntry Make(string name, GgmlType type, long[] dims, int elementSize)
        {
            long count = 1;
            foreach (long d in dims)
                count *= d;
            byte[] data = new byte[count * elementSize];
            random.NextBytes(data);
            return new SafeTensorEntry(name, type, dims, data);
        }
        return
        [
            Make("model.embed_tokens.weight", GgmlType.F32, [10, 6], 4),
            Make("model.layers.0.self_attn.q_proj.weight", GgmlType.BF16, [6, 6], 2),
            Make("model.layers.0.mlp.up_proj.weight", GgmlType.F16, [12, 6], 2),
            Make("model.norm.weight", GgmlType.F32, [6], 4),
            Make("position_ids", GgmlType.I64, [1, 3], 8),
            Make("scalar", GgmlType.F64, [], 8),
            Make("empty", GgmlType.F32, [0, 4], 4),
        ];
    }

    [Fact]
    public void Single_file_round_trip()
    {
        using var dir = new TempDirectory();
        string path = dir.File("model.safetensors");
        SafeTensorEntry[] tensors = SampleTensors();
        SafeTensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode" });
        Assert.False(File.Exists(path + ".tmp"));

        using (var file = SafeTensorsFile.Open(path))
        {
            Assert.Equal("pt", file.Metadata["format"]);
            Assert.Equal("ünïcode", file.Metadata["note"]);
            Assert.Equal(0, file.DataOffset % 8);
            AssertHolds(file, tensors);
        }
        using var model = SafeTensorsModel.Open(dir.Path);
        Assert.Single(model.Shards);
        AssertHolds(model, tensors);
    }

    [Fact]
    public void Sharded_round_trip_through_the_index()
    {
        using var dir = new TempDirectory();
        SafeTensorEntry[] tensors = SampleTensors();
        IReadOnlyList<string> written = SafeTensorsWriter.WriteSharded(dir.Path, tensors, maxShardBytes: 200);
        Assert.Equal(Path.Combine(dir.Path, "model.safetensors.index.json"), written[^1]);
        Assert.True(written.Count >= 4);
        Assert.EndsWith($"model-00001-of-{written.Count - 1:D5}.safetensors", written[0]);

        using var model = SafeTensorsModel.Open(dir.Path);
        Assert.Equal(written.Count - 1, model.Shards.Count);
        AssertHolds(model, tensors);
        using var viaIndex = SafeTensorsModel.Open(written[^1]);
        AssertHolds(viaIndex, tensors);

        // Everything in one shard: Hugging Face's convention is a plain model.safetensors without an index.
        using var dir2 = new TempDirectory();
        Assert.Equal([Path.Combine(dir2.Path, "model.safetensors")], SafeTensorsWriter.WriteSharded(dir2.Path, tensors, 1 << 20));
    }

    [Fact]
    public void Index_naming_a_tensor_its_shard_lacks_is_an_error_naming_both()
    {
        using var dir = new TempDirectory();
        SafeTensorsWriter.WriteSharded(dir.Path, SampleTensors(), maxShardBytes: 200);
        string index = Path.Combine(dir.Path, "model.safetensors.index.json");
        string json = File.ReadAllText(index).Replace("\"model.norm.weight\": \"model-00003", "\"model.norm.weight\": \"model-00001", StringComparison.Ordinal);
        Assert.Contains("\"model.norm.weight\": \"model-00001", json);
        File.WriteAllText(index, json);
        var e = Assert.Throws<ModelFileException>(() => SafeTensorsModel.Open(dir.Path));
        Assert.StartsWith(index + ": tensor 'model.norm.weight'", e.Message);
        Assert.Contains("model-00001-of-", e.Message);

        File.WriteAllText(index, "{\"weight_map\": {\"a\": \"../../etc/passwd\"}}");
        Assert.Contains("not a file name beside the index", Assert.Throws<ModelFileException>(() => SafeTensorsModel.Open(dir.Path)).Message);
        File.Delete(index);
        foreach (string f in Directory.GetFiles(dir.Path))
            File.Delete(f);
        Assert.Contains("neither", Assert.Throws<ModelFileException>(() => SafeTensorsModel.Open(dir.Path)).Message);
    }

    [Theory]
    [InlineData("{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", "tensor 'w' has dtype U8")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "tensor 'w' is F32 [2], which takes 8 bytes, but its data_offsets span 4")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "tensor 'w' data (offsets 0..16) runs past the end of the data section (8 bytes)")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "tensor 'w' shape entry 0 is not a non-negative integer")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "tensor 'w' has no valid 'data_offsets' [begin, end]")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", "tensor 'w' element count overflows 64 bits")]
    [InlineData("[1,2]", "safetensors header is a JSON array, expected an object")]
    [InlineData("{\"__metadata__\":{\"a\":1}}", "'__metadata__' entry 'a' is a JSON number, expected a string")]
    [InlineData("{\"w\":", "safetensors header is not valid JSON at line 1, position 6")]
    public void Bad_headers_are_named(string header, string problem)
    {
        using var dir = new TempDirectory();
        string path = dir.File("bad.safetensors");
        byte[] json = Encoding.UTF8.GetBytes(header);
        using (var stream = File.Create(path))
        {
            stream.Write(BitConverter.GetBytes((ulong)json.Length));
            stream.Write(json);
            stream.Write(new byte[8]);
        }
        var e = Assert.Throws<ModelFileException>(() => SafeTensorsFile.Open(path));
        Assert.StartsWith($"{path}: {problem}", e.Message);
    }

    private static void AssertHolds(IWeightSource source, SafeTensorEntry[] tensors)
    {
        Assert.Equal(tensors.Select(t => t.Name), source.TensorNames);
        foreach (SafeTensorEntry t in tensors)
        {
            WeightTensor w = source.Find(t.Name)!;
            Assert.Equal(t.Type, w.Type);
            Assert.Equal(t.Dimensions, w.Dimensions);
            Assert.True(t.Data.Span.SequenceEqual(w.Bytes), t.Name);
        }
        Assert.Null(source.Find("nope"));
        _ = MemoryMarshal.Cast<byte, float>(source.Find(tensors[0].Name)!.Bytes);
    }
}
