using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using SlmKit.Tokenizers;

namespace SlmKit.Inference;

/// <summary>Restricts which tokens may come next, so that generated text follows a grammar.</summary>
public interface ITokenConstraint
{
    /// <summary>
    /// Sets the logit of every token that may not come next to negative infinity. With <paramref name="remainingTokens"/>
    /// (this one included) the constraint also steers toward a complete text within that many tokens.
    /// </summary>
    void Mask(Span<float> logits, int remainingTokens = int.MaxValue);

    /// <summary>Advances past <paramref name="token"/>, which <see cref="Mask"/> allowed.</summary>
    void Accept(int token);

    /// <summary>The text so far is complete and nothing may follow it: generation should end.</summary>
    bool IsComplete { get; }
}

/// <summary>
/// JSON output enforced while decoding: a value that matches a schema (or any JSON object) and nothing after it.
/// Compile once per schema and tokenizer, then call <see cref="CreateConstraint"/> for each generation.
/// </summary>
/// <remarks>
/// A byte-level pushdown automaton tracks where in the JSON text generation is; before each token, every vocabulary
/// entry is tried against a copy of that state and the ones that would break the grammar are masked out. Tokens are
/// grouped by their first byte so whole groups are rejected with one test. Whitespace between tokens is limited to a
/// few characters per gap so a model cannot stall on newlines. Output can still be cut short by the token limit.
/// </remarks>
public sealed class JsonGrammar
{
    private static readonly ConditionalWeakTable<Tokenizer, TokenByteTable> s_tables = new();

    private JsonGrammar(JsonSchemaNode root, Tokenizer tokenizer)
    {
        Root = root;
        Tokenizer = tokenizer;
        Table = s_tables.GetValue(tokenizer, t => new TokenByteTable(t));
    }

    internal JsonSchemaNode Root { get; }
    internal TokenByteTable Table { get; }
    internal Tokenizer Tokenizer { get; }

    /// <summary>Any JSON object (OpenAI's <c>response_format: json_object</c>).</summary>
    public static JsonGrammar ForAnyObject(Tokenizer tokenizer) => new(JsonSchemaNode.AnyObject(), tokenizer);

    /// <summary>A value matching <paramref name="schema"/>; see <see cref="JsonSchemaNode"/> for what is enforced.</summary>
    /// <exception cref="SlmKitException">The schema uses something that cannot be enforced; the message names where.</exception>
    public static JsonGrammar ForSchema(Tokenizer tokenizer, JsonElement schema) => new(JsonSchemaNode.Parse(schema), tokenizer);

    /// <summary>
    /// A tool call object <c>{"name": …, "arguments": {…}}</c> whose name is one of <paramref name="tools"/> (name and
    /// parameter schema); with a single tool its arguments follow that tool's parameter schema.
    /// </summary>
    public static JsonGrammar ForToolCall(Tokenizer tokenizer, IReadOnlyList<(string Name, JsonElement? Parameters)> tools)
    {
        ArgumentOutOfRangeException.ThrowIfZero(tools.Count);
        var names = new byte[tools.Count][];
        for (int i = 0; i < tools.Count; i++)
            names[i] = [(byte)'"', .. JsonEncodedText.Encode(tools[i].Name, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).EncodedUtf8Bytes, (byte)'"'];
        var arguments = tools.Count == 1 && tools[0].Parameters is { } parameters
            ? JsonSchemaNode.Parse(parameters)
            : JsonSchemaNode.AnyObject();
        if (arguments.Types != JsonTypes.Object)
            arguments.Types = JsonTypes.Object;
        var root = new JsonSchemaNode
        {
            Types = JsonTypes.Object,
            Properties =
            [
                new("name"u8.ToArray(), new JsonSchemaNode { Literals = names }, true),
                new("arguments"u8.ToArray(), arguments, true),
            ],
        };
        return new JsonGrammar(root, tokenizer);
    }

    /// <summary>A fresh constraint positioned before the first byte; one per generation.</summary>
    public ITokenConstraint CreateConstraint() => new JsonConstraint(this);
}

