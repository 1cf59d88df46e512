using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace SlmKit.Inference;

/// <summary>The JSON types a schema node admits.</summary>
[Flags]
internal enum JsonTypes
{
    None = 0,
    Object = 1,
    Array = 2,
    String = 4,
    Number = 8,
    Integer = 16,
    Boolean = 32,
    Null = 64,
    Any = Object | Array | String | Number | Boolean | Null,
}

/// <summary>One property of an object schema, in the order the schema lists it.</summary>
internal sealed record JsonSchemaProperty(byte[] EncodedName, JsonSchemaNode Schema, bool Required);

/// <summary>
/// The part of JSON Schema that constrained decoding enforces: <c>type</c> (a name or a list), <c>properties</c> with
/// <c>required</c> (keys appear in schema order, only listed keys, each at most once), <c>items</c>, <c>enum</c>,
/// <c>const</c>, <c>minLength</c>/<c>maxLength</c>, <c>minItems</c>/<c>maxItems</c>, <c>anyOf</c>/<c>oneOf</c> of plain
/// types, and local <c>$ref</c>s into <c>$defs</c>/<c>definitions</c>. Numbers are bounded as llama.cpp bounds them (at
/// most 16 digits in each part, so an <c>integer</c> always fits a 64-bit integer). Other keywords (patterns, numeric
/// ranges, formats) are not enforced.
/// </summary>
internal sealed class JsonSchemaNode
{
    private const int MaxDepth = 32;

    public JsonTypes Types { get; set; } = JsonTypes.Any;

    /// <summary>Listed properties; null for an object with free keys.</summary>
    public List<JsonSchemaProperty>? Properties { get; set; }

    /// <summary>Schema of array items; null means any value.</summary>
    public JsonSchemaNode? Items { get; set; }

    /// <summary>The only values allowed, as compact JSON text (from <c>enum</c> or <c>const</c>).</summary>
    public byte[][]? Literals { get; set; }

    /// <summary>Fewest characters (code points; an escape is one) in a string value; <c>minLength</c>.</summary>
    public int MinLength { get; set; }

    /// <summary>Most characters (code points) in a string value; <c>maxLength</c>.</summary>
    public int? MaxLength { get; set; }

    /// <summary>Fewest items in an array value; <c>minItems</c>.</summary>
    public int MinItems { get; set; }

    /// <summary>Most items in an array value; <c>maxItems</c>.</summary>
    public int? MaxItems { get; set; }

    private int _minimumLength = -1;
    private int[]? _requiredSuffix;

    /// <summary>Bytes of the shortest JSON text this node accepts (<c>0</c>, <c>""</c>, <c>{}</c> plus required properties, …).</summary>
    internal int MinimumLength => _minimumLength >= 0 ? _minimumLength : (_minimumLength = ComputeMinimumLength(0));

    private int ComputeMinimumLength(int depth)
    {
        if (depth > MaxDepth)
            return 1 << 20; // a required property that contains itself can never be closed
        if (Literals is { } literals)
            return literals.Min(l => l.Length);
        int best = int.MaxValue;
        if ((Types & (JsonTypes.Number | JsonTypes.Integer)) != 0)
            best = 1;
        if ((Types & JsonTypes.String) != 0)
            best = Math.Min(best, 2 + MinLength);
        if ((Types & JsonTypes.Array) != 0)
            best = Math.Min(best, 2 + MinimumItemsLength(depth));
        if ((Types & (JsonTypes.Boolean | JsonTypes.Null)) != 0)
            best = Math.Min(best, 4);
        if ((Types & JsonTypes.Object) != 0)
        {
            int required = 0, count = 0;
            foreach (var property in Properties ?? [])
            {
                if (property.Required)
                {
                    required += EntryLength(property, depth + 1);
                    count++;
                }
            }
            best = Math.Min(best, 2 + required + Math.Max(count - 1, 0));
        }
        return best == int.MaxValue ? 1 : best;
    }

    /// <summary>Bytes of the <see cref="MinItems"/> shortest items and the commas between them.</summary>
    private int MinimumItemsLength(int depth)
    {
        if (MinItems == 0)
            return 0;
        var items = Items ?? Any();
        int item = depth > 0 && items._minimumLength < 0 ? items.ComputeMinimumLength(depth + 1) : items.MinimumLength;
        return (int)Math.Min(1L << 20, (long)MinItems * (item + 1) - 1);
    }

