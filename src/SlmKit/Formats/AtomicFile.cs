namespace SlmKit.Formats;

/// <summary>
/// Writes a file under a temporary name beside it and renames it into place, so a reader never sees half a
/// file and a failure (or a crash) leaves no partial output under the real name.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        string temporary = path + ".tmp";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
                write(stream);
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }
}