/// <summary>The UTF-8 bytes each token adds to the text, grouped by first byte.</summary>
internal sealed class TokenByteTable
{
    public TokenByteTable(Tokenizer tokenizer)
    {
        int n = tokenizer.VocabSize;
        Bytes = new byte[n][];
        var buffer = new ArrayBufferWriter<byte>(64);
        var groups = new List<int>[256];
        for (int id = 0; id < n; id++)
        {
            buffer.Clear();
            bool emitted = true;
            tokenizer.AppendPieceBytes(id, skipSpecial: true, ref emitted, buffer);
            Bytes[id] = buffer.WrittenSpan.ToArray();
            if (Bytes[id].Length > 0)
                (groups[Bytes[id][0]] ??= []).Add(id);
        }
        ByFirstByte = new int[256][];
        for (int b = 0; b < 256; b++)
            ByFirstByte[b] = groups[b]?.ToArray() ?? [];
    }

    public byte[][] Bytes { get; }
    public int[][] ByFirstByte { get; }
}

/// <summary>The automaton: a stack of frames, each a JSON construct being written.</summary>
internal sealed class JsonConstraint : ITokenConstraint
{
    public const int MaxListedProperties = 64;
    private const int MaxDepth = 48;
    private const int MaxWhitespace = 1;
    private const int MaxNumberLength = 24;
    /// <summary>
    /// Most digits in each part of a number (integer, fraction, exponent), as llama.cpp's json-schema-to-grammar writes
    /// them (<c>-?(0|[1-9][0-9]{0,15})</c>): 16 digits keep an integer exact in a double and within a 64-bit integer,
    /// so a constrained value always fits a <c>long</c>; unbounded, a weak model happily writes 24-digit integers.
    /// </summary>
    private const int MaxNumberPartDigits = 16;

    private enum Kind : byte { Root, Value, Object, Array, String, Literal, Key, Number }

    // Object states
    private const byte ObjectOpen = 0, ObjectExpectKey = 1, ObjectInKey = 2, ObjectAfterKey = 3, ObjectAfterValue = 4;
    // Array states
    private const byte ArrayOpen = 0, ArrayAfterValue = 1;
    // String states
    private const byte StringNormal = 0, StringEscape = 1, StringUnicode = 2;
    // The first continuation byte after E0, ED, F0 or F4, whose range is narrower than 80-BF: E0 80-9F would spell a
    // character again in fewer bytes (overlong), ED A0-BF a UTF-16 surrogate, F0 80-8F overlong, F4 90-BF past U+10FFFF.
    private const byte StringAfterE0 = 3, StringAfterED = 4, StringAfterF0 = 5, StringAfterF4 = 6;
    // Number states
    private const byte NumSign = 0, NumZero = 1, NumInt = 2, NumDot = 3, NumFrac = 4, NumExpMark = 5, NumExpSign = 6, NumExp = 7;

    private struct Frame
    {
        public Kind Kind;
        public byte State;
        public byte Whitespace;
        public int Index;        // Object: next listed property; Literal/Key: bytes matched; String: hex digits left; Number: length; Array: items - 1
        public ulong Alive;      // Literal/Key: candidates still matching; String: characters so far; Number: digits in the current part
        public JsonSchemaNode Node;
        public JsonSchemaNode? Pending; // Object: schema of the value after the current key
    }

    private enum Step { Consumed, Rejected, DoneConsumed, DonePass }

    private readonly JsonGrammar _grammar;
    private Frame[] _stack = new Frame[MaxDepth];
    private int _depth;
    private Frame[] _trial = new Frame[MaxDepth];
    private int _trialDepth;

    public JsonConstraint(JsonGrammar grammar)
    {
        _grammar = grammar;
        _stack[0] = new Frame { Kind = Kind.Root, Node = grammar.Root };
        _depth = 1;
    }

    public bool IsComplete => _depth == 1 && _stack[0].State == 1;

    /// <summary>Whether the text may end here: complete, or a top-level number or literal that is whole.</summary>
    private bool CanEnd
    {
        get
        {
            if (IsComplete)
                return true;
            if (_depth != 2)
                return false;
            ref Frame top = ref _stack[1];
            return top.Kind switch
            {
                Kind.Number => top.State is NumZero or NumInt or NumFrac or NumExp,
                Kind.Literal => ExactMatch(top) >= 0,
                _ => false,
            };
        }
    }

