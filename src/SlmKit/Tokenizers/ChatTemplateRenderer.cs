using System.Text;

namespace SlmKit.Tokenizers;

/// <summary>Walks the syntax tree of a template and writes its output, with Jinja2's scoping rules.</summary>
internal sealed class ChatTemplateRenderer(TimeProvider clock)
{
    // Templates call macros recursively (JSON schema to TypeScript); a runaway recursion must end in an error,
    // not a stack overflow that takes the process down.
    private const int MaxCallDepth = 128;

    private enum Flow { Normal, Break, Continue }

    private int _callDepth;

    public TimeProvider Clock { get; } = clock;

    public string Render(List<TemplateNode> nodes, TemplateScope root)
    {
        var sb = new StringBuilder();
        Exec(nodes, root, sb);
        return sb.ToString();
    }

    private Flow Exec(List<TemplateNode> nodes, TemplateScope scope, StringBuilder sb)
    {
        foreach (var node in nodes)
        {
            var flow = Exec(node, scope, sb);
            if (flow != Flow.Normal)
                return flow;
        }
        return Flow.Normal;
    }

    private Flow Exec(TemplateNode node, TemplateScope scope, StringBuilder sb)
    {
        switch (node)
        {
            case TextNode text:
                sb.Append(text.Text);
                return Flow.Normal;
            case OutputNode output:
                sb.Append(PythonValues.ToStr(Eval(output.Value, scope)));
                return Flow.Normal;
            case IfNode ifNode:
                foreach (var (condition, body) in ifNode.Branches)
                {
                    if (PythonValues.IsTruthy(Eval(condition, scope)))
                        return Exec(body, scope, sb);
                }
                return ifNode.Else is null ? Flow.Normal : Exec(ifNode.Else, scope, sb);
            case ForNode forNode:
                ExecFor(forNode, scope, sb);
                return Flow.Normal;
            case SetNode set:
                Assign(set.Targets, set.Attribute, Eval(set.Value, scope), scope, set);
                return Flow.Normal;
            case BlockSetNode blockSet:
            {
                var captured = new StringBuilder();
                Exec(blockSet.Body, new TemplateScope(scope), captured);
                object? value = captured.ToString();
                foreach (var filter in blockSet.Filters)
                    value = ApplyFilter(filter, value, scope);
                Assign([blockSet.Target], blockSet.Attribute, value, scope, blockSet);
                return Flow.Normal;
            }
            case MacroNode macro:
                scope.Set(macro.Name, new MacroValue(macro, scope));
                return Flow.Normal;
            case FilterBlockNode filterBlock:
            {
                var captured = new StringBuilder();
                Exec(filterBlock.Body, new TemplateScope(scope), captured);
                object? value = captured.ToString();
                foreach (var filter in filterBlock.Filters)
                    value = ApplyFilter(filter, value, scope);
                sb.Append(PythonValues.ToStr(value));
                return Flow.Normal;
            }
            case WithNode with:
            {
                var inner = new TemplateScope(scope);
                foreach (var (name, value) in with.Assignments)
                    inner.Set(name, Eval(value, scope));
                return Exec(with.Body, inner, sb);
            }
            case GenerationNode generation:
                return Exec(generation.Body, scope, sb);
            case LoopControlNode control:
                return control.IsBreak ? Flow.Break : Flow.Continue;
            default:
                throw Fail(node.Line, node.Column, $"cannot render {node.GetType().Name}");
        }
    }

    private void ExecFor(ForNode node, TemplateScope scope, StringBuilder sb)
    {
        var source = Eval(node.Iterable, scope);
        List<object?> items;
        try
        {
            items = ChatTemplateBuiltins.Iterate(source);
        }
        catch (TemplateValueException ex)
        {
            throw Fail(node.Iterable.Line, node.Iterable.Column, ex.Message);
        }

        if (node.Filter is not null)
        {
            var kept = new List<object?>();
            foreach (var item in items)
            {
                var filterScope = new TemplateScope(scope);
                Unpack(node.Targets, item, filterScope, node);
                if (PythonValues.IsTruthy(Eval(node.Filter, filterScope)))
                    kept.Add(item);
            }
            items = kept;
        }

        if (items.Count == 0)
        {
            if (node.Else is not null)
                Exec(node.Else, scope, sb);
            return;
        }

        int depth = scope.TryGet("loop", out var outer) && outer is LoopContext outerLoop ? outerLoop.Depth + 1 : 1;
        var loop = new LoopContext(items, depth);
        for (int i = 0; i < items.Count; i++)
        {
            // Each iteration gets a fresh scope: a 'set' inside the loop does not leak out (hence namespace()).
            var iteration = new TemplateScope(scope);
            loop.Index0 = i;
            iteration.Set("loop", loop);
            Unpack(node.Targets, items[i], iteration, node);
            if (Exec(node.Body, iteration, sb) == Flow.Break)
                break;
        }
    }

