using SlmKit.Formats;

namespace SlmKit.Cli;

/// <summary>
/// The small TinyStories model built into <c>slm</c> (models/default/, reproduced by models/default/train.sh), so
/// <c>slm generate --prompt "Once upon a time"</c> works with no --model. It is embedded in the assembly and written
/// once to the user's cache folder, from where it is memory-mapped like any other GGUF.
/// </summary>
internal static class DefaultModel
{
    private const string ResourceName = "SlmKit.Cli.default-model.gguf";

    /// <summary>Path of the default model on disk, extracting it on first use.</summary>
    public static string Path()
    {
        var assembly = typeof(DefaultModel).Assembly;
        using Stream resource = assembly.GetManifestResourceStream(ResourceName)
            ?? throw new SlmKitException("this build of slm has no embedded default model; pass --model PATH");
        string folder = System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create) is { Length: > 0 } local
            ? local
            : System.IO.Path.GetTempPath(), "slmkit");
        Directory.CreateDirectory(folder);
        // Named by content, so every build that embeds the same model shares one extracted copy.
        byte[] bytes = new byte[resource.Length];
        resource.ReadExactly(bytes);
        ulong hash = 14695981039346656037UL;
        foreach (byte b in bytes)
            hash = (hash ^ b) * 1099511628211UL;
        string path = System.IO.Path.Combine(folder, $"default-model-{hash:x16}.gguf");
        if (!File.Exists(path) || new FileInfo(path).Length != bytes.Length)
            AtomicFile.Write(path, stream => stream.Write(bytes));
        return path;
    }
}
