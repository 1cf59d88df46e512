using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SlmKit.Tokenizers;

// Jinja2's filters and tests, with the behaviour of Jinja2 3.x and Hugging Face's own tojson.
internal static partial class ChatTemplateBuiltins
{
    private static readonly HashSet<string> s_filters =
    [
        "abs", "attr", "batch", "capitalize", "count", "d", "default", "dictsort", "first", "float", "from_json",
        "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject",
        "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum", "title",
        "tojson", "trim", "unique", "upper", "wordcount",
    ];

    private static readonly HashSet<string> s_tests =
    [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "mapping", "sequence",
        "iterable", "callable", "true", "false", "equalto", "eq", "ne", "lt", "le", "gt", "ge", "greaterthan",
        "lessthan", "in", "odd", "even", "divisibleby", "sameas", "lower", "upper",
    ];

    public static bool IsFilter(string name) => s_filters.Contains(name);

    public static bool IsTest(string name) => s_tests.Contains(name);

    public static bool ApplyTest(string name, object? value, List<object?> args)
    {
        object? Arg(int index) => index < args.Count
            ? args[index]
            : throw new TemplateValueException($"test '{name}' needs {index + 1} argument(s)");
        switch (name)
        {
            case "defined": return value is not Undefined;
            case "undefined": return value is Undefined;
            case "none": return value is null;
            case "string": return value is string;
            case "number": return value is long or double or bool; // Python's numbers.Number includes bool
            case "integer": return value is long;
            case "float": return value is double;
            case "boolean": return value is bool;
            case "mapping": return value is TemplateDict;
            case "sequence": return value is string or IList<object?> or TemplateDict;
            case "iterable": return value is string or IList<object?> or TemplateDict or Undefined;
            case "callable": return value is MacroValue or BoundMethod or GlobalFunction;
            case "true": return value is true;
            case "false": return value is false;
            case "equalto" or "eq": return PythonValues.AreEqual(value, Arg(0));
            case "ne": return !PythonValues.AreEqual(value, Arg(0));
            case "lt" or "lessthan": return Compare("<", value, Arg(0));
            case "le": return Compare("<=", value, Arg(0));
            case "gt" or "greaterthan": return Compare(">", value, Arg(0));
            case "ge": return Compare(">=", value, Arg(0));
            case "in": return Contains(Arg(0), value);
            case "odd": return RequireInteger(value, name) % 2 != 0;
            case "even": return RequireInteger(value, name) % 2 == 0;
            case "divisibleby":
            {
                long divisor = RequireInteger(Arg(0), name);
                return divisor != 0 && RequireInteger(value, name) % divisor == 0;
            }
            case "sameas":
            {
                var other = Arg(0);
                return value is null or bool ? Equals(value, other) : ReferenceEquals(value, other);
            }
            case "lower": return value is string lower && lower.Any(char.IsLetter) && lower == lower.ToLowerInvariant();
            case "upper": return value is string upper && upper.Any(char.IsLetter) && upper == upper.ToUpperInvariant();
        }
        throw new TemplateValueException($"unknown test '{name}'");
    }

    private static long RequireInteger(object? value, string what) => value is long or bool
        ? PythonValues.ToLong(value)
        : throw new TemplateValueException($"'{what}' needs an integer, not {PythonValues.TypeName(value)}");

