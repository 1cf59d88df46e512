using System.IO.MemoryMappedFiles;

namespace SlmKit.Tensors;

/// <summary>
/// A read-only memory mapping of a whole file. Weights are used in place, so a model costs page cache,
/// not managed heap. Every offset handed out is checked against <see cref="Length"/> by the format readers.
/// </summary>
public sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _pointer;

    private MappedFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* pointer, long length)
    {
        Path = path;
        _map = map;
        _view = view;
        _pointer = pointer;
        Length = length;
    }

    /// <summary>The file's path, for error messages.</summary>
    public string Path { get; }

    /// <summary>Size of the file in bytes.</summary>
    public long Length { get; }

    /// <summary>Start of the mapping. Valid until <see cref="Dispose"/>.</summary>
    public byte* Pointer => _pointer;

    /// <summary>Maps <paramref name="path"/> read-only; a missing or unreadable file becomes a <see cref="ModelFileException"/>.</summary>
    public static MappedFile Open(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new ModelFileException(path, e is FileNotFoundException or DirectoryNotFoundException ? "file not found" : e.Message);
        }

        long length = stream.Length;
        if (length == 0)
        {
            stream.Dispose();
            return new MappedFile(path, null, null, null, 0);
        }

        var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        pointer += view.PointerOffset;
        return new MappedFile(path, map, view, pointer, length);
    }

    /// <summary>A span over <paramref name="length"/> bytes at <paramref name="offset"/>; throws when out of range.</summary>
    public ReadOnlySpan<byte> Span(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ModelFileException(Path, $"read of {length} bytes at offset {offset} is past the end of the file ({Length} bytes)");
        return new ReadOnlySpan<byte>(_pointer + offset, length);
    }

    public void Dispose()
    {
        if (_view is not null && _pointer != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _pointer = null;
        }
        _view?.Dispose();
        _map?.Dispose();
    }
}
