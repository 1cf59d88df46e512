using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SlmKit.Tokenizers;

// Values inside a template follow Python's data model, because the templates were written against Jinja2:
// None is null, bool, int is long, float is double, str is string, list is List<object?>, tuple is object?[],
// dict is TemplateDict (insertion-ordered, Python key equality), plus the Jinja-only kinds below.

/// <summary>
/// A problem with values found while rendering (a type error, an undefined value used). The renderer adds the
/// line and column of the expression and turns it into a <see cref="ChatTemplateException"/>.
/// </summary>
internal sealed class TemplateValueException(string message) : Exception(message);

/// <summary>A Python dict: keeps insertion order; 1, 1.0 and True are the same key, as in Python.</summary>
internal sealed class TemplateDict : OrderedDictionary<object, object?>
{
    public TemplateDict() : base(PythonKeyComparer.Instance) { }
}

/// <summary>Jinja2's <c>namespace(...)</c>: the one object a template may assign attributes on across scopes.</summary>
internal sealed class TemplateNamespace
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>
/// Jinja2's Undefined: a missing variable, attribute or item. It renders as "", is falsy, iterates as empty and
/// compares unequal to everything but another undefined; using it further (attribute, arithmetic, call) is an error
/// that carries <see cref="Description"/>.
/// </summary>
internal sealed class Undefined(string description)
{
    public string Description { get; } = description;
}

/// <summary>A method looked up on a value (<c>s.strip</c>, <c>d.items</c>), called later with its arguments.</summary>
internal sealed record BoundMethod(object Target, string Name);

/// <summary>A global function such as <c>range</c> or <c>raise_exception</c>.</summary>
internal sealed record GlobalFunction(string Name);

/// <summary>A macro defined by the template, closed over the scope it was defined in.</summary>
internal sealed record MacroValue(MacroNode Definition, TemplateScope Scope);

/// <summary>The <c>loop</c> variable inside a for loop.</summary>
internal sealed class LoopContext(IReadOnlyList<object?> items, int depth)
{
    public IReadOnlyList<object?> Items { get; } = items;
    public int Index0 { get; set; }
    public int Depth { get; } = depth;

    public object? Get(string name) => name switch
    {
        "index" => (long)Index0 + 1,
        "index0" => (long)Index0,
        "revindex" => (long)(Items.Count - Index0),
        "revindex0" => (long)(Items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == Items.Count - 1,
        "length" => (long)Items.Count,
        "depth" => (long)Depth,
        "depth0" => (long)Depth - 1,
        "previtem" => Index0 > 0 ? Items[Index0 - 1] : new Undefined("there is no previous item"),
        "nextitem" => Index0 + 1 < Items.Count ? Items[Index0 + 1] : new Undefined("there is no next item"),
        "cycle" => new BoundMethod(this, "cycle"),
        _ => new Undefined($"'LoopContext' has no attribute '{name}'"),
    };
}

/// <summary>Variables visible at one point: a for-loop iteration or a macro call opens a child scope.</summary>
internal sealed class TemplateScope(TemplateScope? parent)
{
    private readonly Dictionary<string, object?> _variables = new(StringComparer.Ordinal);

    public TemplateScope? Parent { get; } = parent;

    public bool TryGet(string name, out object? value)
    {
        for (var scope = this; scope is not null; scope = scope.Parent)
        {
            if (scope._variables.TryGetValue(name, out value))
                return true;
        }
        value = null;
        return false;
    }

    public void Set(string name, object? value) => _variables[name] = value;
}

/// <summary>Key equality of Python dicts: numbers by value (True == 1 == 1.0), strings by ordinal.</summary>
internal sealed class PythonKeyComparer : IEqualityComparer<object>
{
    public static PythonKeyComparer Instance { get; } = new();

    public new bool Equals(object? x, object? y) => PythonValues.AreEqual(x, y);

