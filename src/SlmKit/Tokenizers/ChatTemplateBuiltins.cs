using System.Globalization;
using System.Text;

namespace SlmKit.Tokenizers;

/// <summary>
/// Python and Jinja2 behaviour of values: attribute and item access, operators, methods of str, dict and list,
/// and the global functions Hugging Face gives templates. Filters and tests are in ChatTemplateFilters.cs.
/// </summary>
internal static partial class ChatTemplateBuiltins
{
    // Ranges are built eagerly; a template must not be able to ask for billions of items (Jinja2's sandbox caps
    // range at the same number).
    private const int MaxRange = 100_000;

    private static readonly HashSet<string> s_stringMethods =
    [
        "startswith", "endswith", "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "upper", "lower",
        "replace", "find", "rfind", "index", "count", "title", "capitalize", "join", "isdigit", "isalpha", "isspace",
        "islower", "isupper",
    ];

    private static readonly HashSet<string> s_dictMethods = ["items", "keys", "values", "get", "pop", "copy"];

    private static readonly HashSet<string> s_listMethods = ["append", "pop", "index", "count", "extend", "insert"];

    private static readonly HashSet<string> s_globalFunctions = ["range", "dict", "namespace", "raise_exception", "strftime_now"];

    public static bool IsGlobalFunction(string name) => s_globalFunctions.Contains(name);

    /// <summary>The items a for loop visits: list and tuple items, dict keys, string characters; none for undefined.</summary>
    public static List<object?> Iterate(object? value)
    {
        switch (value)
        {
            case List<object?> list:
                return [.. list]; // a copy: the loop body may append to the list it walks
            case object?[] tuple:
                return [.. tuple];
            case TemplateDict dict:
                return [.. dict.Keys];
            case string s:
            {
                var chars = new List<object?>(s.Length);
                foreach (var rune in s.EnumerateRunes())
                    chars.Add(rune.ToString());
                return chars;
            }
            case Undefined:
                return [];
            default:
                throw new TemplateValueException($"'{PythonValues.TypeName(value)}' object is not iterable");
        }
    }

    public static long Length(object? value) => value switch
    {
        string s => CodePointCount(s),
        System.Collections.ICollection c => c.Count,
        Undefined => 0,
        _ => throw new TemplateValueException($"object of type '{PythonValues.TypeName(value)}' has no len()"),
    };

    private static int CodePointCount(string s)
    {
        int count = 0;
        foreach (var _ in s.EnumerateRunes())
            count++;
        return count;
    }

    // ---- attribute and item access (Jinja2: getattr first for '.', getitem first for '[]') ----

    public static object? GetAttribute(object? value, string name)
    {
        switch (value)
        {
            case Undefined undefined:
                throw new TemplateValueException(undefined.Description);
            case TemplateDict dict:
                if (s_dictMethods.Contains(name))
                    return new BoundMethod(dict, name);
                return dict.TryGetValue(name, out var item) ? item : new Undefined($"'dict object' has no attribute '{name}'");
            case string s:
                return s_stringMethods.Contains(name) ? new BoundMethod(s, name) : new Undefined($"'str object' has no attribute '{name}'");
            case List<object?> list:
                return s_listMethods.Contains(name) ? new BoundMethod(list, name) : new Undefined($"'list object' has no attribute '{name}'");
            case object?[] tuple:
                return name is "index" or "count" ? new BoundMethod(tuple, name) : new Undefined($"'tuple object' has no attribute '{name}'");
            case TemplateNamespace ns:
                return ns.Attributes.TryGetValue(name, out var attribute) ? attribute : new Undefined($"'Namespace' has no attribute '{name}'");
            case LoopContext loop:
                return loop.Get(name);
            default:
                return new Undefined($"'{PythonValues.TypeName(value)} object' has no attribute '{name}'");
        }
    }