    public void Mask(Span<float> logits, int remainingTokens = int.MaxValue)
    {
        // Budgeted first: every allowed token must leave a way to close the JSON in the tokens that remain (each byte
        // is at most one token). If the estimate ever leaves nothing, fall back to the grammar alone.
        if (remainingTokens < int.MaxValue && ClosingCost(_stack, _depth) <= remainingTokens)
        {
            var copy = ArrayPool<float>.Shared.Rent(logits.Length);
            try
            {
                logits.CopyTo(copy);
                if (MaskWithin(logits, remainingTokens - 1))
                    return;
                copy.AsSpan(0, logits.Length).CopyTo(logits);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(copy);
            }
        }
        MaskWithin(logits, int.MaxValue);
    }

    /// <summary>Masks tokens that break the grammar or leave more than <paramref name="budgetAfter"/> bytes to close; false when none is left.</summary>
    private bool MaskWithin(Span<float> logits, int budgetAfter)
    {
        bool any = false;
        var table = _grammar.Table;
        var allowed = ArrayPool<bool>.Shared.Rent(logits.Length);
        try
        {
            Array.Clear(allowed, 0, logits.Length);
            int limit = Math.Min(logits.Length, table.Bytes.Length);
            for (int first = 0; first < 256; first++)
            {
                int[] group = table.ByFirstByte[first];
                if (group.Length == 0)
                    continue;
                BeginTrial();
                if (!Feed(_trial, ref _trialDepth, (byte)first))
                    continue;
                foreach (int id in group)
                {
                    if (id >= limit)
                        continue;
                    byte[] bytes = table.Bytes[id];
                    bool ok = true;
                    if (bytes.Length > 1)
                    {
                        BeginTrial();
                        for (int i = 0; i < bytes.Length && ok; i++)
                            ok = Feed(_trial, ref _trialDepth, bytes[i]);
                    }
                    if (ok && budgetAfter < int.MaxValue)
                    {
                        if (bytes.Length == 1)
                        {
                            BeginTrial();
                            Feed(_trial, ref _trialDepth, bytes[0]);
                        }
                        ok = ClosingCost(_trial, _trialDepth) <= budgetAfter;
                    }
                    allowed[id] = ok;
                    any |= ok;
                }
            }
            if (CanEnd)
            {
                foreach (int id in _grammar.Tokenizer.EndOfGenerationIds)
                {
                    if ((uint)id < (uint)logits.Length)
                    {
                        allowed[id] = true;
                        any = true;
                    }
                }
            }
            if (!any)
                return false;
            for (int i = 0; i < logits.Length; i++)
            {
                if (!allowed[i])
                    logits[i] = float.NegativeInfinity;
            }
            return true;
        }
        finally
        {
            ArrayPool<bool>.Shared.Return(allowed);
        }
    }

    /// <summary>
    /// Bytes of the shortest way to finish the text from this state: the sum over open frames of what each still needs.
    /// Following that shortest way lowers the sum by exactly one per byte, so a budget check on it never corners itself.
    /// </summary>
    private static int ClosingCost(Frame[] stack, int depth)
    {
        int cost = 0;
        for (int i = 0; i < depth; i++)
        {
            ref Frame f = ref stack[i];
            var node = f.Node;
            cost += f.Kind switch
            {
                Kind.Root => f.State == 1 || depth > 1 ? 0 : node.MinimumLength,
                Kind.Value => node.MinimumLength,
                Kind.Object => node.Properties is null
                    ? f.State switch { ObjectExpectKey => 5, ObjectInKey or ObjectAfterKey => 3, _ => 1 }
                    : f.State switch
                    {
                        ObjectOpen => RequiredFrom(node, f.Index, leadingComma: false) + 1,
                        ObjectExpectKey => (RequiredRemain(node.Properties, f.Index) ? RequiredFrom(node, f.Index, leadingComma: false) : CheapestEntry(node, f.Index)) + 1,
                        ObjectInKey => 1,
                        ObjectAfterKey => 1 + (f.Pending ?? node).MinimumLength + node.RequiredAfter(f.Index) + 1,
                        _ => node.RequiredAfter(f.Index) + 1,
                    },
                Kind.Array => node.ArrayClosingLength(f.State == ArrayOpen ? 0 : f.Index + 1),
                // Index: the continuation bytes or hex digits still owed; then the closing quote.
                Kind.String => (f.State == StringEscape ? 2 : f.Index + 1)
                    + (int)Math.Max(0L, node.MinLength - (long)f.Alive),
                Kind.Literal => LiteralRemainder(f),
                Kind.Key => KeyRemainder(f),
                Kind.Number => f.State is NumZero or NumInt or NumFrac or NumExp ? 0 : 1,
                _ => 0,
            };
        }
        return cost;
    }