    public int GetHashCode(object obj) => obj switch
    {
        bool b => b ? 1 : 0,
        long l => l.GetHashCode(),
        double d when d == Math.Floor(d) && Math.Abs(d) < 9e18 => ((long)d).GetHashCode(),
        double d => d.GetHashCode(),
        string s => StringComparer.Ordinal.GetHashCode(s),
        _ => obj.GetHashCode(),
    };
}

/// <summary>Python semantics of template values: truth, str(), repr(), ==, ordering, conversions from JSON and .NET.</summary>
internal static class PythonValues
{
    public static bool IsTruthy(object? value) => value switch
    {
        null => false,
        Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        ICollection c => c.Count > 0, // lists, tuples and dicts
        _ => true,
    };

    public static bool IsNumber(object? value) => value is long or double or bool;

    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        object?[] => "tuple",
        TemplateDict => "dict",
        Undefined => "undefined",
        TemplateNamespace => "Namespace",
        MacroValue => "macro",
        BoundMethod or GlobalFunction => "function",
        LoopContext => "LoopContext",
        _ => value.GetType().Name,
    };

    /// <summary>Python's <c>str(value)</c>, which is what <c>{{ value }}</c> prints.</summary>
    public static string ToStr(object? value) => value switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(value),
    };

    /// <summary>Python's <c>repr(value)</c>: how values print inside a printed list or dict.</summary>
    public static string Repr(object? value)
    {
        var sb = new StringBuilder();
        AppendRepr(sb, value);
        return sb.ToString();
    }

    private static void AppendRepr(StringBuilder sb, object? value)
    {
        switch (value)
        {
            case null: sb.Append("None"); break;
            case bool b: sb.Append(b ? "True" : "False"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FormatFloat(d)); break;
            case string s: AppendStringRepr(sb, s); break;
            case Undefined: sb.Append("Undefined"); break;
            case List<object?> list:
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0)
                        sb.Append(", ");
                    AppendRepr(sb, list[i]);
                }
                sb.Append(']');
                break;
            case object?[] tuple:
                sb.Append('(');
                for (int i = 0; i < tuple.Length; i++)
                {
                    if (i > 0)
                        sb.Append(", ");
                    AppendRepr(sb, tuple[i]);
                }
                sb.Append(tuple.Length == 1 ? ",)" : ")");
                break;
            case TemplateDict dict:
            {
                sb.Append('{');
                bool first = true;
                foreach (var (k, v) in dict)
                {
                    if (!first)
                        sb.Append(", ");
                    first = false;
                    AppendRepr(sb, k);
                    sb.Append(": ");
                    AppendRepr(sb, v);
                }
                sb.Append('}');
                break;
            }
            case TemplateNamespace ns:
                sb.Append("<Namespace {");
                bool firstAttr = true;
                foreach (var (k, v) in ns.Attributes)
                {
                    if (!firstAttr)
                        sb.Append(", ");
                    firstAttr = false;
                    AppendStringRepr(sb, k);
                    sb.Append(": ");
                    AppendRepr(sb, v);
                }
                sb.Append("}>");
                break;
            default: sb.Append('<').Append(TypeName(value)).Append('>'); break;
        }
    }

    private static void AppendStringRepr(StringBuilder sb, string s)
    {
        char quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        sb.Append(quote);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == quote)
                        sb.Append('\\').Append(c);
                    else if (c < 0x20 || c == 0x7f)
                        sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else
                        sb.Append(c);
                    break;
            }
        }
        sb.Append(quote);
    }

    /// <summary>Python's float repr: shortest round-trip digits, fixed notation for exponents in [-4, 16).</summary>
    public static string FormatFloat(double d)
    {
        if (double.IsNaN(d))
            return "nan";
        if (double.IsInfinity(d))
            return d > 0 ? "inf" : "-inf";
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        bool negative = r.StartsWith('-');
        if (negative)
            r = r[1..];
        int exponent = 0;
        int e = r.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            r = r[..e];
        }
        int dot = r.IndexOf('.', StringComparison.Ordinal);
        string digits = dot >= 0 ? r.Remove(dot, 1) : r;
        int decimalPoint = (dot >= 0 ? dot : r.Length) + exponent; // value = 0.digits * 10^decimalPoint
        int lead = 0;
        while (lead < digits.Length && digits[lead] == '0')
            lead++;
        digits = digits[lead..].TrimEnd('0');
        decimalPoint -= lead;
        string sign = negative ? "-" : "";
        if (digits.Length == 0)
            return sign + "0.0";
        if (decimalPoint > -4 && decimalPoint <= 16)
        {
            if (decimalPoint <= 0)
                return sign + "0." + new string('0', -decimalPoint) + digits;
            if (decimalPoint >= digits.Length)
                return sign + digits + new string('0', decimalPoint - digits.Length) + ".0";
            return sign + digits[..decimalPoint] + "." + digits[decimalPoint..];
        }
        int exp = decimalPoint - 1;
        string mantissa = digits.Length > 1 ? digits[0] + "." + digits[1..] : digits;
        return sign + mantissa + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture);
    }

    /// <summary>Python's <c>==</c>.</summary>
    public static bool AreEqual(object? a, object? b)
    {
        if (a is null || b is null)
            return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double)
                return ToDouble(a) == ToDouble(b);
            return ToLong(a) == ToLong(b);
        }
        switch (a)
        {
            case string sa:
                return b is string sb && string.Equals(sa, sb, StringComparison.Ordinal);
            case Undefined:
                return b is Undefined;
            case List<object?> la:
                return b is List<object?> lb && SequenceEqual(la, lb);
            case object?[] ta:
                return b is object?[] tb && SequenceEqual(ta, tb);
            case TemplateDict da:
            {
                if (b is not TemplateDict db || da.Count != db.Count)
                    return false;
                foreach (var (k, v) in da)
                {
                    if (!db.TryGetValue(k, out var other) || !AreEqual(v, other))
                        return false;
                }
                return true;
            }
            default:
                return ReferenceEquals(a, b) || a.Equals(b);
        }
    }

    private static bool SequenceEqual(IList<object?> a, IList<object?> b)
    {
        if (a.Count != b.Count)
            return false;
        for (int i = 0; i < a.Count; i++)
        {
            if (!AreEqual(a[i], b[i]))
                return false;
        }
        return true;
    }

    /// <summary>Python's ordering (&lt;) between numbers, strings or sequences; null when the types do not order.</summary>
    public static int? Compare(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double)
                return ToDouble(a).CompareTo(ToDouble(b));
            return ToLong(a).CompareTo(ToLong(b));
        }
        if (a is string sa && b is string sb)
            return Math.Sign(string.CompareOrdinal(sa, sb));
        if (a is IList<object?> la && b is IList<object?> lb && a.GetType() == b.GetType())
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                if (AreEqual(la[i], lb[i]))
                    continue;
                return Compare(la[i], lb[i]);
            }
            return la.Count.CompareTo(lb.Count);
        }
        return null;
    }

    public static long ToLong(object? value) => value switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        double d => (long)d,
        _ => throw new InvalidCastException(),
    };

    public static double ToDouble(object? value) => value switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        double d => d,
        _ => throw new InvalidCastException(),
    };

    /// <summary>Converts JSON to template values as Python's json.loads would (integers stay integers).</summary>
    public static object? FromJson(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
            {
                var dict = new TemplateDict();
                foreach (var property in element.EnumerateObject())
                    dict[property.Name] = FromJson(property.Value);
                return dict;
            }
            case JsonValueKind.Array:
            {
                var list = new List<object?>();
                foreach (var item in element.EnumerateArray())
                    list.Add(FromJson(item));
                return list;
            }
            case JsonValueKind.String:
                return element.GetString();
            case JsonValueKind.Number:
            {
                string raw = element.GetRawText();
                if (raw.AsSpan().IndexOfAny(".eE") < 0 && element.TryGetInt64(out long l))
                    return l;
                return element.GetDouble();
            }
            case JsonValueKind.True:
                return true;
            case JsonValueKind.False:
                return false;
            default:
                return null;
        }
    }

    /// <summary>Converts a .NET value given by the caller (extra variables) to a template value.</summary>
    public static object? FromClr(object? value)
    {
        switch (value)
        {
            case null or string or bool or long or double:
                return value;
            case int or short or sbyte or byte or ushort or uint:
                return Convert.ToInt64(value, CultureInfo.InvariantCulture);
            case float or decimal:
                return Convert.ToDouble(value, CultureInfo.InvariantCulture);
            case ulong u:
                return u <= long.MaxValue ? (long)u : (double)u;
            case JsonElement element:
                return FromJson(element);
            case TemplateDict or TemplateNamespace or object?[] or List<object?>:
                return value;
            case IDictionary dictionary:
            {
                var dict = new TemplateDict();
                foreach (DictionaryEntry entry in dictionary)
                    dict[FromClr(entry.Key) ?? "None"] = FromClr(entry.Value);
                return dict;
            }
            case IEnumerable<KeyValuePair<string, object?>> pairs:
            {
                var dict = new TemplateDict();
                foreach (var (k, v) in pairs)
                    dict[k] = FromClr(v);
                return dict;
            }
            case IEnumerable sequence:
            {
                var list = new List<object?>();
                foreach (object? item in sequence)
                    list.Add(FromClr(item));
                return list;
            }
            default:
                return Convert.ToString(value, CultureInfo.InvariantCulture);
        }
    }

    /// <summary>
    /// Python's <c>json.dumps</c> as Hugging Face's <c>tojson</c> filter calls it: non-ASCII kept unless
    /// <paramref name="ensureAscii"/>, separators ", " and ": " (or "," and ": " with an indent), no HTML escaping.
    /// </summary>
    public static string ToJson(object? value, string? indent, bool ensureAscii, bool sortKeys)
    {
        var sb = new StringBuilder();
        AppendJson(sb, value, indent, ensureAscii, sortKeys, 0);
        return sb.ToString();
    }

    private static void AppendJson(StringBuilder sb, object? value, string? indent, bool ensureAscii, bool sortKeys, int level)
    {
        switch (value)
        {
            case null: sb.Append("null"); return;
            case bool b: sb.Append(b ? "true" : "false"); return;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); return;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : FormatFloat(d));
                return;
            case string s: AppendJsonString(sb, s, ensureAscii); return;
            case IList<object?> list:
                if (list.Count == 0)
                {
                    sb.Append("[]");
                    return;
                }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0)
                        sb.Append(indent is null ? ", " : ",");
                    AppendNewline(sb, indent, level + 1);
                    AppendJson(sb, list[i], indent, ensureAscii, sortKeys, level + 1);
                }
                AppendNewline(sb, indent, level);
                sb.Append(']');
                return;
            case TemplateDict dict:
            {
                if (dict.Count == 0)
                {
                    sb.Append("{}");
                    return;
                }
                var entries = new List<KeyValuePair<object, object?>>(dict);
                if (sortKeys)
                    entries.Sort((x, y) => string.CompareOrdinal(JsonKey(x.Key), JsonKey(y.Key)));
                sb.Append('{');
                for (int i = 0; i < entries.Count; i++)
                {
                    if (i > 0)
                        sb.Append(indent is null ? ", " : ",");
                    AppendNewline(sb, indent, level + 1);
                    AppendJsonString(sb, JsonKey(entries[i].Key), ensureAscii);
                    sb.Append(": ");
                    AppendJson(sb, entries[i].Value, indent, ensureAscii, sortKeys, level + 1);
                }
                AppendNewline(sb, indent, level);
                sb.Append('}');
                return;
            }
            default:
                throw new TemplateValueException($"Object of type {TypeName(value)} is not JSON serializable");
        }
    }

    private static string JsonKey(object key) => key switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FormatFloat(d),
        _ => throw new TemplateValueException($"keys must be str, int, float or bool, not {TypeName(key)}"),
    };

    private static void AppendNewline(StringBuilder sb, string? indent, int level)
    {
        if (indent is null)
            return;
        sb.Append('\n');
        for (int i = 0; i < level; i++)
            sb.Append(indent);
    }

    private static void AppendJsonString(StringBuilder sb, string s, bool ensureAscii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ensureAscii && c > 0x7e))
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else
                        sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