    public static object? GetItem(object? value, object? key)
    {
        switch (value)
        {
            case Undefined undefined:
                throw new TemplateValueException(undefined.Description);
            case TemplateDict dict:
                if (key is not null and not Undefined and not List<object?> and not TemplateDict && dict.TryGetValue(key, out var item))
                    return item;
                return key is string name && s_dictMethods.Contains(name)
                    ? new BoundMethod(dict, name)
                    : new Undefined($"'dict object' has no attribute {PythonValues.Repr(key)}");
            case IList<object?> list:
                if (key is long or bool)
                {
                    long index = PythonValues.ToLong(key);
                    if (index < 0)
                        index += list.Count;
                    return index >= 0 && index < list.Count
                        ? list[(int)index]
                        : new Undefined($"'{PythonValues.TypeName(value)} object' has no element {PythonValues.Repr(key)}");
                }
                return key is string method ? GetAttribute(value, method) : throw new TemplateValueException(
                    $"{PythonValues.TypeName(value)} indices must be integers, not {PythonValues.TypeName(key)}");
            case string s:
                if (key is long or bool)
                {
                    var runes = Runes(s);
                    long index = PythonValues.ToLong(key);
                    if (index < 0)
                        index += runes.Count;
                    return index >= 0 && index < runes.Count ? runes[(int)index] : new Undefined($"'str object' has no element {index}");
                }
                return key is string stringMethod ? GetAttribute(value, stringMethod) : throw new TemplateValueException(
                    $"string indices must be integers, not {PythonValues.TypeName(key)}");
            case TemplateNamespace or LoopContext when key is string attributeName:
                return GetAttribute(value, attributeName);
            default:
                return new Undefined($"'{PythonValues.TypeName(value)} object' has no element {PythonValues.Repr(key)}");
        }
    }

    private static List<string> Runes(string s)
    {
        var runes = new List<string>(s.Length);
        foreach (var rune in s.EnumerateRunes())
            runes.Add(rune.ToString());
        return runes;
    }

    /// <summary>Python's <c>value[start:stop:step]</c> on a list, tuple or string.</summary>
    public static object? Slice(object? value, object? start, object? stop, object? step)
    {
        IList<object?> items = value switch
        {
            List<object?> list => list,
            object?[] tuple => tuple,
            string s => Runes(s).ConvertAll(r => (object?)r),
            Undefined u => throw new TemplateValueException(u.Description),
            _ => throw new TemplateValueException($"'{PythonValues.TypeName(value)}' object is not subscriptable"),
        };
        long stepValue = step is null ? 1 : SliceIndex(step);
        if (stepValue == 0)
            throw new TemplateValueException("slice step cannot be zero");
        int length = items.Count;
        long lower = stepValue < 0 ? -1 : 0;
        long upper = stepValue < 0 ? length - 1 : length;
        long Clamp(object? bound, long ifNone)
        {
            if (bound is null)
                return ifNone;
            long index = SliceIndex(bound);
            if (index < 0)
                index += length;
            return Math.Clamp(index, lower, upper);
        }
        long from = Clamp(start, stepValue < 0 ? upper : lower);
        long to = Clamp(stop, stepValue < 0 ? lower : upper);
        var result = new List<object?>();
        for (long i = from; stepValue > 0 ? i < to : i > to; i += stepValue)
            result.Add(items[(int)i]);
        return value switch
        {
            string => string.Concat(result.ConvertAll(r => (string)r!)),
            object?[] => result.ToArray(),
            _ => result,
        };
    }

    private static long SliceIndex(object? value) => value is long or bool
        ? PythonValues.ToLong(value)
        : throw new TemplateValueException($"slice indices must be integers or None, not {PythonValues.TypeName(value)}");

    // ---- operators ----

    public static object? BinaryOperation(string op, object? left, object? right)
    {
        if (op == "~")
            return PythonValues.ToStr(left) + PythonValues.ToStr(right);
        if (left is Undefined ul)
            throw new TemplateValueException(ul.Description);
        if (right is Undefined ur)
            throw new TemplateValueException(ur.Description);

        if (PythonValues.IsNumber(left) && PythonValues.IsNumber(right))
            return Arithmetic(op, left, right);

