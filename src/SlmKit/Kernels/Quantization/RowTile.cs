namespace SlmKit.Kernels.Quantization;

/// <summary>
/// A prefill kernel over a group of consecutive weight rows (<see cref="Rows"/>) and up to <see cref="MaxTokens"/>
/// tokens: y[(token k) · rows + row i], each unpacked weight block reused for every token while it is in registers.
/// </summary>
internal readonly unsafe struct RowTile(delegate*<byte*, long, ActivationRow, int, float*, long, int, void> kernel, int rows)
{
    /// <summary>
    /// Tokens a row tile takes at most: a forward batch (64 tokens), so that each group of rows is unpacked,
    /// transposed and its scales read once per batch. Against 16-token tiles on one thread (1536 × 576 matrix, 64 tokens):
    /// ≈ +10–15 % for the eight-row tiles and ≈ +30 % for the sixteen-row tile, whose per-block work is larger.
    /// </summary>
    public const int MaxTokens = 64;

    public readonly delegate*<byte*, long, ActivationRow, int, float*, long, int, void> Kernel = kernel;

    /// <summary>Weight rows per call (8 or 16); 0 when there is no kernel.</summary>
    public readonly int Rows = kernel == null ? 0 : rows;
}