    private static void Unpack(List<string> targets, object? value, TemplateScope scope, TemplateNode at)
    {
        if (targets.Count == 1)
        {
            scope.Set(targets[0], value);
            return;
        }
        if (value is not IList<object?> parts)
            throw Fail(at.Line, at.Column, $"cannot unpack a {PythonValues.TypeName(value)} into {targets.Count} names");
        if (parts.Count != targets.Count)
            throw Fail(at.Line, at.Column, $"expected {targets.Count} values to unpack, got {parts.Count}");
        for (int i = 0; i < targets.Count; i++)
            scope.Set(targets[i], parts[i]);
    }

    private static void Assign(List<string> targets, string? attribute, object? value, TemplateScope scope, TemplateNode at)
    {
        if (attribute is null)
        {
            Unpack(targets, value, scope, at);
            return;
        }
        if (!scope.TryGet(targets[0], out var target) || target is not TemplateNamespace ns)
            throw Fail(at.Line, at.Column, $"cannot assign attribute '{attribute}' on '{targets[0]}': it is not a namespace()");
        ns.Attributes[attribute] = value;
    }

    public object? Eval(TemplateExpr expr, TemplateScope scope)
    {
        try
        {
            return EvalCore(expr, scope);
        }
        catch (TemplateValueException ex)
        {
            throw Fail(expr.Line, expr.Column, ex.Message);
        }
    }

    private object? EvalCore(TemplateExpr expr, TemplateScope scope)
    {
        switch (expr)
        {
            case LiteralExpr literal:
                return literal.Value;
            case NameExpr name:
                if (scope.TryGet(name.Name, out var value))
                    return value;
                return ChatTemplateBuiltins.IsGlobalFunction(name.Name)
                    ? new GlobalFunction(name.Name)
                    : new Undefined($"'{name.Name}' is undefined");
            case ListExpr list:
            {
                var items = new List<object?>(list.Items.Count);
                foreach (var item in list.Items)
                    items.Add(Eval(item, scope));
                return list.IsTuple ? items.ToArray() : items;
            }
            case DictExpr dict:
            {
                var result = new TemplateDict();
                foreach (var (key, item) in dict.Items)
                {
                    var k = Eval(key, scope);
                    if (k is null or Undefined or List<object?> or TemplateDict)
                        throw Fail(key.Line, key.Column, $"unusable dict key of type {PythonValues.TypeName(k)}");
                    result[k] = Eval(item, scope);
                }
                return result;
            }
            case AttributeExpr attribute:
                return ChatTemplateBuiltins.GetAttribute(Eval(attribute.Target, scope), attribute.Name);
            case ItemExpr item:
                return ChatTemplateBuiltins.GetItem(Eval(item.Target, scope), Eval(item.Key, scope));
            case SliceExpr slice:
                return ChatTemplateBuiltins.Slice(
                    Eval(slice.Target, scope),
                    slice.Start is null ? null : Eval(slice.Start, scope),
                    slice.Stop is null ? null : Eval(slice.Stop, scope),
                    slice.Step is null ? null : Eval(slice.Step, scope));
            case CallExpr call:
                return EvalCall(call, scope);
            case FilterExpr filter:
                return ApplyFilter(filter.Filter, Eval(filter.Value, scope), scope);
            case TestExpr test:
            {
                var subject = Eval(test.Value, scope);
                var args = new List<object?>(test.Args.Count);
                foreach (var arg in test.Args)
                    args.Add(Eval(arg, scope));
                return ChatTemplateBuiltins.ApplyTest(test.Name, subject, args) != test.Negated;
            }
            case BinaryExpr binary:
                return ChatTemplateBuiltins.BinaryOperation(binary.Operator, Eval(binary.Left, scope), Eval(binary.Right, scope));
            case CompareExpr compare:
            {
                var left = Eval(compare.First, scope);
                foreach (var (op, operand) in compare.Rest)
                {
                    var right = Eval(operand, scope);
                    if (!ChatTemplateBuiltins.Compare(op, left, right))
                        return false;
                    left = right;
                }
                return true;
            }
            case AndExpr and:
            {
                var left = Eval(and.Left, scope);
                return PythonValues.IsTruthy(left) ? Eval(and.Right, scope) : left;
            }
            case OrExpr or:
            {
                var left = Eval(or.Left, scope);
                return PythonValues.IsTruthy(left) ? left : Eval(or.Right, scope);
            }
            case NotExpr not:
                return !PythonValues.IsTruthy(Eval(not.Operand, scope));
            case NegateExpr negate:
            {
                var operand = Eval(negate.Operand, scope);
                // The arms are boxed one by one: a switch expression would otherwise widen every long to double.
                return operand switch
                {
                    long l => (object)(negate.IsMinus ? -l : l),
                    double d => (object)(negate.IsMinus ? -d : d),
                    bool b => (object)(negate.IsMinus ? -(b ? 1L : 0L) : (b ? 1L : 0L)),
                    _ => throw new TemplateValueException($"bad operand type for unary {(negate.IsMinus ? '-' : '+')}: '{PythonValues.TypeName(operand)}'"),
                };
            }
            case ConditionalExpr conditional:
                if (PythonValues.IsTruthy(Eval(conditional.Condition, scope)))
                    return Eval(conditional.Then, scope);
                return conditional.Else is null ? new Undefined("the conditional expression had no else branch") : Eval(conditional.Else, scope);
            default:
                throw Fail(expr.Line, expr.Column, $"cannot evaluate {expr.GetType().Name}");
        }
    }