    /// <summary>Bytes an array needs to close once it holds <paramref name="items"/> complete or started items.</summary>
    internal int ArrayClosingLength(int items)
    {
        int missing = MinItems - items;
        if (missing <= 0)
            return 1;
        int item = (Items ?? Any()).MinimumLength;
        return (int)Math.Min(1L << 20, 1 + (long)missing * (item + 1) - (items == 0 ? 1 : 0));
    }

    private static int EntryLength(JsonSchemaProperty property, int depth) =>
        property.EncodedName.Length + 3 + (depth > 0 && property.Schema._minimumLength < 0 ? property.Schema.ComputeMinimumLength(depth) : property.Schema.MinimumLength);

    /// <summary>Bytes of a property entry <c>"name":value</c> at its shortest.</summary>
    internal int EntryLength(int index) => EntryLength(Properties![index], 0);

    /// <summary>Bytes needed for the required properties from <paramref name="index"/> on, each with a leading comma.</summary>
    internal int RequiredAfter(int index)
    {
        var properties = Properties!;
        if (_requiredSuffix is null)
        {
            var suffix = new int[properties.Count + 1];
            for (int i = properties.Count - 1; i >= 0; i--)
                suffix[i] = suffix[i + 1] + (properties[i].Required ? EntryLength(i) + 1 : 0);
            _requiredSuffix = suffix;
        }
        return _requiredSuffix[Math.Min(index, properties.Count)];
    }

    public static JsonSchemaNode Any() => new();

    public static JsonSchemaNode AnyObject() => new() { Types = JsonTypes.Object };

    /// <summary>Reads <paramref name="schema"/>; throws <see cref="SlmKitException"/> naming the first unusable part.</summary>
    public static JsonSchemaNode Parse(JsonElement schema) => Parse(schema, schema, "schema", 0);

    private static JsonSchemaNode Parse(JsonElement element, JsonElement root, string path, int depth)
    {
        if (depth > MaxDepth)
            throw new SlmKitException($"{path}: the schema nests deeper than {MaxDepth} levels (or its $ref chain loops)");
        if (element.ValueKind == JsonValueKind.True)
            return Any();
        if (element.ValueKind != JsonValueKind.Object)
            throw new SlmKitException($"{path}: a schema must be an object (got {element.ValueKind})");

        if (element.TryGetProperty("$ref", out var reference))
            return Parse(Resolve(reference, root, path), root, path + ".$ref", depth + 1);

        var node = new JsonSchemaNode();
        if (element.TryGetProperty("const", out var constant))
        {
            node.Literals = [CompactUtf8(constant)];
            return node;
        }
        if (element.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
                throw new SlmKitException($"{path}.enum: expected a non-empty array");
            if (values.GetArrayLength() > 64)
                throw new SlmKitException($"{path}.enum: more than 64 values are not supported");
            var literals = new List<byte[]>();
            foreach (var value in values.EnumerateArray())
                literals.Add(CompactUtf8(value));
            node.Literals = literals.ToArray();
            return node;
        }

        if (element.TryGetProperty("type", out var type))
            node.Types = ParseTypes(type, path + ".type");
        else if (element.TryGetProperty("anyOf", out var anyOf) || element.TryGetProperty("oneOf", out anyOf))
            return ParseUnion(anyOf, root, path, depth);
        else if (element.TryGetProperty("properties", out _))
            node.Types = JsonTypes.Object;

        if ((node.Types & JsonTypes.Object) != 0 && element.TryGetProperty("properties", out var properties))
        {
            if (properties.ValueKind != JsonValueKind.Object)
                throw new SlmKitException($"{path}.properties: expected an object");
            var required = new HashSet<string>(StringComparer.Ordinal);
            if (element.TryGetProperty("required", out var requiredList) && requiredList.ValueKind == JsonValueKind.Array)
            {
                foreach (var name in requiredList.EnumerateArray())
                {
                    if (name.ValueKind == JsonValueKind.String)
                        required.Add(name.GetString()!);
                }
            }
            node.Properties = [];
            foreach (var property in properties.EnumerateObject())
            {
                if (node.Properties.Count == JsonConstraint.MaxListedProperties)
                    throw new SlmKitException($"{path}.properties: more than {JsonConstraint.MaxListedProperties} properties are not supported");
                node.Properties.Add(new JsonSchemaProperty(
                    JsonEncodedText.Encode(property.Name, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).EncodedUtf8Bytes.ToArray(),
                    Parse(property.Value, root, $"{path}.properties.{property.Name}", depth + 1),
                    required.Contains(property.Name)));
            }
        }
        if (element.TryGetProperty("maxLength", out var maxLength) && maxLength.TryGetInt32(out int length) && length >= 0)
            node.MaxLength = length;
        if (element.TryGetProperty("maxItems", out var maxItems) && maxItems.TryGetInt32(out int count) && count >= 0)
            node.MaxItems = count;
        node.MinLength = Minimum(element, "minLength", node.MaxLength, "maxLength", path);
        node.MinItems = Minimum(element, "minItems", node.MaxItems, "maxItems", path);
        if ((node.Types & JsonTypes.Array) != 0 && element.TryGetProperty("items", out var items) && items.ValueKind is JsonValueKind.Object or JsonValueKind.True)
            node.Items = Parse(items, root, path + ".items", depth + 1);
        return node;
    }