    public static object? ApplyFilter(string name, object? value, CallArguments args)
    {
        switch (name)
        {
            case "safe":
                return value;
            case "string":
                return PythonValues.ToStr(value);
            case "trim":
                return StripChars(PythonValues.ToStr(value), OptionalString(args.Get(0, "chars"), "trim argument"), true, true);
            case "upper":
                return PythonValues.ToStr(value).ToUpperInvariant();
            case "lower":
                return PythonValues.ToStr(value).ToLowerInvariant();
            case "capitalize":
                return Capitalize(PythonValues.ToStr(value));
            case "title":
                return JinjaTitle(PythonValues.ToStr(value));
            case "replace":
            {
                string old = PythonValues.ToStr(args.Get(0, "old"));
                string replacement = PythonValues.ToStr(args.Get(1, "new"));
                long count = args.Get(2, "count") is long c ? c : -1;
                return Replace(PythonValues.ToStr(value), old, replacement, count);
            }
            case "length" or "count":
                return Length(value);
            case "wordcount":
            {
                long words = 0;
                bool inWord = false;
                foreach (char ch in PythonValues.ToStr(value))
                {
                    bool wordChar = char.IsLetterOrDigit(ch) || ch == '_';
                    if (wordChar && !inWord)
                        words++;
                    inWord = wordChar;
                }
                return words;
            }
            case "default" or "d":
            {
                var fallback = args.Get(0, "default_value", "");
                bool boolean = PythonValues.IsTruthy(args.Get(1, "boolean", false));
                return value is Undefined || (boolean && !PythonValues.IsTruthy(value)) ? fallback : value;
            }
            case "list":
                return Iterate(value);
            case "items":
                return value switch
                {
                    TemplateDict dict => CallDictMethod(dict, "items", CallArguments.Empty),
                    Undefined => new List<object?>(),
                    _ => throw new TemplateValueException($"can only list the items of a mapping, not {PythonValues.TypeName(value)}"),
                };
            case "first":
            {
                var items = Iterate(value);
                return items.Count > 0 ? items[0] : new Undefined("No first item, sequence was empty.");
            }
            case "last":
            {
                var items = Iterate(value);
                return items.Count > 0 ? items[^1] : new Undefined("No last item, sequence was empty.");
            }
            case "reverse":
            {
                if (value is string s)
                {
                    var runes = Runes(s);
                    runes.Reverse();
                    return string.Concat(runes);
                }
                var items = Iterate(value);
                items.Reverse();
                return items;
            }
            case "join":
            {
                string separator = PythonValues.ToStr(args.Get(0, "d", ""));
                var attribute = args.Get(1, "attribute");
                var parts = new List<string>();
                foreach (var item in Iterate(value))
                    parts.Add(PythonValues.ToStr(attribute is null ? item : GetAttributePath(item, attribute)));
                return string.Join(separator, parts);
            }
            case "abs":
                return value switch
                {
                    long l => (object)Math.Abs(l),
                    double d => (object)Math.Abs(d),
                    bool b => (object)(b ? 1L : 0L),
                    _ => throw new TemplateValueException($"bad operand type for abs(): '{PythonValues.TypeName(value)}'"),
                };
            case "int":
                return ToInt(value, args.Get(0, "default", 0L));
            case "float":
                return ToFloat(value, args.Get(0, "default", 0.0));
            case "round":
            {
                double number = value is long or double or bool ? PythonValues.ToDouble(value) : throw new TemplateValueException("round needs a number");
                int precision = (int)(args.Get(0, "precision", 0L) is long p ? p : 0);
                string method = PythonValues.ToStr(args.Get(1, "method", "common"));
                double scale = Math.Pow(10, precision);
                return method switch
                {
                    "common" => Math.Round(number, Math.Clamp(precision, 0, 15), MidpointRounding.ToEven),
                    "floor" => Math.Floor(number * scale) / scale,
                    "ceil" => Math.Ceiling(number * scale) / scale,
                    _ => throw new TemplateValueException("method must be common, floor or ceil"),
                };
            }
            case "tojson":
            {
                var indentArg = args.Get(0, "indent");
                string? indent = indentArg switch
                {
                    null => null,
                    long n => new string(' ', (int)Math.Clamp(n, 0, 64)),
                    string s => s,
                    _ => throw new TemplateValueException("indent must be an integer or a string"),
                };
                bool ensureAscii = PythonValues.IsTruthy(args.Get(-1, "ensure_ascii", false));
                bool sortKeys = PythonValues.IsTruthy(args.Get(-1, "sort_keys", false));
                return PythonValues.ToJson(value, indent, ensureAscii, sortKeys);
            }
            case "from_json":
            {
                // Not a Jinja2 or Hugging Face filter; llama.cpp's engine has it and DeepSeek-V3.2's template uses it.
                try
                {
                    using var document = JsonDocument.Parse(RequireString(value, "from_json input"));
                    return PythonValues.FromJson(document.RootElement);
                }
                catch (JsonException ex)
                {
                    throw new TemplateValueException($"not valid JSON: {ex.Message}");
                }
            }
            case "indent":
                return Indent(PythonValues.ToStr(value), args.Get(0, "width", 4L), PythonValues.IsTruthy(args.Get(1, "first", false)),
                    PythonValues.IsTruthy(args.Get(2, "blank", false)));
            case "attr":
                return GetAttribute(value, RequireString(args.Get(0, "name"), "attr name"));
            case "map":
                return Map(value, args);
            case "select" or "reject":
                return Select(value, args, attribute: null, keep: name == "select", testIndex: 0);
            case "selectattr" or "rejectattr":
                return Select(value, args, attribute: args.Get(0, "attribute") ?? throw new TemplateValueException("missing attribute"),
                    keep: name == "selectattr", testIndex: 1);
            case "unique":
                return Unique(value, args);
            case "sort":
                return Sort(Iterate(value), PythonValues.IsTruthy(args.Get(0, "reverse", false)),
                    PythonValues.IsTruthy(args.Get(1, "case_sensitive", false)), args.Get(2, "attribute"));
            case "dictsort":
                return DictSort(value, args);
            case "min" or "max":
            {
                var sorted = Sort(Iterate(value), reverse: name == "max", PythonValues.IsTruthy(args.Get(0, "case_sensitive", false)), args.Get(1, "attribute"));
                return sorted.Count > 0 ? sorted[0] : new Undefined($"No aggregated item, sequence was empty.");
            }
            case "sum":
            {
                var attribute = args.Get(0, "attribute");
                object? total = args.Get(1, "start", 0L);
                foreach (var item in Iterate(value))
                    total = BinaryOperation("+", total, attribute is null ? item : GetAttributePath(item, attribute));
                return total;
            }
            case "batch":
            {
                long size = RequireInteger(args.Get(0, "linecount"), "batch");
                if (size <= 0)
                    throw new TemplateValueException("batch size must be positive");
                bool fill = args.Positional.Count > 1 || args.TryGetNamed("fill_with", out _);
                var fillWith = args.Get(1, "fill_with");
                var batches = new List<object?>();
                List<object?>? current = null;
                foreach (var item in Iterate(value))
                {
                    current ??= [];
                    current.Add(item);
                    if (current.Count == size)
                    {
                        batches.Add(current);
                        current = null;
                    }
                }
                if (current is not null)
                {
                    while (fill && current.Count < size)
                        current.Add(fillWith);
                    batches.Add(current);
                }
                return batches;
            }
        }
        throw new TemplateValueException($"unknown filter '{name}'");
    }

