namespace SlmKit.Tests;

/// <summary>
/// Locates the read-only real-model assets in <c>../shared</c> beside the repository root. Tests that need them
/// call <see cref="Require"/>, which skips the test with a reason when the folder is absent (a user's fresh clone).
/// </summary>
internal static class SharedAssets
{
    private static readonly Lazy<string?> s_root = new(FindRoot);

    /// <summary>The repository root (the folder holding SlmKit.slnx).</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>Absolute path of <c>../shared/</c><paramref name="relativePath"/>, or skips the test when it is missing.</summary>
    public static string Require(string relativePath)
    {
        string? root = s_root.Value;
        if (root is null)
            Assert.Skip("../shared is not present beside the repository; real-model assets are unavailable");
        string path = Path.Combine(root, relativePath);
        if (!File.Exists(path) && !Directory.Exists(path))
            Assert.Skip($"shared asset '{relativePath}' is not present");
        return path;
    }

    private static string? FindRoot()
    {
        string candidate = Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared"));
        return Directory.Exists(candidate) ? candidate : null;
    }

    private static string FindRepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SlmKit.slnx")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("SlmKit.slnx not found above " + AppContext.BaseDirectory);
    }
}
