using System.Reflection;
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
        string version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0";
        string folder = System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create) is { Length: > 0 } local
            ? local
            : System.IO.Path.GetTempPath(), "slmkit");
        Directory.CreateDirectory(folder);
        string path = System.IO.Path.Combine(folder, $"default-model-{Sanitize(version)}-{resource.Length}.gguf");
        if (!File.Exists(path) || new FileInfo(path).Length != resource.Length)
            AtomicFile.Write(path, resource.CopyTo);
        return path;
    }

    private static string Sanitize(string version)
    {
        var chars = version.Where(c => char.IsLetterOrDigit(c) || c is '.' or '-').Take(40).ToArray();
        return new string(chars);
    }
}
