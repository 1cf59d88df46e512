using SlmKit.Tensors;

namespace SlmKit.Tests;

public sealed class GgmlTypeInfoTests
{
    [Fact]
    public void Q8_0_blocks_are_32_elements_in_34_bytes()
    {
        Assert.True(GgmlTypeInfo.TryGetBlockLayout(GgmlType.Q8_0, out int block, out int bytes));
        Assert.Equal((32, 34), (block, bytes));
        Assert.Equal(34L * 4, GgmlTypeInfo.TryGetByteSize(GgmlType.Q8_0, 128, 64));
        Assert.Null(GgmlTypeInfo.TryGetByteSize(GgmlType.Q8_0, 100, 50));
    }
}