        switch (op)
        {
            case "+" when left is string a && right is string b:
                return a + b;
            case "+" when left is List<object?> a && right is List<object?> b:
                return (List<object?>)[.. a, .. b];
            case "+" when left is object?[] a && right is object?[] b:
                return (object?[])[.. a, .. b];
            case "*" when left is string s && right is long or bool:
                return Repeat(s, PythonValues.ToLong(right));
            case "*" when right is string s && left is long or bool:
                return Repeat(s, PythonValues.ToLong(left));
            case "*" when left is List<object?> list && right is long or bool:
            {
                var result = new List<object?>();
                for (long i = 0; i < PythonValues.ToLong(right); i++)
                    result.AddRange(list);
                return result;
            }
        }
        throw new TemplateValueException(
            $"unsupported operand type(s) for {op}: '{PythonValues.TypeName(left)}' and '{PythonValues.TypeName(right)}'");
    }

    private static string Repeat(string s, long count)
    {
        if (count <= 0)
            return "";
        if (count * s.Length > 10_000_000)
            throw new TemplateValueException("string repetition is too large");
        var sb = new StringBuilder();
        for (long i = 0; i < count; i++)
            sb.Append(s);
        return sb.ToString();
    }

    private static object Arithmetic(string op, object? left, object? right)
    {
        bool integral = left is not double && right is not double;
        if (op == "/")
        {
            double divisor = PythonValues.ToDouble(right);
            if (divisor == 0)
                throw new TemplateValueException("division by zero");
            return PythonValues.ToDouble(left) / divisor;
        }
        if (integral)
        {
            long a = PythonValues.ToLong(left), b = PythonValues.ToLong(right);
            switch (op)
            {
                case "+": return a + b;
                case "-": return a - b;
                case "*": return a * b;
                case "//":
                    if (b == 0)
                        throw new TemplateValueException("integer division or modulo by zero");
                {
                    long quotient = a / b; // C# truncates toward zero; Python floors
                    return a % b != 0 && ((a < 0) != (b < 0)) ? quotient - 1 : quotient;
                }
                case "%":
                {
                    if (b == 0)
                        throw new TemplateValueException("integer division or modulo by zero");
                    long r = a % b;
                    return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
                }
                case "**":
                    if (b >= 0)
                    {
                        long result = 1;
                        for (long i = 0; i < b; i++)
                            result = checked(result * a);
                        return result;
                    }
                    return Math.Pow(a, b);
            }
        }
        double x = PythonValues.ToDouble(left), y = PythonValues.ToDouble(right);
        switch (op)
        {
            case "+": return x + y;
            case "-": return x - y;
            case "*": return x * y;
            case "//":
                if (y == 0)
                    throw new TemplateValueException("float floor division by zero");
                return Math.Floor(x / y);
            case "%":
            {
                if (y == 0)
                    throw new TemplateValueException("float modulo");
                double r = x % y;
                return r != 0 && ((r < 0) != (y < 0)) ? r + y : r;
            }
            case "**": return Math.Pow(x, y);
        }
        throw new TemplateValueException($"unsupported operator '{op}'");
    }

    public static bool Compare(string op, object? left, object? right)
    {
        switch (op)
        {
            case "==": return PythonValues.AreEqual(left, right);
            case "!=": return !PythonValues.AreEqual(left, right);
            case "in": return Contains(right, left);
            case "not in": return !Contains(right, left);
        }
        if (left is Undefined ul)
            throw new TemplateValueException(ul.Description);
        if (right is Undefined ur)
            throw new TemplateValueException(ur.Description);
        int order = PythonValues.Compare(left, right) ?? throw new TemplateValueException(
            $"'{op}' not supported between instances of '{PythonValues.TypeName(left)}' and '{PythonValues.TypeName(right)}'");
        return op switch
        {
            "<" => order < 0,
            "<=" => order <= 0,
            ">" => order > 0,
            ">=" => order >= 0,
            _ => throw new TemplateValueException($"unsupported comparison '{op}'"),
        };
    }

    /// <summary>Python's <c>item in container</c>.</summary>
    public static bool Contains(object? container, object? item)
    {
        switch (container)
        {
            case string s:
                return item is string sub
                    ? s.Contains(sub, StringComparison.Ordinal)
                    : throw new TemplateValueException($"'in <string>' requires string as left operand, not {PythonValues.TypeName(item)}");
            case IList<object?> list:
                foreach (var element in list)
                {
                    if (PythonValues.AreEqual(element, item))
                        return true;
                }
                return false;
            case TemplateDict dict:
                return item is not null and not Undefined and not List<object?> and not TemplateDict && dict.ContainsKey(item);
            case Undefined:
                return false;
            default:
                throw new TemplateValueException($"argument of type '{PythonValues.TypeName(container)}' is not iterable");
        }
    }