    private static int RequiredFrom(JsonSchemaNode node, int index, bool leadingComma)
    {
        int total = node.RequiredAfter(index);
        return total == 0 || leadingComma ? total : total - 1;
    }

    private static int CheapestEntry(JsonSchemaNode node, int index)
    {
        int best = int.MaxValue;
        for (int i = index; i < node.Properties!.Count; i++)
            best = Math.Min(best, node.EntryLength(i));
        return best == int.MaxValue ? 0 : best;
    }

    private static int LiteralRemainder(in Frame f)
    {
        int best = int.MaxValue;
        var literals = f.Node.Literals!;
        for (int i = 0; i < literals.Length && i < 64; i++)
        {
            if ((f.Alive & (1UL << i)) != 0)
                best = Math.Min(best, literals[i].Length - f.Index);
        }
        return best == int.MaxValue ? 0 : best;
    }

    /// <summary>Rest of the key, its quote and colon, the value, and the required properties after it (parent adds '}').</summary>
    private static int KeyRemainder(in Frame f)
    {
        var node = f.Node;
        var properties = node.Properties!;
        int best = int.MaxValue;
        for (int i = 0; i < properties.Count; i++)
        {
            if ((f.Alive & (1UL << i)) != 0)
                best = Math.Min(best, properties[i].EncodedName.Length - f.Index + 2 + properties[i].Schema.MinimumLength + node.RequiredAfter(i + 1));
        }
        return best == int.MaxValue ? 0 : best;
    }

    public void Accept(int token)
    {
        var bytes = _grammar.Table.Bytes;
        if ((uint)token >= (uint)bytes.Length)
            return;
        foreach (byte b in bytes[token])
        {
            if (!Feed(_stack, ref _depth, b))
                throw new InvalidOperationException($"token {token} does not fit the JSON grammar here");
        }
    }

    /// <summary>Feeds a whole text; for tests.</summary>
    internal bool TryFeed(ReadOnlySpan<byte> text)
    {
        foreach (byte b in text)
        {
            if (!Feed(_stack, ref _depth, b))
                return false;
        }
        return true;
    }

    private void BeginTrial()
    {
        Array.Copy(_stack, _trial, _depth);
        _trialDepth = _depth;
    }

    private static bool IsWhitespace(byte b) => b == (byte)' ';

    private static bool Feed(Frame[] stack, ref int depth, byte b)
    {
        while (true)
        {
            var step = StepFrame(stack, ref depth, b);
            switch (step)
            {
                case Step.Consumed:
                    return true;
                case Step.Rejected:
                    return false;
                case Step.DoneConsumed:
                    Pop(stack, ref depth);
                    return true;
                case Step.DonePass:
                    Pop(stack, ref depth);
                    continue;
            }
        }
    }

    private static void Pop(Frame[] stack, ref int depth)
    {
        ref Frame child = ref stack[depth - 1];
        ref Frame parent = ref stack[depth - 2];
        if (child.Kind == Kind.Key)
        {
            int matched = ExactMatchKey(parent.Node, child);
            parent.Pending = parent.Node.Properties![matched].Schema;
            parent.Index = matched + 1;
            parent.State = ObjectAfterKey;
        }
        else if (parent.Kind == Kind.Object && parent.State == ObjectInKey)
        {
            parent.Pending = JsonSchemaNode.Any();
            parent.State = ObjectAfterKey;
        }
        else if (parent.Kind == Kind.Root)
        {
            parent.State = 1;
        }
        child = default;
        depth--;
    }