    /// <summary>Jinja2's <c>title</c> filter: a word starts after whitespace or one of <c>-({[&lt;</c>.</summary>
    private static string JinjaTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool wordStart = true;
        foreach (char c in s)
        {
            bool separator = char.IsWhiteSpace(c) || c is '-' or '(' or '{' or '[' or '<';
            sb.Append(separator ? c : wordStart ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            wordStart = separator;
        }
        return sb.ToString();
    }

    private static object? ToInt(object? value, object? fallback)
    {
        switch (value)
        {
            case long or bool:
                return PythonValues.ToLong(value);
            case double d:
                return double.IsFinite(d) ? (long)Math.Truncate(d) : fallback;
            case string s:
            {
                string text = s.Trim().Replace("_", "", StringComparison.Ordinal);
                if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
                    return l;
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d))
                    return (long)Math.Truncate(d);
                return fallback;
            }
            default:
                return fallback;
        }
    }

    private static object? ToFloat(object? value, object? fallback) => value switch
    {
        long or bool or double => PythonValues.ToDouble(value),
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
        _ => fallback,
    };

    /// <summary>Jinja2's <c>indent</c>: indents every line but the first (unless <paramref name="first"/>), skipping blank lines.</summary>
    private static string Indent(string s, object? width, bool first, bool blank)
    {
        string indentation = width switch
        {
            string w => w,
            long n => new string(' ', (int)Math.Clamp(n, 0, 1024)),
            _ => throw new TemplateValueException("indent width must be an integer or a string"),
        };
        // Jinja2 appends a newline before splitting so that a trailing newline survives splitlines().
        var lines = SplitLines(s + "\n");
        var sb = new StringBuilder();
        for (int i = 0; i < lines.Count; i++)
        {
            if (i > 0)
                sb.Append('\n');
            if (i > 0 && (blank || lines[i].Length > 0))
                sb.Append(indentation);
            sb.Append(lines[i]);
        }
        string result = sb.ToString();
        return first ? indentation + result : result;
    }

    /// <summary>Jinja2's attribute lookup for map/selectattr/sort: dotted paths, item lookup first.</summary>
    private static object? GetAttributePath(object? item, object? attribute)
    {
        if (attribute is long index)
            return GetItem(item, index);
        foreach (var part in PythonValues.ToStr(attribute).Split('.'))
        {
            if (item is Undefined)
                return item;
            object key = long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : part;
            item = item is TemplateDict or IList<object?> ? GetItem(item, key) : GetAttribute(item, part);
        }
        return item;
    }

    private static List<object?> Map(object? value, CallArguments args)
    {
        var result = new List<object?>();
        if (!PythonValues.IsTruthy(value))
            return result; // Jinja2 maps and selects only 'if seq', so none and undefined give nothing
        if (args.TryGetNamed("attribute", out var attribute))
        {
            bool hasDefault = args.TryGetNamed("default", out var fallback);
            foreach (var item in Iterate(value))
            {
                var mapped = GetAttributePath(item, attribute);
                result.Add(hasDefault && mapped is Undefined ? fallback : mapped);
            }
            return result;
        }
        if (args.Positional.Count == 0 || args.Positional[0] is not string filter)
            throw new TemplateValueException("map needs a filter name or attribute=");
        if (!IsFilter(filter))
            throw new TemplateValueException($"unknown filter '{filter}'");
        var rest = new CallArguments(args.Positional.GetRange(1, args.Positional.Count - 1), args.Named);
        foreach (var item in Iterate(value))
            result.Add(ApplyFilter(filter, item, rest));
        return result;
    }

    private static List<object?> Select(object? value, CallArguments args, object? attribute, bool keep, int testIndex)
    {
        string? test = args.Positional.Count > testIndex ? RequireString(args.Positional[testIndex], "test name") : null;
        if (test is not null && !IsTest(test))
            throw new TemplateValueException($"unknown test '{test}'");
        var testArgs = args.Positional.Count > testIndex + 1 ? args.Positional.GetRange(testIndex + 1, args.Positional.Count - testIndex - 1) : [];
        var result = new List<object?>();
        if (!PythonValues.IsTruthy(value))
            return result;
        foreach (var item in Iterate(value))
        {
            var subject = attribute is null ? item : GetAttributePath(item, attribute);
            bool passed = test is null ? PythonValues.IsTruthy(subject) : ApplyTest(test, subject, testArgs);
            if (passed == keep)
                result.Add(item);
        }
        return result;
    }

    private static object? SortKey(object? value, bool caseSensitive) =>
        !caseSensitive && value is string s ? s.ToLowerInvariant() : value;

    private static int CompareForSort(object? a, object? b) => PythonValues.Compare(a, b)
        ?? throw new TemplateValueException($"'<' not supported between instances of '{PythonValues.TypeName(a)}' and '{PythonValues.TypeName(b)}'");

    private static List<object?> Sort(List<object?> items, bool reverse, bool caseSensitive, object? attribute)
    {
        // Python's sort is stable; List.Sort is not, so ties are broken by the original position.
        var keyed = new List<(object? Key, int Index, object? Item)>(items.Count);
        for (int i = 0; i < items.Count; i++)
            keyed.Add((SortKey(attribute is null ? items[i] : GetAttributePath(items[i], attribute), caseSensitive), i, items[i]));
        keyed.Sort((x, y) =>
        {
            int order = CompareForSort(x.Key, y.Key);
            return order != 0 ? (reverse ? -order : order) : x.Index.CompareTo(y.Index);
        });
        return keyed.ConvertAll(k => k.Item);
    }

    private static List<object?> DictSort(object? value, CallArguments args)
    {
        if (value is not TemplateDict dict)
            throw new TemplateValueException($"dictsort needs a mapping, not {PythonValues.TypeName(value)}");
        bool caseSensitive = PythonValues.IsTruthy(args.Get(0, "case_sensitive", false));
        string by = PythonValues.ToStr(args.Get(1, "by", "key"));
        bool reverse = PythonValues.IsTruthy(args.Get(2, "reverse", false));
        int position = by switch
        {
            "key" => 0,
            "value" => 1,
            _ => throw new TemplateValueException("You can only sort by either \"key\" or \"value\""),
        };
        var pairs = (List<object?>)CallDictMethod(dict, "items", CallArguments.Empty)!;
        return Sort(pairs, reverse, caseSensitive, (long)position);
    }

    private static List<object?> Unique(object? value, CallArguments args)
    {
        bool caseSensitive = PythonValues.IsTruthy(args.Get(0, "case_sensitive", false));
        var attribute = args.Get(1, "attribute");
        var seen = new List<object?>();
        var result = new List<object?>();
        foreach (var item in Iterate(value))
        {
            var key = SortKey(attribute is null ? item : GetAttributePath(item, attribute), caseSensitive);
            if (seen.Exists(s => PythonValues.AreEqual(s, key)))
                continue;
            seen.Add(key);
            result.Add(item);
        }
        return result;
    }
}