    // ---- methods ----

    public static object? CallMethod(BoundMethod method, CallArguments args)
    {
        return method.Target switch
        {
            string s => CallStringMethod(s, method.Name, args),
            TemplateDict dict => CallDictMethod(dict, method.Name, args),
            IList<object?> list => CallListMethod(list, method.Name, args),
            LoopContext loop when method.Name == "cycle" => args.Positional.Count == 0
                ? throw new TemplateValueException("loop.cycle needs at least one value")
                : args.Positional[loop.Index0 % args.Positional.Count],
            _ => throw new TemplateValueException($"unsupported method '{method.Name}'"),
        };
    }

    private static string? OptionalString(object? value, string what) => value switch
    {
        null or Undefined => null,
        string s => s,
        _ => throw new TemplateValueException($"{what} must be a string or None, not {PythonValues.TypeName(value)}"),
    };

    private static string RequireString(object? value, string what) => value as string
        ?? throw new TemplateValueException($"{what} must be a string, not {PythonValues.TypeName(value)}");

    private static object? CallStringMethod(string s, string name, CallArguments args)
    {
        switch (name)
        {
            case "startswith":
            case "endswith":
            {
                var affix = args.Get(0, "prefix");
                var candidates = affix is object?[] tuple ? tuple : [affix];
                foreach (var candidate in candidates)
                {
                    string text = RequireString(candidate, name + " argument");
                    if (name == "startswith" ? s.StartsWith(text, StringComparison.Ordinal) : s.EndsWith(text, StringComparison.Ordinal))
                        return true;
                }
                return false;
            }
            case "strip": return StripChars(s, OptionalString(args.Get(0, "chars"), "strip argument"), true, true);
            case "lstrip": return StripChars(s, OptionalString(args.Get(0, "chars"), "lstrip argument"), true, false);
            case "rstrip": return StripChars(s, OptionalString(args.Get(0, "chars"), "rstrip argument"), false, true);
            case "split":
            case "rsplit":
            {
                string? separator = OptionalString(args.Get(0, "sep"), "separator");
                long maxSplit = args.Get(1, "maxsplit", -1L) is long m ? m : -1;
                return name == "split" ? Split(s, separator, maxSplit) : RSplit(s, separator, maxSplit);
            }
            case "splitlines":
                return SplitLines(s).ConvertAll(l => (object?)l);
            case "upper": return s.ToUpperInvariant();
            case "lower": return s.ToLowerInvariant();
            case "title": return PythonTitle(s);
            case "capitalize": return Capitalize(s);
            case "replace":
            {
                string old = RequireString(args.Get(0, "old"), "replace argument");
                string replacement = RequireString(args.Get(1, "new"), "replace argument");
                long count = args.Get(2, "count", -1L) is long c ? c : -1;
                return Replace(s, old, replacement, count);
            }
            case "find": return (long)s.IndexOf(RequireString(args.Get(0, "sub"), "find argument"), StringComparison.Ordinal);
            case "rfind": return (long)s.LastIndexOf(RequireString(args.Get(0, "sub"), "rfind argument"), StringComparison.Ordinal);
            case "index":
            {
                int index = s.IndexOf(RequireString(args.Get(0, "sub"), "index argument"), StringComparison.Ordinal);
                return index >= 0 ? (long)index : throw new TemplateValueException("substring not found");
            }
            case "count":
            {
                string sub = RequireString(args.Get(0, "sub"), "count argument");
                if (sub.Length == 0)
                    return (long)CodePointCount(s) + 1;
                long count = 0;
                for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal))
                    count++;
                return count;
            }
            case "join":
            {
                var parts = new List<string>();
                foreach (var item in Iterate(args.Get(0, "iterable")))
                    parts.Add(RequireString(item, "join item"));
                return string.Join(s, parts);
            }
            case "isdigit": return s.Length > 0 && s.All(char.IsDigit);
            case "isalpha": return s.Length > 0 && s.All(char.IsLetter);
            case "isspace": return s.Length > 0 && s.All(char.IsWhiteSpace);
            case "islower": return s.Any(char.IsLower) && !s.Any(char.IsUpper);
            case "isupper": return s.Any(char.IsUpper) && !s.Any(char.IsLower);
        }
        throw new TemplateValueException($"unsupported method 'str.{name}'");
    }

    private static object? CallDictMethod(TemplateDict dict, string name, CallArguments args)
    {
        switch (name)
        {
            case "items":
            {
                var items = new List<object?>(dict.Count);
                foreach (var (k, v) in dict)
                    items.Add(new object?[] { k, v });
                return items;
            }
            case "keys": return new List<object?>(dict.Keys);
            case "values": return new List<object?>(dict.Values);
            case "copy":
            {
                var copy = new TemplateDict();
                foreach (var (k, v) in dict)
                    copy[k] = v;
                return copy;
            }
            case "get":
            case "pop":
            {
                var key = args.Get(0, "key");
                var fallback = args.Get(1, "default");
                if (key is null or Undefined || !dict.TryGetValue(key, out var value))
                {
                    if (name == "pop" && args.Positional.Count < 2)
                        throw new TemplateValueException($"key {PythonValues.Repr(key)} not found");
                    return fallback;
                }
                if (name == "pop")
                    dict.Remove(key);
                return value;
            }
        }
        throw new TemplateValueException($"unsupported method 'dict.{name}'");
    }

    // Hugging Face renders in an immutable sandbox where list.append is refused; llama.cpp's engine allows it and
    // the Kimi templates in the wild rely on it, so mutation is accepted here.
    private static object? CallListMethod(IList<object?> list, string name, CallArguments args)
    {
        bool isList = list is List<object?>;
        switch (name)
        {
            case "append" when isList:
                list.Add(args.Get(0, "object"));
                return null;
            case "extend" when isList:
                foreach (var item in Iterate(args.Get(0, "iterable")))
                    list.Add(item);
                return null;
            case "insert" when isList:
            {
                long index = args.Get(0, "index") is long i ? i : throw new TemplateValueException("insert index must be an integer");
                if (index < 0)
                    index = Math.Max(0, index + list.Count);
                list.Insert((int)Math.Min(index, list.Count), args.Get(1, "object"));
                return null;
            }
            case "pop" when isList:
            {
                if (list.Count == 0)
                    throw new TemplateValueException("pop from empty list");
                long index = args.Get(0, "index", -1L) is long i ? i : throw new TemplateValueException("pop index must be an integer");
                if (index < 0)
                    index += list.Count;
                if (index < 0 || index >= list.Count)
                    throw new TemplateValueException("pop index out of range");
                var value = list[(int)index];
                list.RemoveAt((int)index);
                return value;
            }
            case "index":
            {
                var wanted = args.Get(0, "value");
                for (int i = 0; i < list.Count; i++)
                {
                    if (PythonValues.AreEqual(list[i], wanted))
                        return (long)i;
                }
                throw new TemplateValueException($"{PythonValues.Repr(wanted)} is not in list");
            }
            case "count":
            {
                var wanted = args.Get(0, "value");
                long count = 0;
                foreach (var item in list)
                {
                    if (PythonValues.AreEqual(item, wanted))
                        count++;
                }
                return count;
            }
        }
        throw new TemplateValueException($"unsupported method '{PythonValues.TypeName(list)}.{name}'");
    }

    // ---- global functions ----

    public static object? CallGlobal(ChatTemplateRenderer renderer, string name, CallArguments args, CallExpr call)
    {
        switch (name)
        {
            case "raise_exception":
                throw ChatTemplateException.FromTemplate(PythonValues.ToStr(args.Get(0, "message")), call.Line, call.Column);
            case "range":
            {
                var p = args.Positional;
                foreach (var item in p)
                {
                    if (item is not (long or bool))
                        throw new TemplateValueException($"range() takes integers, not {PythonValues.TypeName(item)}");
                }
                long start = 0, stop, step = 1;
                switch (p.Count)
                {
                    case 1: stop = PythonValues.ToLong(p[0]); break;
                    case 2: start = PythonValues.ToLong(p[0]); stop = PythonValues.ToLong(p[1]); break;
                    case 3: start = PythonValues.ToLong(p[0]); stop = PythonValues.ToLong(p[1]); step = PythonValues.ToLong(p[2]); break;
                    default: throw new TemplateValueException("range() takes 1 to 3 arguments");
                }
                if (step == 0)
                    throw new TemplateValueException("range() step must not be zero");
                var result = new List<object?>();
                for (long i = start; step > 0 ? i < stop : i > stop; i += step)
                {
                    if (result.Count >= MaxRange)
                        throw new TemplateValueException($"range() is limited to {MaxRange} items");
                    result.Add(i);
                }
                return result;
            }
            case "dict":
            {
                var dict = new TemplateDict();
                if (args.Positional.Count > 0 && args.Positional[0] is TemplateDict source)
                {
                    foreach (var (k, v) in source)
                        dict[k] = v;
                }
                foreach (var (k, v) in args.Named)
                    dict[k] = v;
                return dict;
            }
            case "namespace":
            {
                var ns = new TemplateNamespace();
                if (args.Positional.Count > 0 && args.Positional[0] is TemplateDict source)
                {
                    foreach (var (k, v) in source)
                        ns.Attributes[PythonValues.ToStr(k)] = v;
                }
                foreach (var (k, v) in args.Named)
                    ns.Attributes[k] = v;
                return ns;
            }
            case "strftime_now":
                return Strftime(renderer.Clock.GetLocalNow(), RequireString(args.Get(0, "format"), "strftime_now format"));
        }
        throw new TemplateValueException($"unknown function '{name}'");
    }

    /// <summary>Python's <c>datetime.strftime</c> for the directives chat templates use, with English names.</summary>
    public static string Strftime(DateTimeOffset time, string format)
    {
        var culture = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c != '%' || i + 1 >= format.Length)
            {
                sb.Append(c);
                continue;
            }
            char d = format[++i];
            bool noPad = false;
            if (d == '-' && i + 1 < format.Length)
            {
                noPad = true; // glibc's %-d: no leading zero
                d = format[++i];
            }
            string Pad(int value, int width) => noPad ? value.ToString(culture) : value.ToString(new string('0', width), culture);
            switch (d)
            {
                case 'Y': sb.Append(time.Year.ToString(culture)); break;
                case 'y': sb.Append(Pad(time.Year % 100, 2)); break;
                case 'm': sb.Append(Pad(time.Month, 2)); break;
                case 'd': sb.Append(Pad(time.Day, 2)); break;
                case 'e': sb.Append(time.Day.ToString(culture).PadLeft(2)); break;
                case 'H': sb.Append(Pad(time.Hour, 2)); break;
                case 'I': sb.Append(Pad(time.Hour % 12 == 0 ? 12 : time.Hour % 12, 2)); break;
                case 'M': sb.Append(Pad(time.Minute, 2)); break;
                case 'S': sb.Append(Pad(time.Second, 2)); break;
                case 'f': sb.Append((time.Ticks / 10 % 1_000_000).ToString("000000", culture)); break;
                case 'p': sb.Append(time.Hour < 12 ? "AM" : "PM"); break;
                case 'j': sb.Append(Pad(time.DayOfYear, 3)); break;
                case 'A': sb.Append(culture.DateTimeFormat.GetDayName(time.DayOfWeek)); break;
                case 'a': sb.Append(culture.DateTimeFormat.GetAbbreviatedDayName(time.DayOfWeek)); break;
                case 'B': sb.Append(culture.DateTimeFormat.GetMonthName(time.Month)); break;
                case 'b':
                case 'h': sb.Append(culture.DateTimeFormat.GetAbbreviatedMonthName(time.Month)); break;
                case 'w': sb.Append(((int)time.DayOfWeek).ToString(culture)); break;
                case 'z':
                {
                    var offset = time.Offset;
                    sb.Append(offset < TimeSpan.Zero ? '-' : '+').Append(offset.Duration().ToString("hhmm", culture));
                    break;
                }
                case 'Z': sb.Append(time.Offset == TimeSpan.Zero ? "UTC" : ""); break;
                case '%': sb.Append('%'); break;
                default: throw new TemplateValueException($"unsupported strftime directive '%{d}'");
            }
        }
        return sb.ToString();
    }

    // ---- string helpers with Python's semantics ----

    internal static string StripChars(string s, string? chars, bool left, bool right)
    {
        int start = 0, end = s.Length;
        bool Strippable(char c) => chars is null ? char.IsWhiteSpace(c) : chars.Contains(c, StringComparison.Ordinal);
        if (left)
        {
            while (start < end && Strippable(s[start]))
                start++;
        }
        if (right)
        {
            while (end > start && Strippable(s[end - 1]))
                end--;
        }
        return s[start..end];
    }

    private static List<object?> Split(string s, string? separator, long maxSplit)
    {
        var parts = new List<object?>();
        if (separator is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && char.IsWhiteSpace(s[i]))
                    i++;
                if (i >= s.Length)
                    break;
                if (maxSplit >= 0 && parts.Count >= maxSplit)
                {
                    parts.Add(s[i..].TrimEnd());
                    break;
                }
                int start = i;
                while (i < s.Length && !char.IsWhiteSpace(s[i]))
                    i++;
                parts.Add(s[start..i]);
            }
            return parts;
        }
        if (separator.Length == 0)
            throw new TemplateValueException("empty separator");
        int from = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            int at = s.IndexOf(separator, from, StringComparison.Ordinal);
            if (at < 0)
                break;
            parts.Add(s[from..at]);
            from = at + separator.Length;
        }
        parts.Add(s[from..]);
        return parts;
    }

    private static List<object?> RSplit(string s, string? separator, long maxSplit)
    {
        if (maxSplit < 0)
            return Split(s, separator, maxSplit);
        var parts = new List<object?>();
        if (separator is null)
        {
            int i = s.Length;
            while (true)
            {
                while (i > 0 && char.IsWhiteSpace(s[i - 1]))
                    i--;
                if (i <= 0)
                    break;
                if (parts.Count >= maxSplit)
                {
                    parts.Add(s[..i].TrimStart());
                    break;
                }
                int end = i;
                while (i > 0 && !char.IsWhiteSpace(s[i - 1]))
                    i--;
                parts.Add(s[i..end]);
            }
            parts.Reverse();
            return parts;
        }
        if (separator.Length == 0)
            throw new TemplateValueException("empty separator");
        int to = s.Length;
        while (parts.Count < maxSplit)
        {
            int at = to - separator.Length < 0 ? -1 : s.LastIndexOf(separator, to - 1, StringComparison.Ordinal);
            if (at < 0 || at + separator.Length > to)
                break;
            parts.Add(s[(at + separator.Length)..to]);
            to = at;
        }
        parts.Add(s[..to]);
        parts.Reverse();
        return parts;
    }

    /// <summary>Python's <c>str.splitlines()</c>: the line breaks Python recognizes, without keeping them.</summary>
    internal static List<string> SplitLines(string s)
    {
        var lines = new List<string>();
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029')
            {
                lines.Add(s[start..i]);
                if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n')
                    i++;
                start = i + 1;
            }
        }
        if (start < s.Length)
            lines.Add(s[start..]);
        return lines;
    }

    internal static string Replace(string s, string old, string replacement, long count)
    {
        if (count < 0)
            return old.Length == 0 ? InsertBetweenAll(s, replacement) : s.Replace(old, replacement, StringComparison.Ordinal);
        var sb = new StringBuilder();
        int from = 0;
        for (long n = 0; n < count; n++)
        {
            int at = s.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0 || old.Length == 0)
                break;
            sb.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
        }
        return sb.Append(s, from, s.Length - from).ToString();
    }

    private static string InsertBetweenAll(string s, string insert)
    {
        var sb = new StringBuilder(insert);
        foreach (var rune in s.EnumerateRunes())
            sb.Append(rune.ToString()).Append(insert);
        return sb.ToString();
    }

    /// <summary>Python's <c>str.title()</c>: a letter after a non-letter starts a word.</summary>
    internal static string PythonTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (char c in s)
        {
            if (char.IsLetter(c))
            {
                sb.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
                previousCased = true;
            }
            else
            {
                sb.Append(c);
                previousCased = false;
            }
        }
        return sb.ToString();
    }

    internal static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();
}