    private static bool Push(Frame[] stack, ref int depth, Frame frame)
    {
        if (depth == MaxDepth)
            return false;
        stack[depth++] = frame;
        return true;
    }

    private static Step StepFrame(Frame[] stack, ref int depth, byte b)
    {
        ref Frame f = ref stack[depth - 1];
        switch (f.Kind)
        {
            case Kind.Root:
                if (f.State == 1)
                    return Step.Rejected;
                if (IsWhitespace(b))
                    return ++f.Whitespace <= MaxWhitespace ? Step.Consumed : Step.Rejected;
                return Push(stack, ref depth, new Frame { Kind = Kind.Value, Node = f.Node }) ? StepFrame(stack, ref depth, b) : Step.Rejected;

            case Kind.Value:
                return StartValue(stack, ref depth, b);

            case Kind.Object:
                return StepObject(stack, ref depth, b);

            case Kind.Array:
                return StepArray(stack, ref depth, b);

            case Kind.String:
                return StepString(ref f, b);

            case Kind.Literal:
            {
                ulong next = 0;
                var literals = f.Node.Literals!;
                for (int i = 0; i < literals.Length; i++)
                {
                    if ((f.Alive & (1UL << i)) != 0 && literals[i].Length > f.Index && literals[i][f.Index] == b)
                        next |= 1UL << i;
                }
                if (next != 0)
                {
                    f.Alive = next;
                    f.Index++;
                    return Step.Consumed;
                }
                return ExactMatch(f) >= 0 ? Step.DonePass : Step.Rejected;
            }

            case Kind.Key:
            {
                var properties = f.Node.Properties!;
                if (b == '"')
                    return ExactMatchKey(f.Node, f) >= 0 ? Step.DoneConsumed : Step.Rejected;
                ulong next = 0;
                for (int i = 0; i < properties.Count; i++)
                {
                    byte[] name = properties[i].EncodedName;
                    if ((f.Alive & (1UL << i)) != 0 && name.Length > f.Index && name[f.Index] == b)
                        next |= 1UL << i;
                }
                if (next == 0)
                    return Step.Rejected;
                f.Alive = next;
                f.Index++;
                return Step.Consumed;
            }

            case Kind.Number:
                return StepNumber(ref f, b);
        }
        return Step.Rejected;
    }

    private static Step StartValue(Frame[] stack, ref int depth, byte b)
    {
        ref Frame f = ref stack[depth - 1];
        var node = f.Node;
        if (IsWhitespace(b))
            return ++f.Whitespace <= MaxWhitespace ? Step.Consumed : Step.Rejected;
        if (node.Literals is { } literals)
        {
            f = new Frame { Kind = Kind.Literal, Node = node, Alive = literals.Length >= 64 ? ulong.MaxValue : (1UL << literals.Length) - 1 };
            return StepFrame(stack, ref depth, b);
        }
        var types = node.Types;
        switch (b)
        {
            case (byte)'{' when (types & JsonTypes.Object) != 0:
                f = new Frame { Kind = Kind.Object, Node = node, State = ObjectOpen };
                return Step.Consumed;
            case (byte)'[' when (types & JsonTypes.Array) != 0:
                f = new Frame { Kind = Kind.Array, Node = node, State = ArrayOpen };
                return Step.Consumed;
            case (byte)'"' when (types & JsonTypes.String) != 0:
                f = new Frame { Kind = Kind.String, Node = node, State = StringNormal };
                return Step.Consumed;
            case (byte)'-' or (>= (byte)'0' and <= (byte)'9') when (types & (JsonTypes.Number | JsonTypes.Integer)) != 0:
                f = new Frame { Kind = Kind.Number, Node = node, State = NumSign };
                return StepNumber(ref f, b);
            case (byte)'t' or (byte)'f' when (types & JsonTypes.Boolean) != 0:
                f = new Frame { Kind = Kind.Literal, Node = b == 't' ? s_true : s_false, Alive = 1 };
                return StepFrame(stack, ref depth, b);
            case (byte)'n' when (types & JsonTypes.Null) != 0:
                f = new Frame { Kind = Kind.Literal, Node = s_null, Alive = 1 };
                return StepFrame(stack, ref depth, b);
        }
        return Step.Rejected;
    }

