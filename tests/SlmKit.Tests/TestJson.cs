using System.Text.Json.Serialization;

namespace SlmKit.Tests;

/// <summary>Source-generated JSON contracts for test data (no reflection).</summary>
[JsonSerializable(typeof(int[]))]
[JsonSerializable(typeof(int[][]))]
[JsonSerializable(typeof(Dictionary<string, int[]>))]
internal sealed partial class TestJson : JsonSerializerContext;