    /// <summary>
    /// The non-negative integer <paramref name="keyword"/> (0 when absent); refused when it is not one, or exceeds the
    /// matching maximum, since no value could then satisfy the schema.
    /// </summary>
    private static int Minimum(JsonElement element, string keyword, int? maximum, string maximumKeyword, string path)
    {
        if (!element.TryGetProperty(keyword, out var value))
            return 0;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int minimum) || minimum < 0)
            throw new SlmKitException($"{path}.{keyword}: expected a non-negative integer (got {value.GetRawText()})");
        if (minimum > maximum)
            throw new SlmKitException($"{path}.{keyword}: {minimum} exceeds {maximumKeyword} {maximum}, so no value fits");
        return minimum;
    }

    private static JsonSchemaNode ParseUnion(JsonElement branches, JsonElement root, string path, int depth)
    {
        if (branches.ValueKind != JsonValueKind.Array || branches.GetArrayLength() == 0)
            throw new SlmKitException($"{path}.anyOf: expected a non-empty array");
        // A union of one structured branch with null (how nullable types are often written) keeps the branch's shape.
        JsonSchemaNode? structured = null;
        var types = JsonTypes.None;
        int i = 0;
        foreach (var branch in branches.EnumerateArray())
        {
            var parsed = Parse(branch, root, $"{path}.anyOf[{i++}]", depth + 1);
            if (parsed.Literals is not null)
                return Any();
            if (parsed.Properties is not null || parsed.Items is not null)
            {
                if (structured is not null)
                    return Any();
                structured = parsed;
            }
            types |= parsed.Types;
        }
        var node = structured ?? new JsonSchemaNode();
        node.Types = types;
        return node;
    }

    private static JsonElement Resolve(JsonElement reference, JsonElement root, string path)
    {
        string? text = reference.ValueKind == JsonValueKind.String ? reference.GetString() : null;
        if (text == "#")
            return root;
        foreach (string prefix in (string[])["#/$defs/", "#/definitions/"])
        {
            if (text is not null && text.StartsWith(prefix, StringComparison.Ordinal)
                && root.TryGetProperty(prefix[2..^1], out var definitions) && definitions.ValueKind == JsonValueKind.Object
                && definitions.TryGetProperty(text[prefix.Length..], out var target))
                return target;
        }
        throw new SlmKitException($"{path}.$ref: only local references into $defs or definitions are supported (got {reference.GetRawText()})");
    }

    /// <summary>The value as compact JSON in UTF-8, non-ASCII text kept as is (what a model would write).</summary>
    internal static byte[] CompactUtf8(JsonElement value)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            value.WriteTo(writer);
        return buffer.WrittenSpan.ToArray();
    }

    private static JsonTypes ParseTypes(JsonElement type, string path)
    {
        if (type.ValueKind == JsonValueKind.Array)
        {
            var all = JsonTypes.None;
            foreach (var item in type.EnumerateArray())
                all |= ParseTypes(item, path);
            return all == JsonTypes.None ? JsonTypes.Any : all;
        }
        return type.ValueKind == JsonValueKind.String ? type.GetString() switch
        {
            "object" => JsonTypes.Object,
            "array" => JsonTypes.Array,
            "string" => JsonTypes.String,
            "number" => JsonTypes.Number,
            "integer" => JsonTypes.Integer,
            "boolean" => JsonTypes.Boolean,
            "null" => JsonTypes.Null,
            var other => throw new SlmKitException($"{path}: unknown type '{other}'"),
        } : throw new SlmKitException($"{path}: expected a type name or a list of them");
    }
}