    private static readonly JsonSchemaNode s_true = new() { Literals = ["true"u8.ToArray()] };
    private static readonly JsonSchemaNode s_false = new() { Literals = ["false"u8.ToArray()] };
    private static readonly JsonSchemaNode s_null = new() { Literals = ["null"u8.ToArray()] };

    private static Step StepObject(Frame[] stack, ref int depth, byte b)
    {
        ref Frame f = ref stack[depth - 1];
        var properties = f.Node.Properties;
        if (IsWhitespace(b))
            return f.State != ObjectInKey && ++f.Whitespace <= MaxWhitespace ? Step.Consumed : Step.Rejected;
        f.Whitespace = 0;
        switch (f.State)
        {
            case ObjectOpen or ObjectExpectKey when b == '"':
                f.State = ObjectInKey;
                if (properties is null)
                    return Push(stack, ref depth, new Frame { Kind = Kind.String, Node = JsonSchemaNode.Any() }) ? Step.Consumed : Step.Rejected;
                ulong alive = KeyCandidates(properties, f.Index);
                return alive != 0 && Push(stack, ref depth, new Frame { Kind = Kind.Key, Node = f.Node, Alive = alive }) ? Step.Consumed : Step.Rejected;
            case ObjectOpen or ObjectAfterValue when b == '}':
                return properties is null || !RequiredRemain(properties, f.Index) ? Step.DoneConsumed : Step.Rejected;
            case ObjectAfterValue when b == ',':
                if (properties is not null && KeyCandidates(properties, f.Index) == 0)
                    return Step.Rejected;
                f.State = ObjectExpectKey;
                return Step.Consumed;
            case ObjectAfterKey when b == ':':
                f.State = ObjectAfterValue;
                var schema = f.Pending ?? JsonSchemaNode.Any();
                f.Pending = null;
                return Push(stack, ref depth, new Frame { Kind = Kind.Value, Node = schema }) ? Step.Consumed : Step.Rejected;
        }
        return Step.Rejected;
    }

    private static Step StepArray(Frame[] stack, ref int depth, byte b)
    {
        ref Frame f = ref stack[depth - 1];
        if (IsWhitespace(b))
            return ++f.Whitespace <= MaxWhitespace ? Step.Consumed : Step.Rejected;
        f.Whitespace = 0;
        if (b == ']')
            return (f.State == ArrayOpen ? 0 : f.Index + 1) >= f.Node.MinItems ? Step.DoneConsumed : Step.Rejected;
        var items = f.Node.Items ?? JsonSchemaNode.Any();
        if (f.State == ArrayOpen)
        {
            if (f.Node.MaxItems == 0)
                return Step.Rejected;
            f.State = ArrayAfterValue;
            return Push(stack, ref depth, new Frame { Kind = Kind.Value, Node = items }) ? StepFrame(stack, ref depth, b) : Step.Rejected;
        }
        if (b == ',' && ++f.Index < (f.Node.MaxItems ?? int.MaxValue))
            return Push(stack, ref depth, new Frame { Kind = Kind.Value, Node = items }) ? Step.Consumed : Step.Rejected;
        return Step.Rejected;
    }