    private object? EvalCall(CallExpr call, TemplateScope scope)
    {
        var callee = Eval(call.Callee, scope);
        var args = new List<object?>(call.Args.Count);
        foreach (var arg in call.Args)
            args.Add(Eval(arg, scope));
        var kwargs = new List<(string, object?)>(call.Kwargs.Count);
        foreach (var (name, value) in call.Kwargs)
            kwargs.Add((name, Eval(value, scope)));
        var arguments = new CallArguments(args, kwargs);

        switch (callee)
        {
            case MacroValue macro:
                return CallMacro(macro, arguments, call);
            case BoundMethod method:
                return ChatTemplateBuiltins.CallMethod(method, arguments);
            case GlobalFunction function:
                return ChatTemplateBuiltins.CallGlobal(this, function.Name, arguments, call);
            case Undefined undefined:
                throw new TemplateValueException(call.Callee is AttributeExpr attribute
                    ? $"unsupported method '{attribute.Name}': {undefined.Description}"
                    : $"{undefined.Description}; it cannot be called");
            default:
                throw new TemplateValueException($"'{PythonValues.TypeName(callee)}' object is not callable");
        }
    }

    private string CallMacro(MacroValue macro, CallArguments arguments, CallExpr call)
    {
        var definition = macro.Definition;
        if (arguments.Positional.Count > definition.Parameters.Count)
            throw new TemplateValueException($"macro '{definition.Name}' takes not more than {definition.Parameters.Count} argument(s)");
        if (++_callDepth > MaxCallDepth)
            throw new TemplateValueException($"macro '{definition.Name}' calls nest deeper than {MaxCallDepth}");
        try
        {
            var scope = new TemplateScope(macro.Scope);
            for (int i = 0; i < definition.Parameters.Count; i++)
            {
                var (name, defaultValue) = definition.Parameters[i];
                if (i < arguments.Positional.Count)
                    scope.Set(name, arguments.Positional[i]);
                else if (arguments.TryGetNamed(name, out var named))
                    scope.Set(name, named);
                else
                    scope.Set(name, defaultValue is null ? new Undefined($"'{name}' is undefined") : Eval(defaultValue, scope));
            }
            foreach (var (name, _) in arguments.Named)
            {
                if (!definition.Parameters.Exists(p => p.Name == name))
                    throw Fail(call.Line, call.Column, $"macro '{definition.Name}' takes no keyword argument '{name}'");
            }
            var sb = new StringBuilder();
            Exec(definition.Body, scope, sb);
            return sb.ToString();
        }
        finally
        {
            _callDepth--;
        }
    }

    private object? ApplyFilter(FilterCall filter, object? value, TemplateScope scope)
    {
        var args = new List<object?>(filter.Args.Count);
        foreach (var arg in filter.Args)
            args.Add(Eval(arg, scope));
        var kwargs = new List<(string, object?)>(filter.Kwargs.Count);
        foreach (var (name, arg) in filter.Kwargs)
            kwargs.Add((name, Eval(arg, scope)));
        try
        {
            return ChatTemplateBuiltins.ApplyFilter(filter.Name, value, new CallArguments(args, kwargs));
        }
        catch (TemplateValueException ex)
        {
            throw Fail(filter.Line, filter.Column, $"filter '{filter.Name}': {ex.Message}");
        }
    }

    private static ChatTemplateException Fail(int line, int column, string problem) => new(problem, line, column);
}

/// <summary>The evaluated arguments of a call, filter or test.</summary>
internal sealed record CallArguments(List<object?> Positional, List<(string Name, object? Value)> Named)
{
    public static CallArguments Empty { get; } = new([], []);

    public bool TryGetNamed(string name, out object? value)
    {
        foreach (var (n, v) in Named)
        {
            if (n == name)
            {
                value = v;
                return true;
            }
        }
        value = null;
        return false;
    }

    /// <summary>The argument at <paramref name="index"/> or named <paramref name="name"/>, else <paramref name="fallback"/>.</summary>
    public object? Get(int index, string name, object? fallback = null)
    {
        if (index >= 0 && index < Positional.Count)
            return Positional[index];
        return TryGetNamed(name, out var value) ? value : fallback;
    }
}
