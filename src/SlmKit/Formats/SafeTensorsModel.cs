using System.Text.Json;
using SlmKit.Tensors;

namespace SlmKit.Formats;

/// <summary>
/// A model's safetensors weights: one <c>model.safetensors</c>, or shards listed by
/// <c>model.safetensors.index.json</c>'s <c>weight_map</c>. Each shard is opened (mapped) once.
/// </summary>
public sealed class SafeTensorsModel : IWeightSource
{
    /// <summary>The single-file name Hugging Face uses.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>The shard index name Hugging Face uses.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly SafeTensorsFile[] _shards;
    private readonly Dictionary<string, SafeTensorsFile> _owner;
    private readonly string[] _names;

    private SafeTensorsModel(string path, SafeTensorsFile[] shards, Dictionary<string, SafeTensorsFile> owner, string[] names)
    {
        SourcePath = path;
        _shards = shards;
        _owner = owner;
        _names = names;
    }

    /// <summary>The file or index this was opened from.</summary>
    public string SourcePath { get; }

    /// <summary>Tensor names: header order for one file, index order for shards.</summary>
    public IReadOnlyList<string> TensorNames => _names;

    /// <summary>The open files, in the order first named.</summary>
    public IReadOnlyList<SafeTensorsFile> Shards => _shards;

    /// <summary>
    /// Opens a folder (its <c>model.safetensors.index.json</c>, else its <c>model.safetensors</c>), an index file, or a
    /// single safetensors file.
    /// </summary>
    /// <exception cref="ModelFileException">Nothing to open, a damaged file, or an index naming a tensor its shard lacks.</exception>
    public static SafeTensorsModel Open(string folderOrFile)
    {
        string path = folderOrFile;
        if (Directory.Exists(folderOrFile))
        {
            string index = Path.Combine(folderOrFile, IndexFileName);
            string single = Path.Combine(folderOrFile, SingleFileName);
            if (File.Exists(index))
                path = index;
            else if (File.Exists(single))
                path = single;
            else
                throw new ModelFileException(folderOrFile, $"the folder has neither {SingleFileName} nor {IndexFileName}");
        }
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return OpenIndex(path);
        SafeTensorsFile file = SafeTensorsFile.Open(path);
        var owner = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        foreach (string name in file.TensorNames)
            owner[name] = file;
        return new SafeTensorsModel(path, [file], owner, [.. file.TensorNames]);
    }

    /// <inheritdoc/>
    public WeightTensor? Find(string name) => _owner.TryGetValue(name, out SafeTensorsFile? file) ? file.Find(name) : null;

    /// <summary>Closes every shard.</summary>
    public void Dispose()
    {
        foreach (SafeTensorsFile shard in _shards)
            shard.Dispose();
    }

    private static SafeTensorsModel OpenIndex(string indexPath)
    {
        JsonElement root = JsonFiles.Load(indexPath);
        if (!JsonFiles.TryGetObject(indexPath, root, "weight_map", out JsonElement map))
            throw new ModelFileException(indexPath, "the index has no 'weight_map' object");
        string folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;

        var shards = new List<SafeTensorsFile>();
        var byFileName = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        var owner = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        var names = new List<string>();
        try
        {
            ReadWeightMap(indexPath, folder, map, shards, byFileName, owner, names);
        }
        catch (InvalidOperationException e)
        {
            foreach (SafeTensorsFile s in shards)
                s.Dispose();
            throw new ModelFileException(indexPath, "the weight_map has a string that is not valid UTF-8", e);
        }
        catch
        {
            foreach (SafeTensorsFile s in shards)
                s.Dispose();
            throw;
        }
        return new SafeTensorsModel(indexPath, [.. shards], owner, [.. names]);
    }

    private static void ReadWeightMap(string indexPath, string folder, JsonElement map, List<SafeTensorsFile> shards,
        Dictionary<string, SafeTensorsFile> byFileName, Dictionary<string, SafeTensorsFile> owner, List<string> names)
    {
        {
            foreach (JsonProperty entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw JsonFiles.WrongType(indexPath, "weight_map." + MessageText.Clean(entry.Name), "a shard file name", entry.Value);
                string shardName = entry.Value.GetString()!;
                // Shards live beside the index; a path that leaves the folder is not something a real index contains.
                if (shardName.Length == 0 || Path.IsPathRooted(shardName) || shardName.Contains("..", StringComparison.Ordinal)
                    || shardName.Contains('/') || shardName.Contains('\\'))
                    throw new ModelFileException(indexPath, $"tensor '{MessageText.Clean(entry.Name)}' names shard '{MessageText.Clean(shardName)}', which is not a file name beside the index");
                if (!byFileName.TryGetValue(shardName, out SafeTensorsFile? shard))
                {
                    shard = SafeTensorsFile.Open(Path.Combine(folder, shardName));
                    byFileName[shardName] = shard;
                    shards.Add(shard);
                }
                if (shard.Find(entry.Name) is null)
                    throw new ModelFileException(indexPath, $"tensor '{MessageText.Clean(entry.Name)}' is listed for shard '{MessageText.Clean(shardName)}', but that shard does not contain it");
                if (!owner.TryAdd(entry.Name, shard))
                    throw new ModelFileException(indexPath, $"tensor '{MessageText.Clean(entry.Name)}' is listed twice in the weight_map");
                names.Add(entry.Name);
            }
        }
    }
}
