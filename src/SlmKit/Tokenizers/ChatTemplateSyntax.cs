namespace SlmKit.Tokenizers;

// The syntax tree of a parsed chat template. Every node keeps its line and column so that an error while
// rendering can point at the place in the template that caused it.

internal abstract record TemplateNode(int Line, int Column);

internal sealed record TextNode(string Text, int Line, int Column) : TemplateNode(Line, Column);

internal sealed record OutputNode(TemplateExpr Value, int Line, int Column) : TemplateNode(Line, Column);

internal sealed record IfNode(List<(TemplateExpr Condition, List<TemplateNode> Body)> Branches, List<TemplateNode>? Else, int Line, int Column)
    : TemplateNode(Line, Column);

internal sealed record ForNode(
    List<string> Targets, TemplateExpr Iterable, TemplateExpr? Filter, List<TemplateNode> Body, List<TemplateNode>? Else, int Line, int Column)
    : TemplateNode(Line, Column);

/// <summary><c>{% set a = ... %}</c>, <c>{% set a, b = ... %}</c> or <c>{% set ns.attr = ... %}</c>.</summary>
internal sealed record SetNode(List<string> Targets, string? Attribute, TemplateExpr Value, int Line, int Column) : TemplateNode(Line, Column);

/// <summary><c>{% set x | filters %}body{% endset %}</c>.</summary>
internal sealed record BlockSetNode(string Target, string? Attribute, List<FilterCall> Filters, List<TemplateNode> Body, int Line, int Column)
    : TemplateNode(Line, Column);

internal sealed record MacroNode(string Name, List<(string Name, TemplateExpr? Default)> Parameters, List<TemplateNode> Body, int Line, int Column)
    : TemplateNode(Line, Column);

internal sealed record FilterBlockNode(List<FilterCall> Filters, List<TemplateNode> Body, int Line, int Column) : TemplateNode(Line, Column);

internal sealed record WithNode(List<(string Name, TemplateExpr Value)> Assignments, List<TemplateNode> Body, int Line, int Column)
    : TemplateNode(Line, Column);

/// <summary>Hugging Face's <c>{% generation %}</c> marks assistant text for masks; rendering just outputs the body.</summary>
internal sealed record GenerationNode(List<TemplateNode> Body, int Line, int Column) : TemplateNode(Line, Column);

internal sealed record LoopControlNode(bool IsBreak, int Line, int Column) : TemplateNode(Line, Column);

internal sealed record FilterCall(string Name, List<TemplateExpr> Args, List<(string Name, TemplateExpr Value)> Kwargs, int Line, int Column);

internal abstract record TemplateExpr(int Line, int Column);

internal sealed record LiteralExpr(object? Value, int Line, int Column) : TemplateExpr(Line, Column);

internal sealed record NameExpr(string Name, int Line, int Column) : TemplateExpr(Line, Column);

internal sealed record ListExpr(List<TemplateExpr> Items, bool IsTuple, int Line, int Column) : TemplateExpr(Line, Column);

internal sealed record DictExpr(List<(TemplateExpr Key, TemplateExpr Value)> Items, int Line, int Column) : TemplateExpr(Line, Column);

internal sealed record AttributeExpr(TemplateExpr Target, string Name, int Line, int Column) : TemplateExpr(Line, Column);

internal sealed record ItemExpr(TemplateExpr Target, TemplateExpr Key, int Line, int Column) : TemplateExpr(Line, Column);

internal sealed record SliceExpr(TemplateExpr Target, TemplateExpr? Start, TemplateExpr? Stop, TemplateExpr? Step, int Line, int Column)
    : TemplateExpr(Line, Column);

internal sealed record CallExpr(TemplateExpr Callee, List<TemplateExpr> Args, List<(string Name, TemplateExpr Value)> Kwargs, int Line, int Column)
    : TemplateExpr(Line, Column);

internal sealed record FilterExpr(TemplateExpr Value, FilterCall Filter, int Line, int Column) : TemplateExpr(Line, Column);

internal sealed record TestExpr(TemplateExpr Value, string Name, List<TemplateExpr> Args, bool Negated, int Line, int Column) : TemplateExpr(Line, Column);

/// <summary>Arithmetic and concatenation: <c>+ - * / // % ** ~</c>.</summary>
internal sealed record BinaryExpr(string Operator, TemplateExpr Left, TemplateExpr Right, int Line, int Column) : TemplateExpr(Line, Column);

/// <summary>A comparison chain such as <c>a &lt; b &lt;= c</c>; operators include <c>in</c> and <c>not in</c>.</summary>
internal sealed record CompareExpr(TemplateExpr First, List<(string Operator, TemplateExpr Operand)> Rest, int Line, int Column) : TemplateExpr(Line, Column);

internal sealed record AndExpr(TemplateExpr Left, TemplateExpr Right, int Line, int Column) : TemplateExpr(Line, Column);

internal sealed record OrExpr(TemplateExpr Left, TemplateExpr Right, int Line, int Column) : TemplateExpr(Line, Column);

internal sealed record NotExpr(TemplateExpr Operand, int Line, int Column) : TemplateExpr(Line, Column);

internal sealed record NegateExpr(TemplateExpr Operand, bool IsMinus, int Line, int Column) : TemplateExpr(Line, Column);

internal sealed record ConditionalExpr(TemplateExpr Condition, TemplateExpr Then, TemplateExpr? Else, int Line, int Column) : TemplateExpr(Line, Column);