    private static Step StepString(ref Frame f, byte b)
    {
        switch (f.State)
        {
            case StringNormal:
                // Index counts the continuation bytes the current UTF-8 character still needs. The text must be valid
                // UTF-8 (else a decoder shows replacement characters that minLength and maxLength never counted).
                if (f.Index > 0)
                {
                    if ((b & 0xC0) != 0x80)
                        return Step.Rejected;
                    f.Index--;
                    return Step.Consumed;
                }
                if (b == '"')
                    return f.Alive >= (ulong)f.Node.MinLength ? Step.DoneConsumed : Step.Rejected;
                if (b < 0x20)
                    return Step.Rejected;
                int continuation = b switch { < 0x80 => 0, >= 0xC2 and <= 0xDF => 1, >= 0xE0 and <= 0xEF => 2, >= 0xF0 and <= 0xF4 => 3, _ => -1 };
                if (continuation < 0)
                    return Step.Rejected; // a stray continuation byte, or one that never starts UTF-8
                if (++f.Alive > (ulong)(f.Node.MaxLength ?? int.MaxValue))
                    return Step.Rejected; // Alive counts characters here: a new one past maxLength
                f.Index = continuation;
                f.State = b switch
                {
                    (byte)'\\' => StringEscape,
                    0xE0 => StringAfterE0,
                    0xED => StringAfterED,
                    0xF0 => StringAfterF0,
                    0xF4 => StringAfterF4,
                    _ => StringNormal,
                };
                return Step.Consumed;
            case StringAfterE0 or StringAfterED or StringAfterF0 or StringAfterF4:
                bool inRange = f.State switch
                {
                    StringAfterE0 => b is >= 0xA0 and <= 0xBF,
                    StringAfterED => b is >= 0x80 and <= 0x9F,
                    StringAfterF0 => b is >= 0x90 and <= 0xBF,
                    _ => b is >= 0x80 and <= 0x8F,
                };
                if (!inRange)
                    return Step.Rejected;
                f.Index--;
                f.State = StringNormal;
                return Step.Consumed;
            case StringEscape:
                if (b == 'u')
                {
                    f.State = StringUnicode;
                    f.Index = 4;
                    return Step.Consumed;
                }
                if (b is (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t')
                {
                    f.State = StringNormal;
                    return Step.Consumed;
                }
                return Step.Rejected;
            default:
                if (!char.IsAsciiHexDigit((char)b))
                    return Step.Rejected;
                if (--f.Index == 0)
                    f.State = StringNormal;
                return Step.Consumed;
        }
    }

    private static Step StepNumber(ref Frame f, byte b)
    {
        bool digit = b is >= (byte)'0' and <= (byte)'9';
        bool integer = (f.Node.Types & JsonTypes.Number) == 0;
        bool terminal = f.State is NumZero or NumInt or NumFrac or NumExp;
        byte next = f.State switch
        {
            NumSign when b == '-' && f.Index == 0 => NumSign,
            NumSign when b == '0' => NumZero,
            NumSign when digit => NumInt,
            NumInt when digit => NumInt,
            NumZero or NumInt when b == '.' && !integer => NumDot,
            NumZero or NumInt or NumFrac when (b == 'e' || b == 'E') && !integer => NumExpMark,
            NumDot or NumFrac when digit => NumFrac,
            NumExpMark when b == '+' || b == '-' => NumExpSign,
            NumExpMark or NumExpSign or NumExp when digit => NumExp,
            _ => byte.MaxValue,
        };
        if (next == byte.MaxValue)
            return terminal ? Step.DonePass : Step.Rejected;
        // A digit either continues the current part or starts a new one (after the sign, '.' or the exponent mark).
        ulong digits = !digit ? 0 : next == f.State ? f.Alive + 1 : 1;
        if (digits > MaxNumberPartDigits || ++f.Index > MaxNumberLength)
            return Step.Rejected;
        f.Alive = digits;
        f.State = next;
        return Step.Consumed;
    }

    /// <summary>Properties that may come next: from <paramref name="index"/> up to and including the first required one.</summary>
    private static ulong KeyCandidates(List<JsonSchemaProperty> properties, int index)
    {
        ulong alive = 0;
        for (int i = index; i < properties.Count; i++)
        {
            alive |= 1UL << i;
            if (properties[i].Required)
                break;
        }
        return alive;
    }

    private static bool RequiredRemain(List<JsonSchemaProperty>? properties, int index)
    {
        for (int i = index; i < (properties?.Count ?? 0); i++)
        {
            if (properties![i].Required)
                return true;
        }
        return false;
    }

    private static int ExactMatch(in Frame f)
    {
        var literals = f.Node.Literals!;
        for (int i = 0; i < literals.Length && i < 64; i++)
        {
            if ((f.Alive & (1UL << i)) != 0 && literals[i].Length == f.Index)
                return i;
        }
        return -1;
    }

    private static int ExactMatchKey(JsonSchemaNode node, in Frame f)
    {
        var properties = node.Properties!;
        for (int i = 0; i < properties.Count; i++)
        {
            if ((f.Alive & (1UL << i)) != 0 && properties[i].EncodedName.Length == f.Index)
                return i;
        }
        return -1;
    }
}
